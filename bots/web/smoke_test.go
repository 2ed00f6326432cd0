package web_test

import (
	"testing"

	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

func TestSmoke(t *testing.T) {
	h := newHarness(t, func(s *setup) {
		s.web.Models = []string{"gpt-5.4-mini", "gpt-5.5"}
		s.web.Personas = []string{"pirate"}
		s.engine.Models = s.web.Models
		s.engine.Personas = map[string]string{"pirate": "Arr"}
	})
	h.fake.Enqueue(openaitest.Text("Here is **bold** and code:\n\n```go\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nDone."))
	b := newTab(t)
	b.login(h.URL, "ana", anaPassword)
	b.say("Hello there, show me some Go")
	b.until(`document.querySelector('[data-role=assistant]') && !document.querySelector('.streaming') && document.querySelector('[data-role=assistant]').innerText.includes('Done.')`)
	b.say("second question")
	b.until(`document.querySelectorAll('[data-role=assistant]').length == 2 && !document.querySelector('.streaming')`)
	b.screenshot("/tmp/web-desktop.png")
	t.Log(b.texts("[data-role]"))
	b.noErrors()
}
