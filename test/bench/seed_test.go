package bench

// BenchmarkSeed: seeding a new, empty replica on the real pair, as a new
// ReplicationPair does: `replicator rolling --seed auto --once` on a new state makes one
// full pass over every master user (listed from its mailboxes.db) before the sync log
// (dropped here, so the pass is all that runs). It reports the pass's wall time, users
// per second and the bodies and bytes uploaded, from the replicator's own final
// progress line.
//
// Sizes: CYRUSREPL_SEED_USERS (1000), CYRUSREPL_SEED_MSGS (20 INBOX messages of 1–6 KB
// per user), CYRUSREPL_BENCH_WORKERS (4), CYRUSREPL_FLEET_SEEDERS (4 goroutines filling
// the master).
// Run: go test -run '^$' -bench BenchmarkSeed -benchtime 1x -timeout 60m ./test/bench/

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	rpt "github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/loadavg"
)

func BenchmarkSeed(b *testing.B) {
	size := fleetSize{users: envInt("CYRUSREPL_SEED_USERS", 1000), inbox: envInt("CYRUSREPL_SEED_MSGS", 20)}
	workers := envInt("CYRUSREPL_BENCH_WORKERS", 4)
	bin := buildReplicator(b)
	b.Run(fmt.Sprintf("users=%d,msgs=%d,workers=%d", size.users, size.inbox, workers), func(b *testing.B) {
		for range b.N {
			seedOnce(b, bin, size, workers)
		}
	})
}

func seedOnce(b *testing.B, bin string, size fleetSize, workers int) {
	b.StopTimer()
	p := cyruspair.Start(b, cyruspair.Options{})
	m := p.Master
	names := make([]string, size.users)
	for u := range names {
		names[u] = fmt.Sprintf("sd%05d", u)
	}
	start := time.Now()
	parallel(b, names, envInt("CYRUSREPL_FLEET_SEEDERS", 4), func(u int, name string) error { return seedUser(b, p, u, name, size) })
	b.Logf("master filled: %d users × %d messages in %s (load %s)", size.users, size.inbox, time.Since(start).Round(time.Millisecond), loadavg.String())
	logDir := m.SyncLogDir(p.Channel)
	_ = os.Remove(filepath.Join(logDir, "log")) // the pass alone: no log to follow
	pw := filepath.Join(b.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte(p.ReplPassword), 0o600); err != nil {
		b.Fatal(err)
	}
	args := []string{"rolling", "--seed", "auto", "--once", "--sync-log", logDir, "--master-config", m.ConfigPath,
		"--master", m.SyncAddr, "--replica", p.Replica.SyncAddr, "--master-password-file", pw, "--replica-password-file", pw,
		"--master-tls", "none", "--replica-tls", "none", "--workers", strconv.Itoa(workers), "--state-dir", b.TempDir()}
	b.StartTimer()
	wall, rss, out := run(b, nil, bin, args...)
	b.StopTimer()
	final := lastProgress(b, out)
	if final.Done != size.users || final.Failed != 0 || final.Bodies != int64(size.messages()) {
		b.Fatalf("seeding pass ended at %+v, want %d users and %d bodies\n%s", final, size.users, size.messages(), tail(out, 20))
	}
	secs := float64(final.ElapsedMS) / 1000
	b.ReportMetric(secs, "pass-s")
	b.ReportMetric(float64(final.Done)/secs, "users/s")
	b.ReportMetric(float64(final.Bytes)/secs/(1<<20), "MiB/s")
	b.ReportMetric(float64(rss)/1024, "peak-RSS-MiB")
	b.Logf("seeded %d users, %d bodies, %.1f MiB in %.1f s (process %s): %.1f users/s, %.2f MiB/s, %d progress lines, peak RSS %d KiB (load %s)",
		final.Done, final.Bodies, float64(final.Bytes)/(1<<20), secs, wall.Round(time.Millisecond),
		float64(final.Done)/secs, float64(final.Bytes)/secs/(1<<20), strings.Count(out, `"type":"progress"`), rss, loadavg.String())
}

// lastProgress is the last "progress" line of a run's output.
func lastProgress(b *testing.B, out string) rpt.Progress {
	b.Helper()
	var p rpt.Progress
	found := false
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, `"type":"progress"`) {
			if err := json.Unmarshal([]byte(l), &p); err != nil {
				b.Fatal(err)
			}
			found = true
		}
	}
	if !found {
		b.Fatalf("no progress line:\n%s", tail(out, 20))
	}
	return p
}
