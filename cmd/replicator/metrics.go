package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/replication"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// serveMetrics serves the running summary as Prometheus text on addr (/metrics), a
// liveness probe (/healthz: the process serves) and a readiness probe (/readyz: startup
// checks passed — both servers answered as admins before this was called — and the
// replicator is not shutting down) until ctx ends. Counts come straight from the
// summary, so the metrics and the report never disagree.
func serveMetrics(ctx context.Context, addr string, rec *replication.Recorder, stats *csyncStats) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, usageErrorf("--metrics-addr: %v", err)
	}
	var stopping atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if stopping.Load() || ctx.Err() != nil {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		writeMetrics(w, rec.Summary(nil), rec.LastSuccess(), time.Now())
		writeCsyncMetrics(w, stats.snapshot())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() {
		stopping.Store(true)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}

// metricHelp is the HELP text of every replicator metric (docs/operations.md lists
// them; TestMetricsDocumented checks both).
var metricHelp = map[string]string{
	"cyrusrepl_started_timestamp_seconds":       "When this replicator process started, Unix time.",
	"cyrusrepl_users":                           "Users seen in this run (their latest result).",
	"cyrusrepl_users_failed":                    "Users whose latest attempt failed; rolling mode retries them with backoff.",
	"cyrusrepl_sync_log_backlog_entries":        "Sync-log entries (lines of log and log-run) not replicated yet (rolling mode).",
	"cyrusrepl_replication_lag_seconds":         "Age of the oldest sync-log entry not replicated yet, 0 when none waits (rolling mode; see docs for how it is dated).",
	"cyrusrepl_sync_log_bad_lines_total":        "Malformed sync-log lines recorded and skipped.",
	"cyrusrepl_last_batch_timestamp_seconds":    "End of the most recent batch (a rolling cycle with work, or an audit pass), Unix time.",
	"cyrusrepl_last_batch_duration_seconds":     "Duration of the most recent batch.",
	"cyrusrepl_last_success_timestamp_seconds":  "End of the latest rolling cycle (idle ones included) or audit pass in which no user failed and no error occurred, Unix time.",
	"cyrusrepl_state_new":                       "1 when this replicator found its state directory empty and began it (a new state, or the earlier one lost), else 0.",
	"cyrusrepl_state_created_timestamp_seconds": "When the state directory this replicator runs on began, Unix time.",
	"cyrusrepl_decisions_total":                 "Decisions by action and evidence since the replicator started.",
	"cyrusrepl_mismatches_total":                "Differences found between master and replica, by kind, since the replicator started.",
	"cyrusrepl_pass_users_done":                 "Users done in the current (or last) pass over users: an audit pass or the seeding pass.",
	"cyrusrepl_pass_users_total":                "Users that pass has to do.",
	"cyrusrepl_pass_bytes_uploaded":             "Message bytes that pass uploaded to the replica so far.",
	"cyrusrepl_seeding":                         "1 while the seeding pass runs (rolling --seed auto), else 0.",
	"cyrusrepl_csync_commands_total":            "csync commands sent, by end and command.",
	"cyrusrepl_csync_command_errors_total":      "csync commands that failed (NO reply, I/O or protocol error).",
	"cyrusrepl_csync_command_seconds_total":     "Time spent in csync commands, by end and command.",
}

type writer interface{ Write([]byte) (int, error) }

// header writes a metric's HELP and TYPE lines.
func header(w writer, name, typ string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, metricHelp[name], name, typ)
}

func writeMetrics(w writer, s *report.Summary, lastSuccess, now time.Time) {
	gauge := func(name string, v any) {
		header(w, name, "gauge")
		fmt.Fprintf(w, "%s %v\n", name, v)
	}
	gauge("cyrusrepl_started_timestamp_seconds", s.Started.Unix())
	gauge("cyrusrepl_users", s.UsersTotal)
	gauge("cyrusrepl_users_failed", s.UsersFailed)
	if s.Backlog != nil {
		gauge("cyrusrepl_sync_log_backlog_entries", *s.Backlog)
		lag := 0.0
		if s.PendingSince != nil {
			lag = max(now.Sub(*s.PendingSince).Seconds(), 0)
		}
		gauge("cyrusrepl_replication_lag_seconds", fmt.Sprintf("%.0f", lag))
		header(w, "cyrusrepl_sync_log_bad_lines_total", "counter")
		fmt.Fprintf(w, "cyrusrepl_sync_log_bad_lines_total %d\n", s.BadLogLines)
	}
	if s.State != nil {
		// A state that began empty (new, or lost: a wiped or replaced volume) means
		// users parked for retry and the in-step marks are gone; alert on it.
		gauge("cyrusrepl_state_created_timestamp_seconds", s.State.Created.Unix())
		gauge("cyrusrepl_state_new", boolInt(s.State.New))
	}
	if s.LastBatch != nil {
		gauge("cyrusrepl_last_batch_timestamp_seconds", s.LastBatch.Time.Unix())
		gauge("cyrusrepl_last_batch_duration_seconds", fmt.Sprintf("%g", float64(s.LastBatch.DurationMS)/1000))
	}
	if p := s.Progress; p != nil {
		gauge("cyrusrepl_pass_users_done", p.Done)
		gauge("cyrusrepl_pass_users_total", p.Total)
		gauge("cyrusrepl_pass_bytes_uploaded", p.Bytes)
	}
	if s.Seed != nil {
		gauge("cyrusrepl_seeding", boolInt(s.Seed.State == report.SeedRunning))
	}
	if !lastSuccess.IsZero() {
		gauge("cyrusrepl_last_success_timestamp_seconds", lastSuccess.Unix())
	}
	counts := func(name string, label func(string) string, m map[string]int) {
		header(w, name, "counter")
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%s{%s} %d\n", name, label(k), m[k])
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
func writeCsyncMetrics(w writer, stats []csyncStat) {
	for _, m := range []struct {
		name  string
		value func(csyncStat) string
	}{
		{"cyrusrepl_csync_commands_total", func(s csyncStat) string { return fmt.Sprint(s.Count) }},
		{"cyrusrepl_csync_command_errors_total", func(s csyncStat) string { return fmt.Sprint(s.Errors) }},
		{"cyrusrepl_csync_command_seconds_total", func(s csyncStat) string { return fmt.Sprintf("%g", s.Seconds) }},
	} {
		header(w, m.name, "counter")
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
