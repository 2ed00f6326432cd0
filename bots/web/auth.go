package web

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/chatbot-dev/chatbot/conversation"
)

// cookieName is the session cookie.
const cookieName = "chatbot_session"

// HashPassword returns the bcrypt hash of password for web.users.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", errors.New("the password is empty")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), 12)
	if errors.Is(err, bcrypt.ErrPasswordTooLong) {
		return "", errors.New("the password is longer than 72 bytes, which bcrypt cannot hash")
	}
	return string(h), err
}

// CheckHash reports whether hash is a password hash HashPassword could have made.
func CheckHash(hash string) error {
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		return errors.New("must be a hash from chatbot passwd")
	}
	return nil
}

// dummyHash returns a hash to compare against when the name is unknown, so
// that a wrong name takes as long as a wrong password: it has the cost of the
// users' hashes.
func dummyHash(users []User) func() []byte {
	cost := 0
	for _, u := range users {
		if c, err := bcrypt.Cost([]byte(u.PasswordHash)); err == nil {
			cost = max(cost, c)
		}
	}
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	return sync.OnceValue(func() []byte {
		h, _ := bcrypt.GenerateFromPassword([]byte("not a password"), cost)
		return h
	})
}

// Links makes the one-time login links that /web answers with. It implements
// conversation.LoginLinks, and needs only the store: build it before the
// engine, and the Server after.
type Links struct {
	public string
	store  interface {
		CreateWebLoginToken(ctx context.Context, token, user string, chat conversation.ChatID, expires time.Time) error
	}
	now func() time.Time
}

var _ conversation.LoginLinks = (*Links)(nil)

// NewLinks returns the login links of the page at publicURL (see PublicURL).
func NewLinks(publicURL string, st Store) *Links {
	return &Links{public: publicURL, store: st, now: time.Now}
}

// LoginLink returns a link that logs userID in once, within LinkTTL, with chat
// among their conversations.
func (l *Links) LoginLink(ctx context.Context, userID string, chat conversation.ChatID) (string, error) {
	if userID == "" {
		return "", errors.New("no user id")
	}
	token := randomID(32)
	if err := l.store.CreateWebLoginToken(ctx, token, userID, chat, l.now().Add(LinkTTL)); err != nil {
		return "", err
	}
	return l.public + "link/" + token, nil
}

// logOwnerLink logs a one-time login link for the owner when nobody can log
// in with a password yet: the first run's way in.
func (s *Server) logOwnerLink(ctx context.Context) {
	if len(s.users) > 0 {
		return
	}
	link, err := (&Links{public: s.opt.PublicURL, store: s.store, now: s.opt.Now}).LoginLink(ctx, ownerUser, "")
	if err != nil {
		s.log.Warn("web: owner's login link", "err", err)
		return
	}
	s.log.Info("web chat: no web.users yet; open this link to log in (it works once, within 10 minutes; "+
		"a restart makes a new one). Add users with chatbot passwd.", "url", link)
}

// user returns the identity of the request's session, or "" when it has none.
// A session in use slides: once an hour at most, its expiry moves to
// SessionTTL from now.
func (s *Server) user(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return ""
	}
	now := s.opt.Now()
	user, expires, err := s.store.WebSession(r.Context(), c.Value, now)
	if err != nil {
		s.log.Warn("web: read session", "err", err)
		return ""
	}
	if user == "" || !s.allowed(user) {
		return ""
	}
	if expires.Sub(now) < s.opt.SessionTTL-time.Hour {
		if err := s.store.ExtendWebSession(r.Context(), c.Value, now.Add(s.opt.SessionTTL)); err != nil {
			s.log.Warn("web: extend session", "err", err)
		} else {
			s.setCookie(w, c.Value, s.opt.SessionTTL)
		}
	}
	return user
}

// ownerUser is the identity of the login link the server logs when web.users
// is empty: the owner's, on a first run. It stops working once users exist.
const ownerUser = "local:owner"

// allowed reports whether user may still use the page: a password user still
// in web.users, the owner while there are none, or a platform user the
// platform still allows.
func (s *Server) allowed(user string) bool {
	if user == ownerUser {
		return len(s.users) == 0
	}
	if name, ok := strings.CutPrefix(user, "web:"); ok {
		_, known := s.users[name]
		return known
	}
	return s.opt.Allowed == nil || s.opt.Allowed(user)
}

func (s *Server) setCookie(w http.ResponseWriter, value string, ttl time.Duration) {
	c := &http.Cookie{
		Name: cookieName, Value: value, Path: s.base + "/",
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode,
		MaxAge: int(ttl / time.Second),
	}
	if ttl <= 0 {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

// startSession logs user in on this browser.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, user string) error {
	token := randomID(32)
	if err := s.store.CreateWebSession(r.Context(), token, user, s.opt.Now().Add(s.opt.SessionTTL)); err != nil {
		return err
	}
	s.setCookie(w, token, s.opt.SessionTTL)
	return nil
}

// login checks a name and password from the login form.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.PostFormValue("username"))
	password := r.PostFormValue("password")
	if name == "" || password == "" {
		s.loginPage(w, r, http.StatusUnauthorized, "Enter your name and password.")
		return
	}
	now := s.opt.Now()
	attempt, ok := s.limits.try(now, "user:"+name, "addr:"+clientAddr(r))
	if !ok {
		s.log.Warn("web: login refused, too many attempts", "user", name, "addr", clientAddr(r))
		s.loginPage(w, r, http.StatusTooManyRequests, "Too many login attempts. Please wait a few minutes and try again.")
		return
	}
	hash, known := s.users[name]
	if !known {
		hash = string(s.dummyHash())
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)); err != nil || !known {
		s.log.Info("web: wrong login", "user", name, "addr", clientAddr(r))
		s.loginPage(w, r, http.StatusUnauthorized, "Wrong name or password.")
		return
	}
	attempt.cancel(now) // a right password does not count against the limits
	if err := s.startSession(w, r, "web:"+name); err != nil {
		s.serverError(w, r, "start session", err)
		return
	}
	s.log.Info("web: login", "user", "web:"+name)
	http.Redirect(w, r, s.base+"/", http.StatusSeeOther)
}

// linkLogin uses up a one-time login link and opens the platform chat it came from.
func (s *Server) linkLogin(w http.ResponseWriter, r *http.Request) {
	token := r.PostFormValue("token")
	now := s.opt.Now()
	attempt, ok := s.limits.try(now, "addr:"+clientAddr(r))
	if !ok {
		s.loginPage(w, r, http.StatusTooManyRequests, "Too many login attempts. Please wait a few minutes and try again.")
		return
	}
	user, chat, err := "", conversation.ChatID(""), error(nil)
	if token != "" {
		user, chat, err = s.store.TakeWebLoginToken(r.Context(), token, now)
	}
	if err != nil {
		s.serverError(w, r, "take login token", err)
		return
	}
	if user == "" || !s.allowed(user) {
		s.loginPage(w, r, http.StatusForbidden, "This login link has expired or was used already. Send /web to the bot again for a new one.")
		return
	}
	attempt.cancel(now)
	if err := s.startSession(w, r, user); err != nil {
		s.serverError(w, r, "start session", err)
		return
	}
	s.log.Info("web: login by link", "user", user)
	target := s.base + "/"
	if chat != "" {
		id, err := s.store.LinkWebConversation(r.Context(), user, randomID(10), chat, platformTitle(chat), now)
		if err != nil {
			s.serverError(w, r, "link conversation", err)
			return
		}
		target = s.base + "/c/" + id
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// platformTitle names a platform chat in the conversation list.
func platformTitle(chat conversation.ChatID) string {
	switch {
	case strings.HasPrefix(string(chat), "telegram:"):
		return "Telegram chat"
	case strings.HasPrefix(string(chat), "slack:"):
		return "Slack DM"
	}
	return string(chat)
}

// logout ends the session.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil && c.Value != "" {
		if err := s.store.DeleteWebSession(r.Context(), c.Value); err != nil {
			s.serverError(w, r, "delete session", err)
			return
		}
	}
	s.setCookie(w, "", 0)
	http.Redirect(w, r, s.base+"/", http.StatusSeeOther)
}

// clientAddr is the address a request comes from: its peer, or, from a proxy
// on the same machine, the last address the proxy added to X-Forwarded-For.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		if fwd := r.Header.Values("X-Forwarded-For"); len(fwd) > 0 {
			parts := strings.Split(fwd[len(fwd)-1], ",")
			if last := strings.TrimSpace(parts[len(parts)-1]); last != "" {
				return last
			}
		}
	}
	return host
}

// loginLimits bounds login attempts: per name (5 at once, then one a minute)
// and per address (20 at once, then one every 10 seconds). An attempt with the
// right password gives its place back.
type loginLimits struct {
	mu   sync.Mutex
	keys map[string]*rate.Limiter
}

// The limits' rates.
var (
	userLimit = limit{every: time.Minute, burst: 5}
	addrLimit = limit{every: 10 * time.Second, burst: 20}
)

type limit struct {
	every time.Duration
	burst int
}

func newLoginLimits() *loginLimits {
	return &loginLimits{keys: make(map[string]*rate.Limiter)}
}

// attempt is one login attempt's places in the limits.
type attempt []*rate.Reservation

func (a attempt) cancel(now time.Time) {
	for _, r := range a {
		r.CancelAt(now)
	}
}

// try takes a place for an attempt in every limit of keys ("user:…",
// "addr:…"); it reports false, taking none, when one of them is full.
func (l *loginLimits) try(now time.Time, keys ...string) (attempt, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var a attempt
	for _, k := range keys {
		lim := l.keys[k]
		if lim == nil {
			lm := addrLimit
			if strings.HasPrefix(k, "user:") {
				lm = userLimit
			}
			lim = rate.NewLimiter(rate.Every(lm.every), lm.burst)
			l.keys[k] = lim
		}
		r := lim.ReserveN(now, 1)
		if !r.OK() || r.DelayFrom(now) > 0 {
			r.CancelAt(now)
			a.cancel(now)
			return nil, false
		}
		a = append(a, r)
	}
	return a, true
}

// sweep forgets the limits that are full again.
func (l *loginLimits) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, lim := range l.keys {
		if lim.TokensAt(now) >= float64(lim.Burst()) {
			delete(l.keys, k)
		}
	}
}

// serverError logs err and answers 500 without details.
func (s *Server) serverError(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.Error("web: "+what, "path", r.URL.Path, "err", err)
	if wantsJSON(r) {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "Something went wrong on the server. Please try again."})
		return
	}
	http.Error(w, "Something went wrong on the server. Please try again.", http.StatusInternalServerError)
}

// errText is a refusal a user may read.
func errText(format string, args ...any) map[string]string {
	return map[string]string{"error": fmt.Sprintf(format, args...)}
}
