package web_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// Browser tests: the page in headless Chromium, against the real server,
// engine and store, with the fake OpenAI. They use only the page contract:
// the form's names, textarea[name=message], data-role, aria-label "Stop" and
// "New chat", and data-conversation.

// slow streams text one word every delay.
func slow(text string, delay time.Duration) openaitest.Reply {
	return openaitest.Reply{Tokens: openaitest.Tokenize(text), TokenDelay: delay}
}

// watchReply records, in the page, each text the last assistant message
// shows, and whether it stays the same element.
const watchReply = `(() => {
  window.__states = []; window.__elements = new Set();
  const look = () => {
    const all = document.querySelectorAll('[data-role=assistant]');
    const a = all[all.length - 1];
    if (!a) return;
    window.__elements.add(a);
    const t = a.innerText.trim();
    if (t && window.__states[window.__states.length - 1] !== t) window.__states.push(t);
  };
  new MutationObserver(look).observe(document.getElementById('messages'), {childList: true, subtree: true, characterData: true});
  return true;
})()`

// lastReply is the text of the last assistant message.
const lastReply = `(() => { const a = [...document.querySelectorAll('[data-role=assistant]')].pop(); return a ? a.querySelector('.body').innerText.trim() : ''; })()`

// replyDone is true when no reply is being written.
const replyDone = `document.querySelectorAll('[data-role=assistant]').length > 0 && !document.querySelector('.streaming, .pending')`

func TestBrowserLogin(t *testing.T) {
	h := newHarness(t)
	b := newTab(t)
	b.do(
		chromedp.Navigate(h.URL),
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), "ana"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), "not the password"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`.error`)),
	)
	if got := b.texts(".error"); len(got) != 1 || got[0] != "Wrong name or password." {
		t.Errorf("error = %q", got)
	}
	if b.count(`textarea[name=message]`) != 0 {
		t.Fatal("a wrong password opened the chat")
	}
	b.login(h.URL, "ana", anaPassword)
	if b.count(`[data-role]`) != 0 || b.count(`[aria-label="New chat"]`) != 1 {
		t.Error("a fresh login does not show an empty new chat")
	}
	b.noErrors()
}

func TestBrowserReplyGrowsInPlace(t *testing.T) {
	h := newHarness(t)
	const text = "The quick brown fox jumps over the lazy dog and runs far away."
	h.fake.Enqueue(slow(text, 60*time.Millisecond))
	b := newTab(t)
	b.login(h.URL, "ana", anaPassword)
	eval[bool](b, watchReply)
	b.say("Tell me about the fox")
	b.until(replyDone)
	states := eval[[]string](b, `window.__states`)
	if len(states) < 3 || states[len(states)-1] != text {
		t.Fatalf("the reply showed %q", states)
	}
	for i := 1; i < len(states); i++ {
		if !strings.HasPrefix(states[i], states[i-1]) {
			t.Errorf("state %q does not extend %q", states[i], states[i-1])
		}
	}
	if n := eval[int](b, `window.__elements.size`); n != 1 {
		t.Errorf("the reply was %d elements, want one growing in place", n)
	}
	if got := b.texts(`[data-role]`); len(got) != 2 || got[0] != "Tell me about the fox" {
		t.Errorf("messages = %q", got)
	}
	b.noErrors()
}

func TestBrowserEnterSendsShiftEnterBreaksTheLine(t *testing.T) {
	h := newHarness(t)
	b := newTab(t)
	b.login(h.URL, "ana", anaPassword)
	b.do(
		chromedp.SendKeys(chromedp.CSS(`textarea[name=message]`), "line one"),
		chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierShift)),
		chromedp.SendKeys(chromedp.CSS(`textarea[name=message]`), "line two"),
	)
	if v := eval[string](b, `document.querySelector('textarea[name=message]').value`); v != "line one\nline two" {
		t.Fatalf("after Shift+Enter the box holds %q", v)
	}
	if b.count(`[data-role]`) != 0 {
		t.Fatal("Shift+Enter sent the message")
	}
	b.do(chromedp.SendKeys(chromedp.CSS(`textarea[name=message]`), "\r"))
	b.until(replyDone)
	if got := b.texts(`[data-role=user]`); len(got) != 1 || got[0] != "line one\nline two" {
		t.Errorf("sent %q", got)
	}
	if v := eval[string](b, `document.querySelector('textarea[name=message]').value`); v != "" {
		t.Errorf("the box holds %q after sending", v)
	}
}

func TestBrowserStop(t *testing.T) {
	h := newHarness(t)
	h.fake.Enqueue(slow(strings.Repeat("word ", 60), 150*time.Millisecond))
	b := newTab(t)
	b.login(h.URL, "ana", anaPassword)
	b.say("Talk for a long time")
	b.until(`(` + lastReply + `).length > 0`)
	b.do(chromedp.Click(chromedp.CSS(`button[aria-label="Stop"]`)))
	b.until(replyDone)
	waitFor(t, func() bool { return h.fake.Canceled() == 1 })
	final := eval[string](b, lastReply)
	if !strings.HasSuffix(final, "(stopped)") || strings.Count(final, "word") >= 60 {
		t.Errorf("stopped reply = %q", final)
	}
	if b.count(`button[aria-label="Stop"]:not([hidden])`) != 0 {
		t.Error("Stop is still shown")
	}
	b.noErrors()
}

func TestBrowserReloadMidStream(t *testing.T) {
	h := newHarness(t)
	words := strings.Fields("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma")
	h.fake.Enqueue(slow(strings.Join(words, " "), 120*time.Millisecond))
	b := newTab(t)
	b.login(h.URL, "ana", anaPassword)
	b.say("Greek letters please")
	b.until(`(` + lastReply + `).split(' ').length >= 3`)
	url := eval[string](b, `location.pathname`)
	if !strings.Contains(url, "/c/") {
		t.Fatalf("the conversation's URL is %q", url)
	}
	b.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`textarea[name=message]`)))
	if got := eval[string](b, `location.pathname`); got != url {
		t.Errorf("after reload the page is %q, want %q", got, url)
	}
	if shown := eval[string](b, lastReply); shown == "" || shown == strings.Join(words, " ") {
		t.Errorf("right after the reload the reply shows %q: want the reply so far", shown)
	}
	b.until(replyDone)
	if got := eval[string](b, lastReply); got != strings.Join(words, " ") {
		t.Errorf("final reply = %q", got)
	}
	if got := b.texts(`[data-role]`); len(got) != 2 || got[0] != "Greek letters please" {
		t.Errorf("messages after reload = %q", got)
	}
	b.noErrors()
}

func TestBrowserReconnectMidStream(t *testing.T) {
	h := newHarness(t)
	words := strings.Fields("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen")
	h.fake.Enqueue(slow(strings.Join(words, " "), 120*time.Millisecond))
	b := newTab(t)
	b.login(h.URL, "ana", anaPassword)
	eval[bool](b, watchReply)
	b.say("Count")
	b.until(`(` + lastReply + `).split(' ').length >= 3`)
	h.srv.CloseClientConnections() // the network drops; the page reconnects by itself
	b.until(`(` + lastReply + `).split(' ').length >= 8`)
	h.srv.CloseClientConnections()
	b.until(replyDone)
	if got := eval[string](b, lastReply); got != strings.Join(words, " ") {
		t.Errorf("final reply = %q", got)
	}
	if n := b.count(`[data-role]`); n != 2 {
		t.Errorf("%d messages after reconnecting, want 2", n)
	}
	if h.fake.Canceled() != 0 {
		t.Error("a dropped page connection cancelled the model call")
	}
	b.noErrors()
}

func TestBrowserTwoTabs(t *testing.T) {
	h := newHarness(t)
	a := newTab(t)
	a.login(h.URL, "ana", anaPassword)
	a.say("first")
	a.until(replyDone)
	url := eval[string](a, `location.href`)
	b := a.another()
	b.do(chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`textarea[name=message]`)))
	eval[bool](b, watchReply)
	const text = "Both tabs see this reply grow word by word."
	h.fake.Enqueue(slow(text, 80*time.Millisecond))
	a.say("second")
	b.until(`document.querySelectorAll('[data-role=user]').length == 2`)
	b.until(replyDone + ` && (` + lastReply + `) == ` + fmt.Sprintf("%q", text))
	a.until(replyDone + ` && (` + lastReply + `) == ` + fmt.Sprintf("%q", text))
	if states := eval[[]string](b, `window.__states`); len(states) < 3 {
		t.Errorf("the second tab saw %q, want the reply grow", states)
	}
	if got, want := b.texts(`[data-role]`), a.texts(`[data-role]`); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("tabs differ:\n%q\n%q", got, want)
	}
	a.noErrors()
	b.noErrors()
}

func TestBrowserNewChatAndSwitching(t *testing.T) {
	h := newHarness(t)
	b := newTab(t)
	b.login(h.URL, "ana", anaPassword)
	b.say("alpha question")
	b.until(replyDone)
	first := eval[string](b, `location.pathname`)
	b.do(chromedp.Click(chromedp.CSS(`[aria-label="New chat"]`)))
	b.until(`location.pathname == ` + fmt.Sprintf("%q", strings.TrimPrefix(h.URL, h.srv.URL)))
	b.do(chromedp.WaitVisible(chromedp.CSS(`textarea[name=message]`)))
	if n := b.count(`[data-role]`); n != 0 {
		t.Fatalf("a new chat shows %d messages", n)
	}
	b.say("beta question")
	b.until(replyDone)
	second := eval[string](b, `location.pathname`)
	if second == first || !strings.Contains(second, "/c/") {
		t.Fatalf("the new chat's URL is %q (first %q)", second, first)
	}
	if got := b.texts(`[data-conversation]`); len(got) != 2 || got[0] != "beta question" || got[1] != "alpha question" {
		t.Errorf("list = %q, want newest first", got)
	}
	b.do(chromedp.Click(chromedp.CSS(`[data-conversation]:not([aria-current])`)))
	b.until(`location.pathname == ` + fmt.Sprintf("%q", first))
	b.do(chromedp.WaitVisible(chromedp.CSS(`[data-role=user]`)))
	if got := b.texts(`[data-role]`); len(got) != 2 || got[0] != "alpha question" || got[1] != "You said: alpha question" {
		t.Errorf("first conversation shows %q", got)
	}
	b.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`[data-role=user]`)))
	if got := b.texts(`[data-role]`); len(got) != 2 || got[0] != "alpha question" {
		t.Errorf("after reload %q", got)
	}
	b.noErrors()
}

func TestBrowserMarkdownAndCode(t *testing.T) {
	h := newHarness(t)
	h.fake.Enqueue(openaitest.Text("## Plan\n\n1. **first** step\n2. `second` step\n\n```go\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n```\n\n| x | y |\n|---|---|\n| 1 | 2 |\n\n[Go](https://go.dev)"))
	b := newTab(t)
	b.login(h.URL, "ana", anaPassword)
	b.say("markdown please")
	b.until(replyDone)
	for sel, want := range map[string]int{
		`[data-role=assistant] h2`: 1, `[data-role=assistant] ol li`: 2, `[data-role=assistant] strong`: 1,
		`[data-role=assistant] pre code .kd`: 1, `[data-role=assistant] table td`: 2, `[data-role=assistant] button.copy`: 1,
		`[data-role=assistant] a[href="https://go.dev"][rel~=noopener]`: 1,
	} {
		if n := b.count(sel); n != want {
			t.Errorf("%s: %d, want %d", sel, n, want)
		}
	}
	b.do(chromedp.Click(chromedp.CSS(`button.copy`)))
	b.until(`document.querySelector('button.copy').hasAttribute('data-copied')`)
	// Colours come from the style sheet: the keyword is not the text colour.
	if same := eval[bool](b, `getComputedStyle(document.querySelector('.kd')).color == getComputedStyle(document.querySelector('[data-role=assistant] p, [data-role=assistant] li')).color`); same {
		t.Error("code is not highlighted")
	}
	b.noErrors()
}

func TestBrowserHostileContentNeverRuns(t *testing.T) {
	h := newHarness(t)
	const hostile = "<script>window.__pwned='script'</script>\n\n" +
		"<img src=x onerror=\"window.__pwned='img'\">\n\n" +
		"[click me](javascript:window.__pwned='link')\n\n" +
		"<a href=\"javascript:window.__pwned='a'\">raw link</a>\n\n" +
		"<iframe src=\"javascript:parent.__pwned='iframe'\"></iframe>\n\n" +
		"<svg onload=\"window.__pwned='svg'\"></svg>\n\n" +
		"<details open ontoggle=\"window.__pwned='details'\">x</details>\n\n" +
		"![pic](javascript:window.__pwned='image')\n\n" +
		"[entity](&#106;avascript:window.__pwned='entity')"
	h.fake.Enqueue(openaitest.Text(hostile))
	b := newTab(t)
	b.login(h.URL, "ana", anaPassword)
	b.say(`<img src=x onerror="window.__pwned='user'"><script>window.__pwned='user script'</script> [x](javascript:window.__pwned='user link')`)
	b.until(replyDone)
	check := func(when string) {
		t.Helper()
		// Click every link in the messages that stays on the page.
		eval[bool](b, `[...document.querySelectorAll('.messages a:not([target=_blank])')].forEach(a => a.click()) || true`)
		time.Sleep(100 * time.Millisecond)
		if got := eval[string](b, `String(window.__pwned)`); got != "undefined" {
			t.Errorf("%s: hostile content ran: %s", when, got)
		}
		if n := b.count(`.messages script, .messages img, .messages iframe, .messages svg, .messages details[ontoggle], .messages a[href^=javascript], .messages [onerror]`); n != 0 {
			t.Errorf("%s: %d hostile elements in the page", when, n)
		}
		if got := eval[string](b, `document.querySelector('[data-role=user]').innerText`); !strings.Contains(got, "<script>window.__pwned='user script'</script>") {
			t.Errorf("%s: the user's text is not shown as text: %q", when, got)
		}
		if got := eval[string](b, lastReply); !strings.Contains(got, "<script>window.__pwned='script'</script>") || !strings.Contains(got, "click me") {
			t.Errorf("%s: the model's text is not shown as text: %q", when, got)
		}
		if n := b.count(`[data-conversation]`); n != 1 || strings.Contains(eval[string](b, `document.querySelector('[data-conversation]').innerHTML`), "<img") {
			t.Errorf("%s: the title is not escaped", when)
		}
	}
	check("streamed")
	b.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`[data-role=assistant]`)))
	check("reloaded")
	// The CSP's Trusted Types stop any other script writing HTML.
	if err := eval[string](b, `(() => { try { document.body.insertAdjacentHTML('beforeend', '<b>x</b>'); return 'allowed'; } catch (e) { return e.name; } })()`); err != "TypeError" {
		t.Errorf("writing HTML outside the policy: %s", err)
	}
}

func TestBrowserLoginRateLimit(t *testing.T) {
	h := newHarness(t)
	b := newTab(t)
	attempt := func(password string) string {
		b.do(
			chromedp.Navigate(h.URL),
			chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
			chromedp.SendKeys(chromedp.CSS(`input[name=username]`), "ana"),
			chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password),
			chromedp.Click(chromedp.CSS(`button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`.error`)),
		)
		return b.texts(".error")[0]
	}
	for i := range 5 {
		if got := attempt("guess"); got != "Wrong name or password." {
			t.Fatalf("attempt %d: %q", i+1, got)
		}
	}
	if got := attempt(anaPassword); !strings.Contains(got, "Too many login attempts") {
		t.Errorf("6th attempt: %q", got)
	}
	if b.count(`textarea[name=message]`) != 0 {
		t.Error("logged in past the limit")
	}
}

func TestBrowserNoSession(t *testing.T) {
	h := newHarness(t)
	b := newTab(t)
	b.do(chromedp.Navigate(h.URL+"c/abcdef"), chromedp.WaitVisible(chromedp.CSS(`input[name=password]`)))
	if b.count(`textarea[name=message]`) != 0 {
		t.Error("a conversation opens without a session")
	}
	status := evalAsync[int](b, `(async () => (await fetch('send', {method: 'POST', body: new URLSearchParams({message: 'hi'})})).status)()`)
	if status != 401 && status != 403 {
		t.Errorf("send without a session = %d", status)
	}
	if n := len(h.fake.Requests()); n != 0 {
		t.Errorf("model calls = %d", n)
	}
}

func TestBrowserLoginLinkWorksOnce(t *testing.T) {
	h := newHarness(t)
	telegramSay(t, h, "remember the number 42")
	link := linkRE.FindString(telegramSay(t, h, "/web"))
	if link == "" {
		t.Fatal("no link")
	}
	b := newTab(t)
	b.do(chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`textarea[name=message]`)))
	if got := b.texts(`[data-role]`); len(got) != 2 || got[0] != "remember the number 42" {
		t.Errorf("the Telegram chat shows %q", got)
	}
	if got := b.texts(`[data-conversation]`); len(got) != 1 || got[0] != "Telegram chat" {
		t.Errorf("list = %q", got)
	}
	b.say("what number?")
	b.until(`document.querySelectorAll('[data-role=assistant]').length == 2 && ` + replyDone)
	if got := contents(h.fake.Requests()[1]); !strings.Contains(got, "user:remember the number 42") {
		t.Errorf("the web turn's context lacks the Telegram history: %s", got)
	}
	other := newTab(t)
	other.do(chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`.error`)))
	if other.count(`textarea[name=message]`) != 0 {
		t.Error("the link worked twice")
	}
	b.noErrors()
}

func TestBrowserPhone(t *testing.T) {
	h := newHarness(t)
	h.fake.Enqueue(openaitest.Text("A long line of code:\n\n```sh\ncurl -sS https://example.com/a/very/long/path/that/does/not/fit/on/a/phone/screen?with=query&and=more\n```\n\nDone."))
	b := newTab(t)
	b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch))
	b.login(h.URL, "ana", anaPassword)
	b.say("phone test with a rather long question that wraps on a small screen")
	b.until(replyDone)
	if w := eval[int](b, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("the page is %d px wide on a 390 px screen", w)
	}
	if right := eval[float64](b, `document.getElementById('sidebar').getBoundingClientRect().right`); right > 0 {
		t.Errorf("the conversation list covers the chat (right edge %v)", right)
	}
	for _, sel := range []string{`textarea[name=message]`, `button[aria-label="Send"]`, `[data-role=assistant] pre`} {
		if right := eval[float64](b, fmt.Sprintf(`document.querySelector(%q).getBoundingClientRect().right`, sel)); right > 390 {
			t.Errorf("%s reaches %v px", sel, right)
		}
	}
	// New chat is in the top bar; the list opens as a drawer.
	b.do(chromedp.Click(chromedp.CSS(`[aria-label="New chat"]`)))
	b.until(`document.querySelectorAll('[data-role]').length == 0 && document.querySelector('textarea[name=message]') != null`)
	b.do(chromedp.Click(chromedp.CSS(`#menu`)))
	b.until(`document.querySelector('[data-conversation]').getBoundingClientRect().left >= 0`)
	b.do(chromedp.Click(chromedp.CSS(`[data-conversation]`)))
	b.until(`document.querySelectorAll('[data-role]').length == 2`)
	b.noErrors()
}

func TestBrowserRegenerateAndEdit(t *testing.T) {
	h := newHarness(t)
	b := newTab(t)
	b.login(h.URL, "ana", anaPassword)
	b.say("first question")
	b.until(replyDone)
	b.say("second question")
	b.until(`document.querySelectorAll('[data-role=assistant]').length == 2 && ` + replyDone)
	h.fake.Enqueue(slow("A fresh second answer.", 30*time.Millisecond))
	b.do(chromedp.Click(chromedp.CSS(`button[aria-label="Regenerate answer"]`)))
	b.until(replyDone + ` && (` + lastReply + `) == "A fresh second answer."`)
	if got := b.texts(`[data-role]`); strings.Join(got, "|") != "first question|You said: first question|second question|A fresh second answer." {
		t.Errorf("after regenerate: %q", got)
	}
	b.do(
		chromedp.Click(chromedp.CSS(`button[aria-label="Edit question"]`)),
		chromedp.WaitVisible(chromedp.CSS(`textarea[aria-label="Edited question"]`)),
		chromedp.SetValue(chromedp.CSS(`textarea[aria-label="Edited question"]`), "second question, better"),
		chromedp.Click(chromedp.CSS(`button[aria-label="Send edited question"]`)),
	)
	b.until(replyDone + ` && (` + lastReply + `) == "You said: second question, better"`)
	want := "first question|You said: first question|second question, better|You said: second question, better"
	if got := b.texts(`[data-role]`); strings.Join(got, "|") != want {
		t.Errorf("after edit: %q", got)
	}
	b.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`[data-role=assistant]`)))
	if got := b.texts(`[data-role]`); strings.Join(got, "|") != want {
		t.Errorf("after reload: %q", got)
	}
	b.noErrors()
}

func TestBrowserSubPath(t *testing.T) {
	h := newHarness(t, func(s *setup) { s.base = "/chat" })
	if !strings.HasSuffix(h.URL, "/chat/") {
		t.Fatalf("URL = %s", h.URL)
	}
	h.fake.Enqueue(slow("Served under a sub-path.", 30*time.Millisecond))
	b := newTab(t)
	b.login(h.URL, "ana", anaPassword)
	b.say("hello")
	b.until(replyDone + ` && (` + lastReply + `) == "Served under a sub-path."`)
	if path := eval[string](b, `location.pathname`); !strings.HasPrefix(path, "/chat/c/") {
		t.Errorf("conversation at %q", path)
	}
	b.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`[data-role=assistant]`)))
	if n := b.count(`[data-role]`); n != 2 {
		t.Errorf("%d messages after reload", n)
	}
	b.noErrors()
}

func TestBrowserAttachAFile(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dot.png"), png1x1, 0o644); err != nil {
		t.Fatal(err)
	}
	b := newTab(t)
	b.login(h.URL, "ana", anaPassword)
	b.do(chromedp.SetUploadFiles(chromedp.CSS(`input[type=file]`), []string{filepath.Join(dir, "dot.png")}))
	b.until(`document.querySelectorAll('#attached .chip').length == 1`)
	b.say("what is in this picture?")
	b.until(replyDone)
	if n := b.count(`[data-role=user] img`); n != 1 {
		t.Errorf("the question shows %d pictures", n)
	}
	b.until(`document.querySelector('[data-role=user] img').naturalWidth == 1`)
	reqs := h.fake.Requests()
	if last := reqs[0].Messages[len(reqs[0].Messages)-1]; len(last.Images) != 1 {
		t.Errorf("the model got %d images", len(last.Images))
	}
	b.noErrors()
}
