package telegramtest

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxMessageLength is Telegram's limit on a message's text after entity parsing, in
// UTF-16 code units.
const MaxMessageLength = 4096

// UTF16Len returns the length of s as Telegram counts it: in UTF-16 code units.
func UTF16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// ParseError is a parse_mode=HTML text Telegram would refuse; Error() is the part of
// the description after "Bad Request: can't parse entities: ".
type ParseError struct {
	Msg string
}

func (e *ParseError) Error() string { return e.Msg }

func parseErrorf(format string, args ...any) error {
	return &ParseError{Msg: fmt.Sprintf(format, args...)}
}

// htmlTags maps the start tags Telegram's HTML parse mode supports to the entity
// type they make (https://core.telegram.org/bots/api#html-style).
var htmlTags = map[string]string{
	"b": "bold", "strong": "bold",
	"i": "italic", "em": "italic",
	"u": "underline", "ins": "underline",
	"s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
	"tg-spoiler": "spoiler", "span": "spoiler",
	"a":          "text_link",
	"code":       "code",
	"pre":        "pre",
	"blockquote": "blockquote",
	"tg-emoji":   "custom_emoji",
}

// openTag is a start tag waiting for its end tag.
type openTag struct {
	name   string
	entity MessageEntity
}

// htmlParser turns Telegram HTML into text and entities, as Telegram's server does,
// and refuses what it refuses. It is stricter in one way: a "&", "<" or ">" that is
// not part of a tag or of an entity (&lt; &gt; &amp; &quot; or numeric) is an error,
// as the Bot API documentation requires, where Telegram would keep it as text.
type htmlParser struct {
	src   string
	pos   int
	text  strings.Builder
	units int // UTF-16 length of text
	stack []openTag
	done  []MessageEntity
}

// ParseHTML parses a parse_mode=HTML text and returns its visible text (before
// Telegram trims surrounding white space) and its entities, with UTF-16 offsets.
func ParseHTML(src string) (string, []MessageEntity, error) {
	if !utf8.ValidString(src) {
		return "", nil, errNotUTF8
	}
	p := &htmlParser{src: src}
	for p.pos < len(src) {
		var err error
		switch src[p.pos] {
		case '<':
			err = p.tag()
		case '&':
			err = p.entity()
		case '>':
			err = parseErrorf("Character '>' is reserved and must be escaped as \"&gt;\" at byte offset %d", p.pos)
		default:
			r, size := utf8.DecodeRuneInString(src[p.pos:])
			p.emit(r)
			p.pos += size
		}
		if err != nil {
			return "", nil, err
		}
	}
	if len(p.stack) > 0 {
		return "", nil, parseErrorf("Can't find end tag corresponding to start tag \"%s\"", p.stack[len(p.stack)-1].name)
	}
	sortEntities(p.done)
	return p.text.String(), p.done, nil
}

var errNotUTF8 = &APIError{Code: 400, Description: "Bad Request: strings must be encoded in UTF-8"}

func (p *htmlParser) emit(r rune) {
	p.text.WriteRune(r)
	p.units += utf16.RuneLen(r)
}

// entity reads a character reference: &lt; &gt; &amp; &quot; &#123; &#x1F600;.
func (p *htmlParser) entity() error {
	start := p.pos
	end := strings.IndexByte(p.src[start:], ';')
	if end < 0 || end > 12 {
		return parseErrorf("Character '&' is reserved and must be escaped as \"&amp;\" at byte offset %d", start)
	}
	name := p.src[start+1 : start+end]
	r, ok := entityRune(name)
	if !ok {
		return parseErrorf("Unsupported HTML entity \"&%s;\" at byte offset %d", name, start)
	}
	p.emit(r)
	p.pos = start + end + 1
	return nil
}

func entityRune(name string) (rune, bool) {
	switch name {
	case "lt":
		return '<', true
	case "gt":
		return '>', true
	case "amp":
		return '&', true
	case "quot":
		return '"', true
	}
	if !strings.HasPrefix(name, "#") || len(name) < 2 {
		return 0, false
	}
	var v uint64
	var err error
	if name[1] == 'x' || name[1] == 'X' {
		v, err = strconv.ParseUint(name[2:], 16, 32)
	} else {
		v, err = strconv.ParseUint(name[1:], 10, 32)
	}
	if err != nil || v == 0 || v > utf8.MaxRune || (v >= 0xD800 && v <= 0xDFFF) {
		return 0, false
	}
	return rune(v), true
}

// tag reads a start or an end tag.
func (p *htmlParser) tag() error {
	start := p.pos
	end := strings.IndexByte(p.src[start:], '>')
	if end < 0 {
		if strings.HasPrefix(p.src[start:], "</") {
			return parseErrorf("Unclosed end tag at byte offset %d", start)
		}
		return parseErrorf("Unclosed start tag at byte offset %d", start)
	}
	body := p.src[start+1 : start+end]
	p.pos = start + end + 1
	if strings.HasPrefix(body, "/") {
		return p.endTag(strings.TrimSpace(body[1:]), start)
	}
	return p.startTag(body, start)
}

func (p *htmlParser) startTag(body string, at int) error {
	name, rest := body, ""
	if i := strings.IndexAny(body, " \t\n\r"); i >= 0 {
		name, rest = body[:i], body[i:]
	}
	name = strings.ToLower(name)
	typ, ok := htmlTags[name]
	if !ok {
		return parseErrorf("Unsupported start tag \"%s\" at byte offset %d", name, at)
	}
	attrs, err := parseAttrs(rest, name, at)
	if err != nil {
		return err
	}
	e := MessageEntity{Type: typ, Offset: p.units}
	switch name {
	case "span":
		if attrs["class"] != "tg-spoiler" {
			return parseErrorf("Tag \"span\" must have class \"tg-spoiler\" at byte offset %d", at)
		}
	case "a":
		e.URL = attrs["href"]
	case "blockquote":
		if _, ok := attrs["expandable"]; ok {
			e.Type = "expandable_blockquote"
		}
	case "code":
		if n := len(p.stack); n > 0 && p.stack[n-1].name == "pre" && p.stack[n-1].entity.Offset == p.units {
			p.stack[n-1].entity.Language = strings.TrimPrefix(attrs["class"], "language-")
		}
	}
	p.stack = append(p.stack, openTag{name: name, entity: e})
	return nil
}

func (p *htmlParser) endTag(name string, at int) error {
	name = strings.ToLower(name)
	if len(p.stack) == 0 {
		return parseErrorf("Unexpected end tag at byte offset %d", at)
	}
	top := p.stack[len(p.stack)-1]
	if top.name != name {
		return parseErrorf("Unmatched end tag at byte offset %d, expected \"</%s>\", found \"</%s>\"", at, top.name, name)
	}
	p.stack = p.stack[:len(p.stack)-1]
	e := top.entity
	e.Length = p.units - e.Offset
	if e.Length == 0 {
		return nil
	}
	if n := len(p.stack); e.Type == "code" && n > 0 && p.stack[n-1].name == "pre" && p.stack[n-1].entity.Offset == e.Offset {
		return nil // <pre><code class="language-x"> makes one pre entity (with a language)
	}
	if e.Type == "text_link" && e.URL == "" {
		return nil
	}
	p.done = append(p.done, e)
	return nil
}

// parseAttrs reads name="value" pairs; values may be quoted with " or ' or bare.
func parseAttrs(s, tag string, at int) (map[string]string, error) {
	attrs := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t\n\r")
		if s == "" || s == "/" {
			return attrs, nil
		}
		i := strings.IndexAny(s, "= \t\n\r")
		if i == 0 {
			return nil, parseErrorf("Empty attribute name in the tag \"%s\" at byte offset %d", tag, at)
		}
		if i < 0 || s[i] != '=' {
			name := s
			if i >= 0 {
				name = s[:i]
			}
			attrs[strings.ToLower(name)] = ""
			s = s[len(name):]
			continue
		}
		name := strings.ToLower(s[:i])
		s = s[i+1:]
		value, rest, err := attrValue(s, tag, at)
		if err != nil {
			return nil, err
		}
		attrs[name] = value
		s = rest
	}
}

func attrValue(s, tag string, at int) (value, rest string, err error) {
	if s != "" && (s[0] == '"' || s[0] == '\'') {
		end := strings.IndexByte(s[1:], s[0])
		if end < 0 {
			return "", "", parseErrorf("Unclosed end of an attribute value in the tag \"%s\" at byte offset %d", tag, at)
		}
		value, rest = s[1:end+1], s[end+2:]
	} else {
		end := strings.IndexAny(s, " \t\n\r")
		if end < 0 {
			end = len(s)
		}
		value, rest = s[:end], s[end:]
	}
	decoded, err := decodeAttr(value, at)
	return decoded, rest, err
}

func decodeAttr(v string, at int) (string, error) {
	if !strings.ContainsAny(v, "&<>") {
		return v, nil
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '<', '>':
			return "", parseErrorf("Unexpected character in an attribute value at byte offset %d", at)
		case '&':
			end := strings.IndexByte(v[i:], ';')
			if end < 0 {
				return "", parseErrorf("Character '&' is reserved and must be escaped as \"&amp;\" at byte offset %d", at)
			}
			r, ok := entityRune(v[i+1 : i+end])
			if !ok {
				return "", parseErrorf("Unsupported HTML entity \"%s\" at byte offset %d", v[i:i+end+1], at)
			}
			b.WriteRune(r)
			i += end
		default:
			b.WriteByte(v[i])
		}
	}
	return b.String(), nil
}

func sortEntities(es []MessageEntity) {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Offset != es[j].Offset {
			return es[i].Offset < es[j].Offset
		}
		return es[i].Length > es[j].Length
	})
}

// finishText does to a parsed text what Telegram's server does before it stores a
// message: control characters (tab included) become spaces, "\r" and the
// characters U+2028-U+202E are dropped, entities do not start with a space or a
// newline (they start after it) nor hold only white space, and spaces and newlines
// are trimmed from the end and from the start up to the first entity.
func finishText(text string, es []MessageEntity) (string, []MessageEntity) {
	units := make([]uint16, 0, len(text))
	shift := make([]int, 0, len(text)+1) // shift[i]: units removed before old unit i
	removed := 0
	for _, r := range text {
		n := utf16.RuneLen(r)
		switch {
		case r == '\r' || (r >= 0x2028 && r <= 0x202E):
			removed += n
			for range n {
				shift = append(shift, removed)
			}
			continue
		case r < 32 && r != '\n':
			r = ' '
		}
		for range n {
			shift = append(shift, removed)
		}
		units = utf16.AppendRune(units, r)
	}
	shift = append(shift, removed)
	moved := make([]MessageEntity, 0, len(es))
	for _, e := range es {
		if e.Offset < 0 || e.Length < 0 || e.Offset+e.Length >= len(shift) {
			continue
		}
		start, end := e.Offset-shift[e.Offset], e.Offset+e.Length-shift[e.Offset+e.Length]
		for start < end && isBlank(units[start]) {
			start++
		}
		if !onlyBlank(units[start:end]) {
			e.Offset, e.Length = start, end-start
			moved = append(moved, e)
		}
	}
	return trimUnits(units, moved)
}

func isBlank(u uint16) bool { return u == ' ' || u == '\n' }

func onlyBlank(us []uint16) bool {
	for _, u := range us {
		if !isBlank(u) {
			return false
		}
	}
	return true
}

// trimUnits trims spaces and newlines from the end, and from the start up to the
// first entity.
func trimUnits(units []uint16, es []MessageEntity) (string, []MessageEntity) {
	end := len(units)
	for end > 0 && isBlank(units[end-1]) {
		end--
	}
	first := end
	for _, e := range es {
		first = min(first, e.Offset)
	}
	start := 0
	for start < first && isBlank(units[start]) {
		start++
	}
	out := es[:0:0]
	for _, e := range es {
		e.Length = min(e.Offset+e.Length, end) - e.Offset
		e.Offset -= start
		if e.Length > 0 {
			out = append(out, e)
		}
	}
	sortEntities(out)
	return string(utf16.Decode(units[start:end])), out
}

// CheckNesting reports entity nesting that Telegram does not render, which it drops
// silently (https://core.telegram.org/bots/api#formatting-options): anything inside
// code or pre, a blockquote inside a blockquote, and links, code or pre inside a link.
// Tests use it to prove that no formatting is lost.
func CheckNesting(es []MessageEntity) error {
	for i, outer := range es {
		for j, inner := range es {
			if i == j || !(inner.Offset >= outer.Offset && inner.Offset+inner.Length <= outer.Offset+outer.Length) {
				continue
			}
			if inner.Offset == outer.Offset && inner.Length == outer.Length && j > i {
				continue // the same range: the tag closed last (listed last) is the outer one
			}
			if bad := nestingProblem(outer.Type, inner.Type); bad {
				return fmt.Errorf("entity %s at %d+%d inside %s at %d+%d is not rendered",
					inner.Type, inner.Offset, inner.Length, outer.Type, outer.Offset, outer.Offset+outer.Length)
			}
		}
	}
	return nil
}

func nestingProblem(outer, inner string) bool {
	quote := func(t string) bool { return t == "blockquote" || t == "expandable_blockquote" }
	switch {
	case outer == "code" || outer == "pre":
		return true
	case quote(outer) && quote(inner):
		return true
	case outer == "text_link":
		return inner == "text_link" || inner == "code" || inner == "pre"
	}
	return false
}
