package web_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The browser tests drive Debian's chromium, headless. Without it they are
// skipped, except in CI (CI=true), where they fail.

var (
	chromeOnce    sync.Once
	chromeCtx     context.Context // the one browser, shared by the tests
	chromeStop    context.CancelFunc
	chromeErr     error
	chromeMissing bool
)

// chromePath finds the browser: $CHROME_PATH, or chromium on the PATH.
func chromePath() string {
	if p := os.Getenv("CHROME_PATH"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func startChrome() {
	path := chromePath()
	if path == "" {
		chromeMissing = true
		return
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 860),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	alloc, stopAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, stopBrowser := chromedp.NewContext(alloc)
	if chromeErr = chromedp.Do(ctx); chromeErr != nil {
		stopBrowser()
		stopAlloc()
		return
	}
	chromeCtx = ctx
	chromeStop = func() { stopBrowser(); stopAlloc() }
}

func TestMain(m *testing.M) {
	code := m.Run()
	if chromeStop != nil {
		chromeStop()
	}
	os.Exit(code)
}

// tab is a browser tab in a fresh profile (its own cookies), with the
// page's JavaScript errors and CSP reports collected.
type tab struct {
	t   testing.TB
	ctx context.Context

	mu     sync.Mutex
	errors []string
}

// newTab opens a tab in a new browser profile.
func newTab(t testing.TB) *tab {
	t.Helper()
	chromeOnce.Do(startChrome)
	switch {
	case chromeMissing && os.Getenv("CI") == "true":
		t.Fatal("chromium is not installed (apt-get install chromium); CI needs the browser tests")
	case chromeMissing:
		t.Skip("chromium is not installed; skipping the browser tests (apt-get install chromium)")
	case chromeErr != nil:
		t.Fatalf("start chromium: %v", chromeErr)
	}
	tb := &tab{t: t}
	ctx, cancel := chromedp.NewContext(chromeCtx, chromedp.WithNewBrowserContext(), chromedp.WithListener(tb.listen))
	t.Cleanup(cancel)
	tb.ctx = ctx
	tb.start()
	return tb
}

// another opens a second tab in the same profile (same cookies).
func (tb *tab) another() *tab {
	t2 := &tab{t: tb.t}
	ctx, cancel := chromedp.NewContext(tb.ctx, chromedp.WithListener(t2.listen))
	tb.t.Cleanup(cancel)
	t2.ctx = ctx
	t2.start()
	return t2
}

func (tb *tab) start() {
	tb.t.Helper()
	if _, err := chromedp.Call(tb.ctx, log.Enable, cdp.Empty{}); err != nil {
		tb.t.Fatal(err)
	}
}

// listen collects the page's errors: uncaught exceptions, and CSP and
// Trusted Types reports.
func (tb *tab) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		msg = "exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			msg += " " + ev.ExceptionDetails.Exception.Description
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError && (ev.Entry.Source == log.EntrySourceSecurity ||
			strings.Contains(ev.Entry.Text, "Content Security Policy") || strings.Contains(ev.Entry.Text, "Trusted Type")) {
			msg = "security: " + ev.Entry.Text
		}
	}
	if msg != "" {
		tb.mu.Lock()
		tb.errors = append(tb.errors, msg)
		tb.mu.Unlock()
	}
}

// pageErrors returns the page's JavaScript errors and CSP reports so far.
func (tb *tab) pageErrors() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.errors...)
}

// do runs actions within the wait bound and fails the test on an error.
func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, wait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("browser: %v (page errors: %v)", err, tb.pageErrors())
	}
}

// eval returns the value of a JavaScript expression.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, wait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v (page errors: %v)", expr, err, tb.pageErrors())
	}
	return v
}

// until waits until the JavaScript expression is true. An error (such as a
// navigation destroying the page's JavaScript context while it waits) is
// waited out, until the bound.
func (tb *tab) until(expr string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, wait)
	defer cancel()
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(5*time.Millisecond)))
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			tb.t.Fatalf("waiting for %s: %v (page errors: %v)", expr, err, tb.pageErrors())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// evalAsync returns the value of a JavaScript expression that is a promise.
func evalAsync[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, wait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v (page errors: %v)", expr, err, tb.pageErrors())
	}
	return v
}

// count returns how many elements match a CSS selector.
func (tb *tab) count(sel string) int {
	tb.t.Helper()
	return eval[int](tb, fmt.Sprintf("document.querySelectorAll(%q).length", sel))
}

// texts returns the text of each element that matches sel.
func (tb *tab) texts(sel string) []string {
	tb.t.Helper()
	return eval[[]string](tb, fmt.Sprintf("[...document.querySelectorAll(%q)].map(e => e.innerText.trim())", sel))
}

// login logs in with the form on the page at url.
func (tb *tab) login(url, name, password string) {
	tb.t.Helper()
	tb.do(
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), name),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`textarea[name=message]`)),
	)
}

// say types text in the message box and presses Enter.
func (tb *tab) say(text string) {
	tb.t.Helper()
	tb.do(
		chromedp.WaitVisible(chromedp.CSS(`textarea[name=message]`)),
		chromedp.SendKeys(chromedp.CSS(`textarea[name=message]`), text+"\r"),
	)
}

// noErrors fails the test if the page had JavaScript errors or CSP reports.
func (tb *tab) noErrors() {
	tb.t.Helper()
	if errs := tb.pageErrors(); len(errs) > 0 {
		tb.t.Errorf("page errors: %q", errs)
	}
}

// screenshot saves the page as a PNG.
func (tb *tab) screenshot(path string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, wait)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}
