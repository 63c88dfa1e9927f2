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
func serveMetrics(ctx context.Context, addr string, rec *replication.Recorder) (func(), error) {
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
