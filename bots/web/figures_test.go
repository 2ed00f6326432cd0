package web_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

var (
	figures = flag.Bool("figures", false, "measure the figures of docs/BENCHMARKS.md's web chat section (about a minute)")
	shots   = flag.String("shots", "", "write the screenshots of docs/web.md into this folder (e.g. ../../docs)")
)

// firstByte records when each model response's body first delivers bytes:
// with the fake's FirstDelay, that is when the first token arrives.
type firstByte struct {
	mu    sync.Mutex
	times []time.Time
}

func (f *firstByte) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		resp.Body = &timedBody{ReadCloser: resp.Body, f: f}
	}
	return resp, err
}

type timedBody struct {
	io.ReadCloser
	f    *firstByte
	seen bool
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 && !b.seen {
		b.seen = true
		b.f.mu.Lock()
		b.f.times = append(b.f.times, time.Now())
		b.f.mu.Unlock()
	}
	return n, err
}

func (f *firstByte) last() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.times[len(f.times)-1]
}

func quantiles(d []time.Duration) string {
	slices.Sort(d)
	q := func(p float64) time.Duration { return d[int(p*float64(len(d)-1))] }
	return fmt.Sprintf("median %v, p90 %v, max %v (n=%d)", q(0.5).Round(100*time.Microsecond), q(0.9).Round(100*time.Microsecond), d[len(d)-1].Round(100*time.Microsecond), len(d))
}

// TestFigures measures, in headless Chromium against the fake OpenAI: the
// time from the first model token reaching the bot to the first text visible
// in the page; the bytes of a first page load; the time to open a
// conversation of 500 messages.
func TestFigures(t *testing.T) {
	if !*figures {
		t.Skip("run with -figures")
	}
	fb := &firstByte{}
	h := newHarness(t, func(s *setup) { s.modelHTTP = &http.Client{Transport: fb} })
	b := newTab(t)

	// Bytes of a first load: the login page, then the chat page, each with an
	// empty cache; and the chat page again, cached.
	transfer := `(() => performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource')).reduce((n, e) => n + e.transferSize, 0))()`
	decoded := `(() => performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource')).reduce((n, e) => n + e.decodedBodySize, 0))()`
	clear := func() {
		if _, err := chromedp.Call(b.ctx, network.ClearBrowserCache, cdp.Empty{}); err != nil {
			t.Fatal(err)
		}
	}
	clear()
	b.do(chromedp.Navigate(h.URL), chromedp.WaitVisible(chromedp.CSS(`input[name=password]`)))
	t.Logf("login page, empty cache: %d bytes transferred (%d bytes decoded)", eval[int](b, transfer), eval[int](b, decoded))
	b.login(h.URL, "ana", anaPassword)
	clear()
	b.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`textarea[name=message]`)))
	t.Logf("chat page, empty cache: %d bytes transferred (%d bytes decoded)", eval[int](b, transfer), eval[int](b, decoded))
	b.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`textarea[name=message]`)))
	t.Logf("chat page again, cached: %d bytes transferred", eval[int](b, transfer))

	// First token → first visible text.
	var lags []time.Duration
	for i := range 20 {
		h.fake.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize("Hello there, this is the answer."), FirstDelay: 150 * time.Millisecond, TokenDelay: 30 * time.Millisecond})
		eval[bool](b, `(() => {
		  window.__seen = 0;
		  const n = document.querySelectorAll('[data-role=assistant]').length;
		  const obs = new MutationObserver(() => {
		    const all = document.querySelectorAll('[data-role=assistant]');
		    if (all.length > n && all[all.length - 1].querySelector('.body').innerText.trim() !== '') {
		      window.__seen = performance.timeOrigin + performance.now(); obs.disconnect();
		    }
		  });
		  obs.observe(document.getElementById('messages'), {childList: true, subtree: true, characterData: true});
		  return true; })()`)
		b.say(fmt.Sprint("question ", i))
		b.until(`window.__seen > 0`)
		b.until(replyDone)
		seen := eval[float64](b, `window.__seen`)
		lags = append(lags, time.UnixMicro(int64(seen*1000)).Sub(fb.last()))
	}
	t.Logf("first token → first visible text: %s", quantiles(lags))

	// A conversation of 500 messages.
	a := h.client(t)
	a.login("ana", anaPassword)
	conv := a.send("", "message 0").Conversation
	chat := chatOf(t, h, "web:ana", conv)
	a.waitDone(conv)
	for i := 1; i < 250; i++ {
		answer := fmt.Sprintf("Answer %d with **some** Markdown and a list:\n\n- one\n- two\n\nand a paragraph that is long enough to wrap on a narrow screen, as answers are.", i)
		if i%5 == 0 {
			answer += "\n\n```go\nfunc f(x int) int {\n\treturn x * 2\n}\n```"
		}
		h.db.AppendTurn(context.Background(), chat,
			conversation.Message{Role: conversation.RoleUser, Content: fmt.Sprint("question ", i), Time: time.Now()},
			conversation.Message{Role: conversation.RoleAssistant, Content: answer, Time: time.Now()})
	}
	var opens, ready []time.Duration
	for range 7 {
		b.do(chromedp.Navigate(h.URL+"c/"+conv), chromedp.WaitVisible(chromedp.CSS(`[data-role=assistant]`)))
		b.until(`performance.getEntriesByType('navigation')[0].loadEventEnd > 0`)
		nav := eval[map[string]float64](b, `(() => { const n = performance.getEntriesByType('navigation')[0]; return {dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd, size: n.transferSize}; })()`)
		opens = append(opens, time.Duration(nav["load"]*float64(time.Millisecond)))
		ready = append(ready, time.Duration(nav["dcl"]*float64(time.Millisecond)))
	}
	t.Logf("open a 500-message conversation (newest 40 shown, older load on scroll): DOMContentLoaded %s; load %s", quantiles(ready), quantiles(opens))
	b.do(chromedp.Navigate(h.URL+"c/"+conv), chromedp.WaitVisible(chromedp.CSS(`[data-role=assistant]`)))
	start := time.Now()
	for b.count(`#older`) > 0 {
		eval[bool](b, `(document.getElementById('scroll').scrollTop = 0, true)`)
		time.Sleep(20 * time.Millisecond)
		if time.Since(start) > wait {
			t.Fatal("older messages do not load")
		}
	}
	t.Logf("scrolling up to the first message: %d messages shown after %v", b.count(`[data-role]`), time.Since(start).Round(time.Millisecond))
}

// TestScreenshots writes the screenshots of the README and docs/web.md.
func TestScreenshots(t *testing.T) {
	if *shots == "" {
		t.Skip("run with -shots DIR")
	}
	h := newHarness(t, func(s *setup) {
		s.web.Models = []string{"gpt-5.4-mini", "gpt-5.5"}
		s.engine.Models = s.web.Models
	})
	a := h.client(t)
	a.login("ana", anaPassword)
	for _, q := range []string{"Plan a weekend in Lisbon", "Explain Go's context package", "Which tea goes with dumplings?"} {
		a.waitDone(a.send("", q).Conversation)
	}
	h.fake.Enqueue(openaitest.Text("Here is a small, safe way to read a file line by line in Go:\n\n" +
		"```go\nf, err := os.Open(\"notes.txt\")\nif err != nil {\n\treturn err\n}\ndefer f.Close()\n\nsc := bufio.NewScanner(f)\nfor sc.Scan() {\n\tfmt.Println(sc.Text())\n}\nreturn sc.Err()\n```\n\n" +
		"| Step | Why |\n|---|---|\n| `os.Open` | opens read-only |\n| `defer f.Close()` | closes it on every path |\n| `sc.Err()` | reports a read error, not EOF |\n\n" +
		"For very long lines, raise the limit with `sc.Buffer`."))
	shot := func(name string, width, height int64, dark bool, mobile bool) {
		b := newTab(t)
		opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(2)}
		if mobile {
			opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
		}
		b.do(chromedp.EmulateViewport(width, height, opts...))
		scheme := "light"
		if dark {
			scheme = "dark"
		}
		if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}}); err != nil {
			t.Fatal(err)
		}
		b.login(h.URL, "ana", anaPassword)
		b.do(chromedp.Navigate(eval[string](b, `document.querySelector('[data-conversation]').href`)))
		b.until(`document.querySelectorAll('[data-role]').length >= 2`)
		if b.count(`pre`) == 0 {
			b.say("How do I read a file line by line in Go?")
			b.until(`document.querySelector('pre') != null && ` + replyDone)
		}
		eval[bool](b, `(document.activeElement.blur(), document.getElementById('scroll').scrollTop = 0, true)`)
		b.screenshot(filepath.Join(*shots, name))
	}
	shot("web-desktop.png", 1280, 800, false, false)
	shot("web-phone.png", 390, 844, true, true)
	t.Log(strings.Join([]string{"wrote", filepath.Join(*shots, "web-desktop.png"), filepath.Join(*shots, "web-phone.png")}, " "))
}
