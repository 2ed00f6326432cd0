package slack

import (
	"context"
	"sync"
	"time"
)

// userNameTTL is how long a looked-up display name is reused.
const userNameTTL = time.Hour

// userNames caches users.info lookups: the name the model is given for a speaker
// in a channel.
type userNames struct {
	api slackAPI

	mu sync.Mutex
	m  map[string]userName
}

type userName struct {
	name string
	at   time.Time
}

func newUserNames(api slackAPI) *userNames {
	return &userNames{api: api, m: map[string]userName{}}
}

// name returns the user's display name (else real name, else handle), or "" when
// Slack cannot tell.
func (u *userNames) name(ctx context.Context, id string) (string, error) {
	u.mu.Lock()
	e, ok := u.m[id]
	u.mu.Unlock()
	if ok && time.Since(e.at) < userNameTTL {
		return e.name, nil
	}
	user, err := u.api.GetUserInfoContext(ctx, id)
	if err != nil {
		return "", err
	}
	name := user.Profile.DisplayName
	for _, alt := range []string{user.Profile.RealName, user.RealName, user.Name} {
		if name == "" {
			name = alt
		}
	}
	u.mu.Lock()
	if len(u.m) > 10000 { // a crude bound: start over rather than grow forever
		clear(u.m)
	}
	u.m[id] = userName{name: name, at: time.Now()}
	u.mu.Unlock()
	return name, nil
}
