package openaitest

import (
	"io"
	"net/http"
	"net/http/httptest"
)

// NewBufferingProxy starts a reverse proxy in front of target that sends each
// answer only once it is complete, as nginx does with proxy_buffering on: a
// stream then arrives all at once. Close it when done.
func NewBufferingProxy(target string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.Path, r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	}))
}
