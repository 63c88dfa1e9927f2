package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/replication"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// serveMetrics serves the running summary as Prometheus text on addr (/metrics) and a
// liveness probe (/healthz) until ctx ends. Counts come straight from the summary, so
// the metrics and the report never disagree.
func serveMetrics(ctx context.Context, addr string, rec *replication.Recorder, stats *csyncStats) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, usageErrorf("--metrics-addr: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		writeMetrics(w, rec.Summary(nil))
		writeCsyncMetrics(w, stats.snapshot())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}

func writeMetrics(w interface{ Write([]byte) (int, error) }, s *report.Summary) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("# TYPE cyrusrepl_users gauge")
	p("cyrusrepl_users %d", s.UsersTotal)
	p("# TYPE cyrusrepl_users_failed gauge")
	p("cyrusrepl_users_failed %d", s.UsersFailed)
	if s.Backlog != nil {
		p("# TYPE cyrusrepl_sync_log_backlog_bytes gauge")
		p("cyrusrepl_sync_log_backlog_bytes %d", *s.Backlog)
	}
	if s.State != nil {
		// A state that began empty (new, or lost: a wiped or replaced volume) means
		// users parked for retry and the in-step marks are gone; alert on it.
		p("# TYPE cyrusrepl_state_created_timestamp_seconds gauge")
		p("cyrusrepl_state_created_timestamp_seconds %d", s.State.Created.Unix())
		p("# TYPE cyrusrepl_state_new gauge")
		p("cyrusrepl_state_new %d", boolInt(s.State.New))
	}
	if s.LastBatch != nil {
		p("# TYPE cyrusrepl_last_batch_timestamp_seconds gauge")
		p("cyrusrepl_last_batch_timestamp_seconds %d", s.LastBatch.Time.Unix())
		p("# TYPE cyrusrepl_last_batch_duration_seconds gauge")
		p("cyrusrepl_last_batch_duration_seconds %g", float64(s.LastBatch.DurationMS)/1000)
	}
	counts := func(name string, label func(string) string, m map[string]int) {
		p("# TYPE %s counter", name)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p("%s{%s} %d", name, label(k), m[k])
		}
	}
	counts("cyrusrepl_decisions_total", func(k string) string {
		a, e, _ := strings.Cut(k, "/")
		return fmt.Sprintf("action=%q,evidence=%q", a, e)
	}, s.DecisionCounts)
	counts("cyrusrepl_mismatches_total", func(k string) string { return fmt.Sprintf("kind=%q", k) }, s.MismatchCounts)
}

// writeCsyncMetrics writes the csync command counters: rate(seconds)/rate(commands) is
// the mean latency of a command at one end.
func writeCsyncMetrics(w interface{ Write([]byte) (int, error) }, stats []csyncStat) {
	for _, m := range []struct {
		name, help string
		value      func(csyncStat) string
	}{
		{"cyrusrepl_csync_commands_total", "csync commands sent, by end and command.", func(s csyncStat) string { return fmt.Sprint(s.Count) }},
		{"cyrusrepl_csync_command_errors_total", "csync commands that failed (NO reply, I/O or protocol error).", func(s csyncStat) string { return fmt.Sprint(s.Errors) }},
		{"cyrusrepl_csync_command_seconds_total", "Time spent in csync commands, by end and command.", func(s csyncStat) string { return fmt.Sprintf("%g", s.Seconds) }},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", m.name, m.help, m.name)
		for _, s := range stats {
			fmt.Fprintf(w, "%s{end=%q,command=%q} %s\n", m.name, s.End, s.Command, m.value(s))
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
