package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatbot-dev/chatbot/store"
)

// storeCommand runs `chatbot store check` and `chatbot store repair` on the
// config's store.path. Both need the bot stopped: they refuse a file a running
// bot has open.
func (m *Main) storeCommand(cfg *Config) error {
	if cfg.Store.URL != "" {
		return errors.New("`chatbot store check` and `store repair` are for the bbolt file (store.path); " +
			"with store.url, PostgreSQL's own tools (pg_dump, amcheck) check and back up the database")
	}
	path := cfg.Store.Path
	r, err := store.Check(path, store.Options{})
	if err != nil {
		return storeInUse(err)
	}
	if m.command == "store check" {
		printReport(m.Stdout, r)
		if !r.OK() {
			return fmt.Errorf("store file %s is damaged: restore it from a backup, or run "+
				"`chatbot store repair -config %s` to copy the readable chats to a new file", path, m.configPath)
		}
		return nil
	}
	if r.OK() {
		fmt.Fprintf(m.Stdout, "store file %s: no damage found, nothing to repair\n", path)
		return nil
	}
	rep, err := store.Repair(path, store.Options{})
	if err != nil {
		return fmt.Errorf("%w\nRestore the file from a backup.", storeInUse(err))
	}
	printRepair(m.Stdout, rep)
	return nil
}

// storeInUse explains ErrLocked for the store commands.
func storeInUse(err error) error {
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%w: stop the bot first (the store commands need the file to themselves)", err)
	}
	return err
}

func printReport(w io.Writer, r *store.Report) {
	verdict := "sound"
	if !r.OK() {
		verdict = "DAMAGED"
	}
	fmt.Fprintf(w, "store file %s: %s (%.1f MB, %d chats, %d messages read)\n",
		r.Path, verdict, float64(r.Size)/1e6, r.Chats, r.Messages)
	list(w, "problems", r.Problems)
	var chats []string
	for _, d := range r.Damaged {
		chats = append(chats, fmt.Sprintf("%s: %s", d.Chat, d.Problem))
	}
	list(w, "damaged chats", chats)
	list(w, "notes", r.Notes)
}

func printRepair(w io.Writer, rep *store.RepairReport) {
	fmt.Fprintf(w, "repaired store file %s: %d chats copied whole (%d messages in all)\n", rep.Path, rep.Chats, rep.Messages)
	var partial []string
	for _, p := range rep.Partial {
		partial = append(partial, fmt.Sprintf("%s: kept its newest %d messages", p.Chat, p.Kept))
	}
	list(w, "chats copied in part", partial)
	var lost []string
	for _, c := range rep.Lost {
		lost = append(lost, string(c))
	}
	list(w, "chats lost (nothing could be read)", lost)
	list(w, "other records partly lost", rep.DamagedBuckets)
	fmt.Fprintf(w, "the damaged file is kept, unchanged, at %s\n", rep.Damaged)
}

func list(w io.Writer, title string, items []string) {
	if len(items) == 0 {
		return
	}
	fmt.Fprintf(w, "%s:\n  %s\n", title, strings.Join(items, "\n  "))
}

// withStoreAdvice adds what to do to an error that says the store file is
// damaged.
func (m *Main) withStoreAdvice(err error) error {
	if !errors.Is(err, store.ErrDamaged) {
		return err
	}
	return fmt.Errorf("%w\nStop the bot and restore the file from a backup, or run "+
		"`chatbot store check -config %s` to see the damage and "+
		"`chatbot store repair -config %s` to copy the readable chats to a new file "+
		"(the damaged one is kept beside it).", err, m.configPath, m.configPath)
}

// storeErrors exports the store's failed operations as
// chatbot_store_errors_total{op}, read from the store at each scrape.
type storeErrors struct {
	db   interface{ Errors() map[string]uint64 }
	desc *prometheus.Desc
}

// watchStore adds the store's error counts to the metrics.
func (m *metrics) watchStore(db interface{ Errors() map[string]uint64 }) {
	m.registry.MustRegister(storeErrors{db: db, desc: prometheus.NewDesc("chatbot_store_errors_total",
		"Store operations that failed, by operation (append_turn, read_history, …).", []string{"op"}, nil)})
}

func (c storeErrors) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c storeErrors) Collect(ch chan<- prometheus.Metric) {
	for op, n := range c.db.Errors() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(n), op)
	}
}
