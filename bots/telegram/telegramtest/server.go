// Package telegramtest is a fake Telegram Bot API for tests, in the manner of
// net/http/httptest: a loopback server that answers /bot<token>/<method> in the
// form (multipart or urlencoded), JSON and query encodings, with Telegram's
// answers and error texts, getUpdates long polling with offsets, webhooks with a
// secret token, HTML parse mode checked like Telegram checks it, the 4096-character
// limit counted in UTF-16 units of the visible text, per-chat flood control (429
// with retry_after), inline keyboards with callback buttons (callback_data of 1 to
// 64 bytes) and the callback queries a press sends, drafts (sendMessageDraft) that
// show for 30 seconds by a clock tests may drive and end at a message from the
// bot, with the stop button of Bot API 10.3, and a record of every chat's
// messages with their edit history.
//
// Tests inject what users send with Inject and read what the bot did with
// BotMessages, Drafts, ChatActions, Commands and Calls; Press presses a button,
// StopDraft a draft's stop button.
package telegramtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultToken       = "123456789:AAE-fake-token-for-tests_0123456789"
	DefaultBotUsername = "test_bot"
)

// Options configure NewServer. Zero values take the defaults noted.
type Options struct {
	// Token is the bot's token; requests with another get 401. Its number before
	// ":" is the bot's user id. Default DefaultToken.
	Token string
	// BotUsername is the bot's @username without "@". Default DefaultBotUsername.
	BotUsername string
	// WebhookRetry is how long the fake waits before delivering an update again
	// after the webhook failed. Default 50 ms.
	WebhookRetry time.Duration
	// Now is the clock of the drafts' 30-second life (DraftLife), so that a
	// test can run a long reply's drafts on a fake clock. Default time.Now.
	// Flood control and the other records keep the real clock.
	Now func() time.Time
}

// APIError is an error answer: {"ok":false,"error_code":Code,"description":...}.
type APIError struct {
	Code        int
	Description string
	RetryAfter  int // seconds; sent as parameters.retry_after with 429
}

func (e *APIError) Error() string { return fmt.Sprintf("%d %s", e.Code, e.Description) }

// TooManyRequests is Telegram's flood-control answer.
func TooManyRequests(seconds int) *APIError {
	return &APIError{Code: 429, Description: fmt.Sprintf("Too Many Requests: retry after %d", seconds), RetryAfter: seconds}
}

// BadRequest is a 400 answer with "Bad Request: " before desc.
func BadRequest(desc string) *APIError {
	return &APIError{Code: 400, Description: "Bad Request: " + desc}
}

// Telegram's wording of the errors the fake gives.
const (
	NotModified  = "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"
	TooLong      = "message is too long"
	ChatNotFound = "chat not found"
	ParseFailed  = "can't parse entities: "
)

var (
	errUnauthorized = &APIError{Code: 401, Description: "Unauthorized"}
	errNotFound     = &APIError{Code: 404, Description: "Not Found"}
)

// Server is the fake Bot API. Its methods are safe for concurrent use.
type Server struct {
	*httptest.Server
	// Token is the bot's token and Bot its user (what getMe answers).
	Token string
	Bot   User

	opt    Options
	closed chan struct{}
	wg     sync.WaitGroup // webhook delivery

	mu        sync.Mutex
	chats     map[int64]*chatState
	queue     []Update // updates not confirmed yet
	nextID    int64    // the next update_id
	wake      chan struct{}
	poller    chan struct{} // closed to end the getUpdates call in progress
	conflicts int           // getUpdates calls that overlapped another
	allowed   []string      // allowed_updates in force
	hook      webhook
	commands  []BotCommand
	calls     []Call
	fault     func(Call) *APIError
	reset     func(Call) bool
	flood     FloodLimits
	global    []time.Time // all chats' accepted sends and edits
	fileSeq   int
	files     map[string]*storedFile // by file_id
	queries   map[string]*query      // callback queries by id
	querySeq  int
	answers   []CallbackAnswer

	downloads []Download
	dlDelay   time.Duration
	dlFault   func(path string) int
	dlRunning int // downloads being answered
	dlMax     int // the most that ran at once
}

// NewServer starts a fake on loopback. Close it when done.
func NewServer(opt Options) *Server {
	if opt.Token == "" {
		opt.Token = DefaultToken
	}
	if opt.BotUsername == "" {
		opt.BotUsername = DefaultBotUsername
	}
	if opt.WebhookRetry <= 0 {
		opt.WebhookRetry = 50 * time.Millisecond
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	id, _ := strconv.ParseInt(strings.SplitN(opt.Token, ":", 2)[0], 10, 64)
	s := &Server{
		Token:   opt.Token,
		Bot:     User{ID: id, IsBot: true, FirstName: "Test Bot", Username: opt.BotUsername},
		opt:     opt,
		closed:  make(chan struct{}),
		chats:   make(map[int64]*chatState),
		queries: make(map[string]*query),
		nextID:  100000,
		wake:    make(chan struct{}),
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Close ends long polls and webhook deliveries, then shuts the server down.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.closed:
		s.mu.Unlock()
		return
	default:
		close(s.closed)
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.Server.Close()
}

// SetFault installs f, which sees every call before the fake handles it; a non-nil
// answer is given instead (for example TooManyRequests(30) or BadRequest(...)).
func (s *Server) SetFault(f func(Call) *APIError) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// method is one Bot API method the fake implements.
type method struct {
	name string
	fn   func(s *Server, ctx context.Context, p params) (any, *APIError)
}

// methods are the implemented methods by lower-case name (names are case-insensitive).
var methods = map[string]method{
	"getme":                  {"getMe", (*Server).getMe},
	"getupdates":             {"getUpdates", (*Server).getUpdates},
	"setwebhook":             {"setWebhook", (*Server).setWebhook},
	"deletewebhook":          {"deleteWebhook", (*Server).deleteWebhook},
	"getwebhookinfo":         {"getWebhookInfo", (*Server).getWebhookInfo},
	"sendmessage":            {"sendMessage", (*Server).sendMessage},
	"editmessagetext":        {"editMessageText", (*Server).editMessageText},
	"deletemessage":          {"deleteMessage", (*Server).deleteMessage},
	"sendmessagedraft":       {"sendMessageDraft", (*Server).sendMessageDraft},
	"sendchataction":         {"sendChatAction", (*Server).sendChatAction},
	"setmycommands":          {"setMyCommands", (*Server).setMyCommands},
	"editmessagereplymarkup": {"editMessageReplyMarkup", (*Server).editMessageReplyMarkup},
	"answercallbackquery":    {"answerCallbackQuery", (*Server).answerCallbackQuery},
	"getmycommands":          {"getMyCommands", (*Server).getMyCommands},
	"getfile":                {"getFile", (*Server).getFile},
	"sendphoto":              {"sendPhoto", (*Server).sendPhoto},
	"senddocument":           {"sendDocument", (*Server).sendDocument},
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if rest, ok := strings.CutPrefix(r.URL.Path, "/file/bot"); ok {
		s.serveFile(w, r, rest)
		return
	}
	token, name, ok := splitPath(r.URL.Path)
	if !ok {
		writeAnswer(w, nil, errNotFound)
		return
	}
	if token != s.Token {
		writeAnswer(w, nil, errUnauthorized)
		return
	}
	m, ok := methods[strings.ToLower(name)]
	if !ok {
		writeAnswer(w, nil, errNotFound)
		return
	}
	p, uploads, err := readParams(r)
	if err != nil {
		writeAnswer(w, nil, BadRequest(err.Error()))
		return
	}
	call := Call{Method: m.name, Params: p, At: time.Now()}
	call.ChatID, _ = strconv.ParseInt(p["chat_id"], 10, 64)
	s.mu.Lock()
	fault, reset := s.fault, s.reset
	s.mu.Unlock()
	if reset != nil && reset(call) {
		s.resetConnection(w, call)
		return
	}
	var result any
	var apiErr *APIError
	if fault != nil {
		apiErr = fault(call)
	}
	if apiErr == nil {
		result, apiErr = m.fn(s, context.WithValue(r.Context(), uploadsKey{}, uploads), p)
	}
	if apiErr != nil {
		call.ErrorCode, call.Description = apiErr.Code, apiErr.Description
	}
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()
	writeAnswer(w, result, apiErr)
}

// splitPath splits "/bot<token>/<method>".
func splitPath(path string) (token, method string, ok bool) {
	rest, ok := strings.CutPrefix(path, "/bot")
	if !ok {
		return "", "", false
	}
	token, method, ok = strings.Cut(rest, "/")
	return token, method, ok && method != "" && !strings.Contains(method, "/")
}

type answer struct {
	OK          bool          `json:"ok"`
	Result      any           `json:"result,omitempty"`
	ErrorCode   int           `json:"error_code,omitempty"`
	Description string        `json:"description,omitempty"`
	Parameters  *answerParams `json:"parameters,omitempty"`
}

type answerParams struct {
	RetryAfter int `json:"retry_after,omitempty"`
}

func writeAnswer(w http.ResponseWriter, result any, e *APIError) {
	w.Header().Set("Content-Type", "application/json")
	a := answer{OK: e == nil, Result: result}
	status := http.StatusOK
	if e != nil {
		status = e.Code
		a.ErrorCode, a.Description = e.Code, e.Description
		if e.RetryAfter > 0 {
			a.Parameters = &answerParams{RetryAfter: e.RetryAfter}
		}
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(a)
}

// params are a request's parameters as strings; JSON values that are not strings
// (numbers, objects) keep their JSON text, as in a form.
type params map[string]string

// readParams reads the query string and a multipart, urlencoded or JSON body,
// and the file parts of a multipart body by field. An empty body is no
// parameters, whatever its type (go-telegram/bot sends an empty multipart body
// for methods without parameters).
func readParams(r *http.Request) (params, map[string]UploadedFile, error) {
	p := params{}
	for k, v := range r.URL.Query() {
		p[k] = v[0]
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxUploadSize+1<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("can't read request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return p, nil, nil
	}
	var files map[string]UploadedFile
	ct, ctParams, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "multipart/form-data":
		form, err := multipart.NewReader(bytes.NewReader(body), ctParams["boundary"]).ReadForm(32 << 20)
		if err != nil {
			return nil, nil, fmt.Errorf("can't parse multipart form: %v", err)
		}
		defer form.RemoveAll()
		for k, v := range form.Value {
			p[k] = v[0]
		}
		if files, err = readFiles(form); err != nil {
			return nil, nil, err
		}
	case "application/x-www-form-urlencoded":
		values, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, nil, fmt.Errorf("can't parse form: %v", err)
		}
		for k, v := range values {
			p[k] = v[0]
		}
	case "application/json":
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, nil, fmt.Errorf("can't parse JSON object")
		}
		for k, v := range m {
			var str string
			if json.Unmarshal(v, &str) == nil {
				p[k] = str
			} else {
				p[k] = string(v)
			}
		}
	}
	return p, files, nil
}

// readFiles reads the first file of each field of a multipart form.
func readFiles(form *multipart.Form) (map[string]UploadedFile, error) {
	files := make(map[string]UploadedFile, len(form.File))
	for k, v := range form.File {
		f, err := v[0].Open()
		if err != nil {
			return nil, fmt.Errorf("can't read file %s: %v", k, err)
		}
		data, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("can't read file %s: %v", k, err)
		}
		files[k] = UploadedFile{Filename: v[0].Filename, Data: data}
	}
	return files, nil
}

func (p params) int64(name string) (int64, bool) {
	v, err := strconv.ParseInt(strings.TrimSpace(p[name]), 10, 64)
	return v, err == nil
}

func (p params) int(name string) int {
	v, _ := strconv.Atoi(strings.TrimSpace(p[name]))
	return v
}

func (p params) bool(name string) bool {
	v, _ := strconv.ParseBool(p[name])
	return v
}

// Calls returns every call answered so far, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// CallsTo returns the calls of one method (as Telegram spells it).
func (s *Server) CallsTo(method string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}
