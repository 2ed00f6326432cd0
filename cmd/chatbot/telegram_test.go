package main

import (
	"bytes"
	"context"
	"encoding/base64"
	goimage "image"
	"image/jpeg"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
	"github.com/chatbot-dev/chatbot/store"
)

func TestNewTelegram(t *testing.T) {
	fake := telegramtest.NewServer(telegramtest.Options{})
	defer fake.Close()
	db, err := store.Open(filepath.Join(t.TempDir(), "bot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name    string
		cfg     TelegramConfig
		wantNil bool
		wantErr string
	}{
		{"off without a token", TelegramConfig{}, true, ""},
		{"on with a token", TelegramConfig{Token: fake.Token, APIURL: fake.URL, Mode: "polling"}, false, ""},
		{"a wrong token stops the start", TelegramConfig{Token: "123:wrong", APIURL: fake.URL}, true, "check telegram.token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := newTelegram(context.Background(), deps{cfg: &Config{Telegram: tt.cfg}, db: db, log: log})
			if (p == nil) != tt.wantNil {
				t.Errorf("platform %v, want nil %v", p, tt.wantNil)
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "wrong") {
				t.Errorf("the error shows the token: %v", err)
			}
		})
	}
}

// TestServeTelegramMedia runs `chatbot serve` with limits.max_file_bytes: a
// file over it is refused before any download, a photo under it reaches the
// model as its exact bytes, and downloads (whose URLs end in a file name) make
// no metric labels.
func TestServeTelegramMedia(t *testing.T) {
	tg := telegramtest.NewServer(telegramtest.Options{})
	defer tg.Close()
	ai := openaitest.NewServer()
	defer ai.Close()
	ops := freeAddr(t)
	path := writeConfig(t, ai, "telegram:\n  token: "+tg.Token+"\n  api_url: "+tg.URL+
		"\n  allowed_user_ids: [42]\nlimits:\n  max_file_bytes: 1048576\nhttp:\n  listen: "+ops+"\n")
	m := NewMain(strings.NewReader(""), io.Discard, io.Discard)
	m.LookupEnv = env(map[string]string{"TEST_KEY": "sk-test-key"})
	ctx, cancel := context.WithCancel(context.Background())
	exit := make(chan int, 1)
	go func() { exit <- m.Main(ctx, []string{"serve", "-config", path}) }()
	defer func() {
		cancel()
		<-exit
	}()

	user := telegramtest.User{ID: 42, FirstName: "Ana"}
	tg.Inject(telegramtest.Incoming{From: user, Media: telegramtest.Document("big.pdf", "application/pdf", make([]byte, 2<<20))})
	eventually(t, "the refusal", func() bool {
		msgs := tg.BotMessages(42)
		return len(msgs) == 1 && strings.Contains(msgs[0].Last().Text, "up to 1 MB")
	})
	pic := tinyJPEG(t)
	tg.Inject(telegramtest.Incoming{From: user, Media: telegramtest.Photo(pic), Caption: "what is it?"})
	eventually(t, "the answer", func() bool { return len(tg.BotMessages(42)) == 2 })
	reqs := ai.Requests()
	if len(reqs) != 1 || len(reqs[0].Messages) == 0 {
		t.Fatalf("model calls = %d, want one for the photo", len(reqs))
	}
	last := reqs[0].Messages[len(reqs[0].Messages)-1]
	if len(last.Images) != 1 || last.Images[0] != "data:image/jpeg;base64,"+base64.StdEncoding.EncodeToString(pic) {
		t.Errorf("the model got %d images, want the photo's bytes", len(last.Images))
	}
	if len(tg.Downloads()) != 1 {
		t.Errorf("downloads = %+v, want only the photo", tg.Downloads())
	}
	_, body := httpGet("http://" + ops + "/metrics")
	if strings.Contains(body, "file_") || !strings.Contains(body, `method="getFile"`) {
		t.Errorf("metrics should count getFile and label no download by its file name:\n%s", body)
	}
}

// tinyJPEG is an 8×8 JPEG.
func tinyJPEG(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, goimage.NewGray(goimage.Rect(0, 0, 8, 8)), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
