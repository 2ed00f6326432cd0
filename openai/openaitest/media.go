package openaitest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"time"
)

// Upload is one transcription call: the multipart form's fields and file.
type Upload struct {
	Model    string
	Filename string
	Data     []byte
}

// ImageCall is one image generation call.
type ImageCall struct {
	Model  string `json:"model"`
	Prompt string `json:"prompt"`
	N      int    `json:"n"`
}

// media holds the fake's transcription and image state (under Server.mu).
type media struct {
	uploads     []Upload
	imageCalls  []ImageCall
	images      [][]byte
	mediaErrors []Reply
}

// Uploads returns the transcription calls received so far.
func (s *Server) Uploads() []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Upload(nil), s.media.uploads...)
}

// ImageCalls returns the image generation calls received so far.
func (s *Server) ImageCalls() []ImageCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ImageCall(nil), s.media.imageCalls...)
}

// Images returns the PNGs the fake sent, in order.
func (s *Server) Images() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.media.images...)
}

// FailMedia makes the next transcription or image calls fail with these
// replies' statuses and errors, in order.
func (s *Server) FailMedia(r ...Reply) {
	s.mu.Lock()
	s.media.mediaErrors = append(s.media.mediaErrors, r...)
	s.mu.Unlock()
}

// mediaFailure pops a scripted failure, if any, and writes it.
func (s *Server) mediaFailure(w http.ResponseWriter) bool {
	s.mu.Lock()
	var r Reply
	failing := len(s.media.mediaErrors) > 0
	if failing {
		r, s.media.mediaErrors = s.media.mediaErrors[0], s.media.mediaErrors[1:]
	}
	s.mu.Unlock()
	if failing {
		writeError(w, r.Status, r.Type, r.Code, r.Message)
	}
	return failing
}

// transcriptions answers POST /v1/audio/transcriptions (multipart: file, model)
// with {"text": …}: "Transcript of NAME (N bytes)", or OpenAI's errors for a
// missing or empty file.
func (s *Server) transcriptions(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) || s.mediaFailure(w) {
		return
	}
	if err := r.ParseMultipartForm(32 << 20); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "Could not parse multipart form")
		return
	}
	f, hdr, err := r.FormFile("file")
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "you must provide a file")
		return
	}
	data, _ := io.ReadAll(f)
	up := Upload{Model: r.FormValue("model"), Filename: hdr.Filename, Data: data}
	s.mu.Lock()
	s.media.uploads = append(s.media.uploads, up)
	s.mu.Unlock()
	if len(data) == 0 {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "audio_too_short",
			"Audio file is too short. Minimum audio length is 0.1 seconds.")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"text":%q,"usage":{"type":"tokens","input_tokens":%d,"output_tokens":5,"total_tokens":%d}}`,
		Transcript(hdr.Filename, len(data)), len(data)/100+1, len(data)/100+6)
}

// Transcript is what the fake hears in a file.
func Transcript(filename string, size int) string {
	return fmt.Sprintf("Transcript of %s (%d bytes)", filename, size)
}

// imageGenerations answers POST /v1/images/generations with one PNG as
// b64_json, as the GPT image models do.
func (s *Server) imageGenerations(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) || s.mediaFailure(w) {
		return
	}
	var call ImageCall
	if _, ok := decodeBody(w, r, &call); !ok {
		return
	}
	if call.Prompt == "" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "Missing required parameter: 'prompt'.")
		return
	}
	pic := drawPNG(len(call.Prompt))
	s.mu.Lock()
	s.media.imageCalls = append(s.media.imageCalls, call)
	s.media.images = append(s.media.images, pic)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"created":%d,"data":[{"b64_json":%q}],"usage":{"total_tokens":100,"input_tokens":10,"output_tokens":90}}`,
		time.Now().Unix(), base64.StdEncoding.EncodeToString(pic))
}

// drawPNG makes a small real PNG whose colour depends on seed.
func drawPNG(seed int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	c := color.RGBA{R: uint8(seed * 37), G: uint8(seed * 91), B: 200, A: 255}
	for y := range 48 {
		for x := range 64 {
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}
