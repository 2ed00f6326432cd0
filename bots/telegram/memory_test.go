package telegram_test

import (
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/telegram"
	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
)

// slimModel carries the model's calls to the fake OpenAI without their images:
// it reads each Responses request's body as it streams, counting its bytes,
// and sends the fake a small request in its place. So the fake keeps no copy
// of the pictures, and the heap measures the bot alone.
type slimModel struct {
	mu     sync.Mutex
	bodies []int64 // the sizes of the requests' bodies, as the bot sent them
}

func (m *slimModel) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || !strings.HasSuffix(req.URL.Path, "/responses") {
		return http.DefaultTransport.RoundTrip(req)
	}
	n, err := io.Copy(io.Discard, req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.bodies = append(m.bodies, n)
	m.mu.Unlock()
	const small = `{"model":"gpt-5.4-mini","stream":true,"store":false,"input":[{"role":"user","content":"a photo"}]}`
	out, err := http.NewRequestWithContext(req.Context(), http.MethodPost, req.URL.String(), strings.NewReader(small))
	if err != nil {
		return nil, err
	}
	out.Header = req.Header.Clone()
	out.Header.Del("Content-Length")
	return http.DefaultTransport.RoundTrip(out)
}

func (m *slimModel) sizes() []int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]int64(nil), m.bodies...)
}

// heapPeak samples the heap until stop is called, and returns the most it held.
func heapPeak() (stop func() uint64) {
	done := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var most uint64
		var ms runtime.MemStats
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			most = max(most, ms.HeapAlloc)
			select {
			case <-done:
				peak <- most
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		return <-peak
	}
}

// largePhotos sends twenty photos of size bytes at once, from twenty users, to
// a bot that reads files up to twice that size, with FileMemory at fileMemory
// (0: the default, two of its largest files). It returns the heap's peak above
// what it held before, and the most downloads that ran at once.
func largePhotos(t *testing.T, size int, fileMemory int64) (peak uint64, downloads int) {
	const photos = 20
	pic := paddedJPEG(t, size) // one buffer: the fake serves the same bytes twenty times
	users, ids := someUsers(photos)
	model := &slimModel{}
	h := newHarness(t, func(h *harness) { h.modelHTTP = &http.Client{Transport: model} },
		adapter(func(o *telegram.Options) {
			o.AllowedUserIDs = ids
			o.MaxFileBytes, o.FileMemory = 2*int64(size), fileMemory
		}))
	h.tg.SetDownloadDelay(300 * time.Millisecond) // a download takes a while, so that they overlap

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := heapPeak()
	for _, u := range users {
		h.tg.Inject(telegramtest.Incoming{From: u, Media: telegramtest.Photo(pic), Caption: "what is it?"})
	}
	for _, u := range users {
		h.waitReply(u.ID, 1, "You said: a photo")
	}
	most := stop()

	if n := len(h.tg.Downloads()); n != photos {
		t.Errorf("%d downloads, want %d", n, photos)
	}
	// Each model call carried its photo: base64 makes 4 bytes of 3.
	for _, n := range model.sizes() {
		if n < int64(size)*4/3 {
			t.Errorf("a model call of %d bytes, want the photo (%d bytes in base64) in it", n, size*4/3)
		}
	}
	if n := len(model.sizes()); n != photos {
		t.Errorf("%d model calls, want %d", n, photos)
	}
	return most - min(most, before.HeapAlloc), h.tg.MaxConcurrentDownloads()
}

// TestTwentyLargePhotosAtOnce checks that twenty people sending 10 MB photos
// at the same moment cannot make the bot hold them all: with the default
// FileMemory (two files of the largest size: four of these photos), at most
// four are downloaded or answered at once, and the heap stays well below what
// twenty at once take.
//
// Answering a photo takes several times its size at its peak (the bytes,
// their base64 string and the data URL made of it, the JSON request, the
// store's copy). The test runs the collector more often than by default
// (GOGC 25), so that the peak shows what is held rather than how far garbage
// ran ahead of the collector on a busy machine: four photos at once then
// measured 20–24 times a photo's size (236 MB for 10 MB photos), all twenty at
// once 130 times (1.3 GB). The bound, 16 times FileMemory (64 photo sizes),
// lies between the two. With the race detector, which makes these copies many
// times slower, the photos are of 2 MB. (docs/BENCHMARKS.md gives the peak with
// the default collector.)
func TestTwentyLargePhotosAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 200 MB of photos")
	}
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	size := 10 << 20
	if raceEnabled {
		size = 2 << 20
	}
	peak, downloads := largePhotos(t, size, 0)
	fileMemory := uint64(4 * size)
	t.Logf("20 photos of %d MB, FileMemory %d MB: heap peak %d MB above the start, at most %d downloads at once",
		size>>20, fileMemory>>20, peak>>20, downloads)
	// Four photos are held at once at most; a holder may be answering rather
	// than downloading, so fewer downloads may overlap, but some do.
	if downloads > 4 || downloads < 2 {
		t.Errorf("at most %d downloads ran at once, want 2 to 4 (FileMemory holds four photos)", downloads)
	}
	if bound := 16 * fileMemory; peak >= bound {
		t.Errorf("heap peak %d MB above the start, want under %d MB", peak>>20, bound>>20)
	}
}
