package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/agenttest"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// BenchmarkRollingOneMessage measures one `replicator rolling --once` pass after one new
// message into an INBOX of CYRUSREPL_BENCH_INBOX messages (default 10,000), with index
// deltas read locally (--master-config), with deltas read by the master's agent
// (--agent, an agent process beside the master) and with --index-deltas=false,
// CYRUSREPL_BENCH_PASSES times each (default 7), rotating which runs first, on the same
// pair and channel. It reports the median and the slowest
// seconds per pass of each (measured, not asserted). Run it once (the folder is filled
// in every run):
//
//	CYRUSREPL_REQUIRE_CYRUS=1 go test -run '^$' -bench BenchmarkRollingOneMessage -benchtime 1x ./cmd/replicator/
func BenchmarkRollingOneMessage(b *testing.B) {
	n, passes := envInt("CYRUSREPL_BENCH_INBOX", 10_000), envInt("CYRUSREPL_BENCH_PASSES", 7)
	c := newCLIOpts(b, cyruspair.Options{DeleteMode: "delayed"})
	m := c.p.Master
	const user = "alice"
	m.CreateUser(b, user)
	msgs := make([][]byte, 0, 1000)
	for i := 0; i < n; i++ {
		msgs = append(msgs, cyruspair.Message(fmt.Sprintf("seed %d", i), "body"))
		if len(msgs) == cap(msgs) || i == n-1 {
			m.DeliverMany(b, user, msgs)
			msgs = msgs[:0]
		}
	}
	logDir := m.SyncLogDir(c.p.Channel)
	if code, out, errs := c.run(b, "sync", "--user", user); code != exitOK {
		b.Fatalf("sync: exit %d\n%s\n%s", code, errs, out)
	}
	// Drain what the seeding logged, so every timed pass carries one message.
	if code, out, errs := c.run(b, "rolling", "--once", "--sync-log", logDir); code != exitOK {
		b.Fatalf("rolling: exit %d\n%s\n%s", code, errs, out)
	}
	local := append([]string{"rolling", "--once", "--sync-log", logDir}, c.common...)
	a := agenttest.Start(b, m, c.p.Channel)
	agentArgs := append([]string{"rolling", "--once"}, withAgent(c, a, c.common[slices.Index(c.common, "--state-dir")+1])...)
	modes := []struct {
		name  string
		args  []string
		took  []float64
		stats string // the last pass's csync-stats: where the time went
	}{
		{name: "delta", args: local},
		{name: "agent-delta", args: agentArgs},
		{name: "full", args: append(slices.Clone(local), "--index-deltas=false")},
	}
	b.ResetTimer()
	for i := 0; i < passes; i++ {
		for j := range modes {
			md := &modes[(i+j)%len(modes)] // alternate which runs first
			b.StopTimer()
			m.Deliver(b, user, cyruspair.Message(fmt.Sprintf("new %d", i), "body"))
			b.StartTimer()
			start := time.Now()
			code, out, errs := runArgs(b, md.args)
			md.took = append(md.took, time.Since(start).Seconds())
			if code != exitOK {
				b.Fatalf("%s pass: exit %d\n%s\n%s", md.name, code, errs, out)
			}
			md.stats = csyncStatsText(out)
		}
	}
	b.StopTimer()
	for _, md := range modes {
		slices.Sort(md.took)
		b.ReportMetric(md.took[len(md.took)/2], md.name+"-s/pass")
		b.ReportMetric(md.took[len(md.took)-1], md.name+"-max-s/pass")
		b.Logf("%s, last pass: %s", md.name, md.stats)
	}
	if ms, rs := m.Status(b, user, "INBOX"), c.p.Replica.Status(b, user, "INBOX"); ms != rs {
		b.Fatalf("replica %+v, master %+v", rs, ms)
	}
}

// runArgs runs the replicator with exactly args.
func runArgs(t testing.TB, args []string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	code := run(ctx, viaAgent(args), &out, &errb)
	return code, out.String(), errb.String()
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// csyncStatsText renders a run's csync-stats line as "end command count×seconds, …".
func csyncStatsText(out string) string {
	var parts []string
	for _, l := range strings.Split(out, "\n") {
		var m struct {
			Type     string      `json:"type"`
			Commands []csyncStat `json:"commands"`
		}
		if json.Unmarshal([]byte(l), &m) != nil || m.Type != "csync-stats" {
			continue
		}
		for _, c := range m.Commands {
			parts = append(parts, fmt.Sprintf("%s %s %d×%.3fs", c.End, c.Command, c.Count, c.Seconds))
		}
	}
	return strings.Join(parts, ", ")
}
