package mcp

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// sep joins a server's name and a tool's name in the name the model sees.
const sep = "__"

// maxToolName is OpenAI's limit on a function name (^[a-zA-Z0-9_-]{1,64}$).
const maxToolName = 64

// ToolName is the name under which the model sees the tool of a server:
// SERVER__TOOL. A tool name that OpenAI would refuse (characters other than
// letters, digits, '_' and '-', or too long a result) has those characters
// replaced by '_', is cut to fit 64 characters and ends with '_' and 8 hex
// digits of its SHA-256, so that it stays unique and the same on every
// listing. Call maps the name back to the server's own.
func ToolName(server, tool string) string {
	clean := strings.Map(func(r rune) rune {
		if r < 128 && validByte(byte(r)) {
			return r
		}
		return '_'
	}, tool)
	name := server + sep + clean
	if clean == tool && tool != "" && len(name) <= maxToolName {
		return name
	}
	sum := sha256.Sum256([]byte(tool))
	suffix := "_" + hex.EncodeToString(sum[:4])
	if len(name) > maxToolName-len(suffix) {
		name = name[:maxToolName-len(suffix)]
	}
	return name + suffix
}

func validByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}
