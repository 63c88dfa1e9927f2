package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/replication"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

func TestWriteMetrics(t *testing.T) {
	backlog := 42
	s := &report.Summary{UsersTotal: 3, UsersFailed: 1, Backlog: &backlog,
		LastBatch:      &report.Batch{Time: time.Unix(100, 0), DurationMS: 1500},
		DecisionCounts: map[string]int{"delete/tombstone": 2, "keep/none": 1},
		MismatchCounts: map[string]int{"replica-only": 3},
		State:          &report.State{ID: "abc", Created: time.Unix(200, 0), New: true}}
	var b bytes.Buffer
	writeMetrics(&b, s, time.Unix(200, 0), time.Unix(300, 0))
	for _, want := range []string{
		"cyrusrepl_users 3\n", "cyrusrepl_users_failed 1\n", "cyrusrepl_sync_log_backlog_entries 42\n",
		"cyrusrepl_replication_lag_seconds 0\n", "cyrusrepl_last_success_timestamp_seconds 200\n",
		"cyrusrepl_last_batch_timestamp_seconds 100\n", "cyrusrepl_last_batch_duration_seconds 1.5\n",
		`cyrusrepl_decisions_total{action="delete",evidence="tombstone"} 2`,
		`cyrusrepl_decisions_total{action="keep",evidence="none"} 1`,
		`cyrusrepl_mismatches_total{kind="replica-only"} 3`,
		"cyrusrepl_state_created_timestamp_seconds 200\n", "cyrusrepl_state_new 1\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
}

func TestPublishGate(t *testing.T) {
	g := &publishGate{heartbeat: time.Minute}
	now := time.Unix(1000, 0)
	s := &report.Summary{UsersTotal: 1, Updated: now, LastBatch: &report.Batch{Time: now}}
	if !g.due(s, now) {
		t.Fatal("first summary not published")
	}
	s2 := *s
	s2.Updated, s2.LastBatch = now.Add(time.Second), &report.Batch{Time: now.Add(time.Second), DurationMS: 5}
	if g.due(&s2, now.Add(time.Second)) {
		t.Fatal("unchanged summary published again")
	}
	if !g.due(&s2, now.Add(2*time.Minute)) {
		t.Fatal("heartbeat not published")
	}
	s3 := s2
	s3.UsersFailed = 1
	if !g.due(&s3, now.Add(2*time.Minute+time.Second)) {
		t.Fatal("change not published")
	}
}

func TestCsyncStatsMetrics(t *testing.T) {
	var st csyncStats
	obs := st.observer("replica")
	obs("APPLY MAILBOX", 250*time.Millisecond, nil)
	obs("APPLY MAILBOX", 750*time.Millisecond, errors.New("NO IMAP_SYNC_CHECKSUM"))
	st.observer("master")("GET FETCH", time.Second, nil)
	var b bytes.Buffer
	writeCsyncMetrics(&b, st.snapshot())
	for _, want := range []string{
		`cyrusrepl_csync_commands_total{end="replica",command="APPLY MAILBOX"} 2`,
		`cyrusrepl_csync_command_errors_total{end="replica",command="APPLY MAILBOX"} 1`,
		`cyrusrepl_csync_command_seconds_total{end="replica",command="APPLY MAILBOX"} 1`,
		`cyrusrepl_csync_commands_total{end="master",command="GET FETCH"} 1`,
		`cyrusrepl_csync_command_errors_total{end="master",command="GET FETCH"} 0`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
	if l := st.line(); l.Type != "csync-stats" || len(l.Commands) != 2 || l.Commands[0].End != "master" {
		t.Errorf("line: %+v", l)
	}
}

// TestMetricsHelpAndDocs: every metric the replicator serves has HELP text, and every
// one is listed in docs/operations.md.
func TestMetricsHelpAndDocs(t *testing.T) {
	backlog := 3
	since := time.Unix(100, 0)
	s := &report.Summary{Backlog: &backlog, PendingSince: &since, LastBatch: &report.Batch{Time: since},
		DecisionCounts: map[string]int{"create/none": 1}, MismatchCounts: map[string]int{"replica-only": 1},
		State:    &report.State{ID: "s", Created: since},
		Progress: &report.Progress{Done: 4, Total: 10, Bytes: 4096}, Seed: &report.Seed{State: report.SeedRunning}}
	var b bytes.Buffer
	writeMetrics(&b, s, since, since.Add(90*time.Second))
	for _, want := range []string{"cyrusrepl_pass_users_done 4\n", "cyrusrepl_pass_users_total 10\n", "cyrusrepl_pass_bytes_uploaded 4096\n", "cyrusrepl_seeding 1\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
	writeCsyncMetrics(&b, []csyncStat{{End: "master", Command: "GET USER", Count: 1}})
	if !strings.Contains(b.String(), "cyrusrepl_replication_lag_seconds 90\n") {
		t.Errorf("lag of an entry pending 90s:\n%s", b.String())
	}
	helped := map[string]bool{}
	for _, line := range strings.Split(b.String(), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[1] == "HELP" && len(f) > 3 {
			helped[f[2]] = true
		}
	}
	docs, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(b.String(), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(strings.Fields(line)[0], "{")
		if !helped[name] {
			t.Errorf("%s has no HELP text", name)
		}
	}
	for name := range metricHelp {
		if !helped[name] {
			t.Errorf("%s (in metricHelp) was not served by this test: extend it", name)
		}
		if !strings.Contains(string(docs), "`"+name+"`") {
			t.Errorf("docs/operations.md does not list `%s`", name)
		}
	}
}

// TestProbes: /healthz and /readyz answer while the replicator runs; /readyz turns 503
// once it shuts down.
func TestProbes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop, err := serveMetrics(ctx, addr, replication.NewRecorder("rolling", "p", time.Now()), &csyncStats{})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	status := func(path string) int {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if c := status(p); c != http.StatusOK {
			t.Errorf("%s: %d", p, c)
		}
	}
	cancel()
	if c := status("/readyz"); c != http.StatusServiceUnavailable {
		t.Errorf("/readyz after shutdown began: %d, want 503", c)
	}
}
