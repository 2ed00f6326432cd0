package telegramtest

import (
	"math"
	"time"
	"unicode"
)

// Limit allows at most Max calls in any window of length Per. The zero Limit
// allows everything.
type Limit struct {
	Max int
	Per time.Duration
}

// FloodLimits is the fake's flood control over sendMessage and editMessageText,
// which Telegram documents as about one message per second in a private chat, 20
// per minute in a group and 30 per second overall. A call over a limit gets
// 429 "Too Many Requests: retry after N" with parameters.retry_after = N seconds.
type FloodLimits struct {
	Private Limit // per private chat
	Group   Limit // per group, supergroup or channel
	Global  Limit // over all chats
}

// TelegramLimits are the limits Telegram documents.
var TelegramLimits = FloodLimits{
	Private: Limit{Max: 1, Per: time.Second},
	Group:   Limit{Max: 20, Per: time.Minute},
	Global:  Limit{Max: 30, Per: time.Second},
}

// SetFlood turns flood control on with f (the zero FloodLimits turns it off).
func (s *Server) SetFlood(f FloodLimits) {
	s.mu.Lock()
	s.flood = f
	s.global = nil
	s.mu.Unlock()
}

// Limited counts the 429 answers flood control gave in the chat.
func (s *Server) Limited(chatID int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.chats[chatID]; c != nil {
		return c.limited
	}
	return 0
}

// floodCheck admits one send or edit in c, or answers 429; s.mu is held.
func (s *Server) floodCheck(c *chatState) *APIError {
	now := time.Now()
	lim := s.flood.Group
	if c.chat.Type == "private" {
		lim = s.flood.Private
	}
	wait := max(admit(&c.window, lim, now), admit(&s.global, s.flood.Global, now))
	if wait > 0 {
		c.limited++
		return TooManyRequests(int(math.Ceil(wait.Seconds())))
	}
	c.window = append(c.window, now)
	if s.flood.Global.Max > 0 {
		s.global = append(s.global, now)
	}
	return nil
}

// admit forgets the calls of w older than lim.Per and returns how long to wait
// until one more call is allowed (0: now).
func admit(w *[]time.Time, lim Limit, now time.Time) time.Duration {
	if lim.Max <= 0 {
		*w = nil
		return 0
	}
	i := 0
	for i < len(*w) && now.Sub((*w)[i]) >= lim.Per {
		i++
	}
	*w = (*w)[i:]
	if len(*w) < lim.Max {
		return 0
	}
	return (*w)[len(*w)-lim.Max].Add(lim.Per).Sub(now)
}

// findEntities finds the mentions (@name) and bot commands (/cmd, /cmd@bot) in a
// text, as Telegram's server marks them in incoming messages.
func findEntities(text string) []MessageEntity {
	var out []MessageEntity
	prev := ' '
	for i, r := range text {
		if (r == '@' || r == '/') && !isWordRune(prev) && prev != '/' && prev != '@' {
			n := wordLen(text[i+1:])
			typ := "mention"
			if r == '/' {
				typ = "bot_command"
				if rest := text[i+1+n:]; n > 0 && len(rest) > 1 && rest[0] == '@' {
					if m := wordLen(rest[1:]); m >= 3 {
						n += 1 + m
					}
				}
			}
			if (typ == "mention" && n >= 3) || (typ == "bot_command" && n >= 1) {
				out = append(out, MessageEntity{Type: typ, Offset: UTF16Len(text[:i]), Length: UTF16Len(text[i : i+1+n])})
			}
		}
		prev = r
	}
	return out
}

func isWordRune(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// wordLen is the length in bytes of the run of [A-Za-z0-9_] s starts with.
func wordLen(s string) int {
	n := 0
	for n < len(s) {
		c := s[n]
		if !(c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')) {
			break
		}
		n++
	}
	return n
}
