package mcp

import (
	"context"
	"sync"
	"time"
)

// ServerStatus is what Check found out about one server.
type ServerStatus struct {
	Name string
	// Transport is "stdio" or "http".
	Transport string
	// Tools are the names offered to the model (after allowed_tools).
	Tools []string
	// Unknown lists allowed_tools entries the server does not have.
	Unknown []string
	// Ready is how long the server took to start and list its tools.
	Ready time.Duration
	// Err says why the server is unavailable; nil when it works.
	Err error
}

// Check starts every server that is not running (ignoring the backoff after a
// failure), lists its tools and reports, in config order, each server's tools
// or why it failed. It waits at most until ctx ends.
func (s *Servers) Check(ctx context.Context) []ServerStatus {
	out := make([]ServerStatus, len(s.servers))
	var wg sync.WaitGroup
	for i, v := range s.servers {
		st := &out[i]
		st.Name = v.cfg.Name
		st.Transport = "http"
		if len(v.cfg.Command) > 0 {
			st.Transport = "stdio"
		}
		wg.Go(func() {
			sess, o, err := v.offer(ctx, true)
			if err != nil {
				st.Err = err
				return
			}
			st.Ready = sess.ready
			for _, t := range o.tools {
				st.Tools = append(st.Tools, t.Name)
			}
			st.Unknown = o.unknown
		})
	}
	wg.Wait()
	return out
}
