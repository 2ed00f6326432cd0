package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var staticFS embed.FS

// assets are the page's static files, embedded, each with a version (a hash of
// its bytes) for its URL, so that browsers may keep them for good, and a
// gzipped copy.
type assets struct {
	files map[string]*asset
	base  string
}

type asset struct {
	data, gz []byte
	version  string
	mime     string
}

func newAssets(base string) *assets {
	a := &assets{files: make(map[string]*asset), base: base}
	entries, err := fs.ReadDir(staticFS, "static")
	if err != nil {
		panic(err) // embedded: cannot fail
	}
	for _, e := range entries {
		data, err := staticFS.ReadFile("static/" + e.Name())
		if err != nil {
			panic(err)
		}
		a.add(e.Name(), data)
	}
	a.add("code.css", codeCSS())
	return a
}

func (a *assets) add(name string, data []byte) {
	sum := sha256.Sum256(data)
	f := &asset{data: data, version: hex.EncodeToString(sum[:6]), mime: mime.TypeByExtension(path.Ext(name))}
	if f.mime == "" {
		f.mime = "application/octet-stream"
	}
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zw.Write(data)
	zw.Close()
	if b.Len() < len(data) {
		f.gz = b.Bytes()
	}
	a.files[name] = f
}

// url is the versioned URL of a static file, for the templates.
func (a *assets) url(name string) string {
	f := a.files[name]
	if f == nil {
		panic("web: no static file " + name)
	}
	return a.base + "/static/" + name + "?v=" + f.version
}

// serve serves a static file: for a year when asked for its current version.
func (a *assets) serve(w http.ResponseWriter, r *http.Request) {
	f := a.files[r.PathValue("name")]
	if f == nil {
		http.Error(w, "Not found.", http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.mime)
	h.Set("Vary", "Accept-Encoding")
	if r.URL.Query().Get("v") == f.version {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	h.Set("ETag", `"`+f.version+`"`)
	if r.Header.Get("If-None-Match") == `"`+f.version+`"` {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	data := f.data
	if f.gz != nil && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		data = f.gz
	}
	w.Write(data)
}
