package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"os"
	"syscall"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/store"
	"github.com/chatbot-dev/chatbot/store/postgres"
)

// storeLockWait is how long `chatbot check` waits for another process's lock on
// the store: a running bot holds it for as long as it runs.
const storeLockWait = time.Second

// checkLocal checks what the bot needs on this machine: the store, and the
// address of http.listen.
func checkLocal(ctx context.Context, cfg *Config) []result {
	out := []result{checkStore(cfg.Store.Path)}
	if cfg.Store.URL != "" {
		out[0] = checkDatabase(ctx, cfg.Store.URL)
	}
	if cfg.HTTP.Listen != "" {
		out = append(out, checkListen(cfg.HTTP.Listen))
	}
	return out
}

// checkStore opens store.path as serve would, waiting storeLockWait at most for
// another process's lock. A store this check created is removed again.
func checkStore(path string) result {
	_, statErr := os.Stat(path)
	db, err := store.Open(path, store.Options{LockTimeout: storeLockWait})
	switch {
	case errors.Is(err, store.ErrLocked):
		return result{verdict: warn, name: "store",
			text:  path + " is locked by another process, most likely a running bot",
			hints: []string{"`chatbot serve` and `chatbot chat` wait for it; stop the running bot first, or run them with another store.path"}}
	case err != nil:
		return result{verdict: fail, name: "store", text: "store.path: " + err.Error(),
			hints: []string{"store.path must be a file chatbot may create and write (its folders are created)"}}
	}
	if err := db.Close(); err != nil {
		return result{verdict: fail, name: "store", text: "store.path: close: " + err.Error()}
	}
	if errors.Is(statErr, os.ErrNotExist) {
		os.Remove(path)
		return result{verdict: pass, name: "store", text: path + " can be created"}
	}
	return result{verdict: pass, name: "store", text: path + " opens for writing"}
}

// checkDatabase connects to store.url and applies the migrations as serve would.
func checkDatabase(ctx context.Context, url string) result {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	db, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		return result{verdict: fail, name: "store", text: "store.url: " + conversation.RedactSecret(err.Error(), urlPassword(url)),
			hints: []string{"store.url is postgres://USER:PASSWORD@HOST:PORT/DATABASE of a server this machine reaches"}}
	}
	where := db.Path()
	if err := db.Close(); err != nil {
		return result{verdict: fail, name: "store", text: "store.url: close: " + err.Error()}
	}
	return result{verdict: pass, name: "store", text: where + " is reachable and its schema is current"}
}

// urlPassword is the password in a connection URL, to keep it out of messages.
func urlPassword(raw string) string {
	u, err := neturl.Parse(raw)
	if err != nil {
		return ""
	}
	pw, _ := u.User.Password()
	return pw
}

// checkListen tries to listen on http.listen.
func checkListen(addr string) result {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return result{verdict: warn, name: "http", text: fmt.Sprintf("http.listen %s is in use: by a running bot, or by another program", addr),
			hints: []string{"if no bot runs, pick another port for http.listen"}}
	}
	if err != nil {
		return result{verdict: fail, name: "http", text: "http.listen: " + err.Error(),
			hints: []string{"http.listen is an address of this machine, e.g. 127.0.0.1:9090 or :9090"}}
	}
	ln.Close()
	return result{verdict: pass, name: "http", text: "http.listen " + addr + " is free for /healthz and /metrics"}
}
