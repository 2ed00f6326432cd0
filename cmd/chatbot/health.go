package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readiness says whether the bot can serve: the store is open and can write,
// and every configured platform is connected.
type readiness struct {
	storeOpen atomic.Bool
	store     interface{ WriteErr() error } // nil: not checked
	platforms []platform
}

// readier is what a platform implements to say it is connected.
type readier interface {
	Ready() bool
}

func (r *readiness) ready() (bool, string) {
	if !r.storeOpen.Load() {
		return false, "store closed"
	}
	if r.store != nil {
		if err := r.store.WriteErr(); err != nil {
			return false, "store writes failing: " + err.Error()
		}
	}
	for _, p := range r.platforms {
		if rd, ok := p.(readier); ok && !rd.Ready() {
			return false, fmt.Sprintf("%T not connected", p)
		}
	}
	return true, "ok"
}

// opsHandler serves /healthz and /metrics.
func opsHandler(r *readiness, m *metrics) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		ok, why := r.ready()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, why)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	return mux
}

// newOpsServer returns the health and metrics server: every read and write has
// a deadline, and an idle keep-alive connection is closed after a while.
func newOpsServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second, // a scrape of /metrics
		IdleTimeout:       60 * time.Second,
	}
}

// serveOps listens on addr (http.listen) until ctx ends.
func serveOps(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http.listen: %w", err)
	}
	srv := newOpsServer(h)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	log.Info("serving health and metrics", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	}, nil
}

// health asks a running bot's /healthz; for container health checks.
func (m *Main) health(ctx context.Context) error {
	cfg, err := m.loadConfig()
	if err != nil {
		return err
	}
	if cfg.HTTP.Listen == "" {
		return errors.New("health: http.listen is not set in the config")
	}
	host, port, err := net.SplitHostPort(cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("health: http.listen: %w", err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	url := "http://" + net.JoinHostPort(host, port) + "/healthz"
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	fmt.Fprintln(m.Stdout, strings.TrimSpace(string(body)))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: not ready (HTTP %d)", resp.StatusCode)
	}
	return nil
}
