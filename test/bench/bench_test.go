// Package bench measures the replicator side by side with stock Cyrus sync_client on the
// same real master, in the same run: the initial sync of many users and the incremental
// replication of new mail. Stock sync_client replicates into Replica2 (the master's
// "stock" channel), the replicator into Replica. Run with `make bench` (hack/bench.sh).
//
// Figures are reported with b.ReportMetric: wall seconds, messages/s and peak RSS (KiB)
// of each, and the ratio ours/stock (below 1.0 means faster than stock).
package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// run runs a command and returns its wall time and peak RSS in KiB.
func run(b *testing.B, env []string, name string, args ...string) (time.Duration, int64, string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var buf strings.Builder
	cmd.Stdout, cmd.Stderr = &buf, &buf
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	hwm := pollHWM(cmd.Process.Pid) // not rusage.Maxrss: see rss_test.go
	err := cmd.Wait()
	wall := time.Since(start)
	rss := hwm.Stop()
	out := buf.String()
	if err != nil {
		b.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, tail(out, 40))
	}
	return wall, rss, out
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func buildReplicator(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "replicator")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/cyrusrepl/cyrusrepl/cmd/replicator").CombinedOutput()
	if err != nil {
		b.Fatalf("build replicator: %v\n%s", err, out)
	}
	return bin
}

// BenchmarkVersusStock: users × messages initial sync, then incremental new mail.
// Sizes: CYRUSREPL_BENCH_USERS (100), CYRUSREPL_BENCH_MSGS (100 per user),
// CYRUSREPL_BENCH_NEW (1000 new messages in all), CYRUSREPL_BENCH_WORKERS (4).
func BenchmarkVersusStock(b *testing.B) {
	users := envInt("CYRUSREPL_BENCH_USERS", 100)
	perUser := envInt("CYRUSREPL_BENCH_MSGS", 100)
	newMsgs := envInt("CYRUSREPL_BENCH_NEW", 1000)
	workers := envInt("CYRUSREPL_BENCH_WORKERS", 4)
	bin := buildReplicator(b)
	for i := 0; i < b.N; i++ {
		p := cyruspair.Start(b, cyruspair.Options{SecondReplica: true})
		m := p.Master
		names := make([]string, users)
		seedStart := time.Now()
		for u := range users {
			names[u] = fmt.Sprintf("user%03d", u)
			m.CreateUser(b, names[u])
			msgs := make([][]byte, perUser)
			for k := range msgs {
				msgs[k] = cyruspair.Message(fmt.Sprintf("%s %d", names[u], k), strings.Repeat("body line of a benchmark message\n", 20+k%50))
			}
			m.DeliverMany(b, names[u], msgs)
		}
		b.Logf("seeded %d users × %d messages in %s", users, perUser, time.Since(seedStart).Round(time.Millisecond))
		total := users * perUser

		pwFile := filepath.Join(b.TempDir(), "pw")
		if err := os.WriteFile(pwFile, []byte(p.ReplPassword), 0o600); err != nil {
			b.Fatal(err)
		}
		common := []string{
			"--master", m.SyncAddr, "--replica", p.Replica.SyncAddr,
			"--master-password-file", pwFile, "--replica-password-file", pwFile, "--master-tls", "none", "--replica-tls", "none",
			"--workers", strconv.Itoa(workers), "--state-dir", b.TempDir(),
		}

		b.StopTimer()
		stockWall, stockRSS, _ := run(b, nil, filepath.Join(cyruspair.CyrusBin, "sync_client"),
			append([]string{"-C", m.ConfigPath, "-n", "stock", "-u"}, names...)...)
		args := append([]string{"sync"}, common...)
		for _, n := range names {
			args = append(args, "--user", n)
		}
		oursWall, oursRSS, _ := run(b, nil, bin, append(args, "--report", filepath.Join(b.TempDir(), "r.json"))...)
		report(b, "initial", total, stockWall, oursWall, stockRSS, oursRSS)

		// incremental: empty both channels, deliver new mail, one pass of each.
		for _, ch := range []string{"stock", p.Channel} {
			_ = os.Remove(filepath.Join(m.SyncLogDir(ch), "log"))
		}
		for k := range newMsgs {
			u := names[k%users]
			m.Deliver(b, u, cyruspair.Message(fmt.Sprintf("new %d", k), "fresh mail\n"))
		}
		stockWall, stockRSS, _ = run(b, nil, filepath.Join(cyruspair.CyrusBin, "sync_client"),
			"-C", m.ConfigPath, "-n", "stock", "-R", "-1", "-o")
		rargs := append([]string{"rolling", "--sync-log", m.SyncLogDir(p.Channel), "--once"}, common...)
		oursWall, oursRSS, out := run(b, nil, bin, rargs...)
		report(b, "incremental", newMsgs, stockWall, oursWall, stockRSS, oursRSS)
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, `"type":"csync-stats"`) {
				fmt.Printf("    ours incremental: %s\n", line) // where the time went
			}
		}
		b.StartTimer()
	}
}

func report(b *testing.B, phase string, msgs int, stock, ours time.Duration, stockRSS, oursRSS int64) {
	b.ReportMetric(stock.Seconds(), phase+"-stock-s")
	b.ReportMetric(ours.Seconds(), phase+"-ours-s")
	b.ReportMetric(ours.Seconds()/stock.Seconds(), phase+"-ratio")
	b.ReportMetric(float64(msgs)/ours.Seconds(), phase+"-ours-msgs/s")
	b.ReportMetric(float64(stockRSS), phase+"-stock-rss-KiB")
	b.ReportMetric(float64(oursRSS), phase+"-ours-rss-KiB")
	fmt.Printf("%-12s %6d msgs  stock %8.2fs  ours %8.2fs  ratio %.2f×  peak RSS stock %6d KiB ours %6d KiB\n",
		phase, msgs, stock.Seconds(), ours.Seconds(), ours.Seconds()/stock.Seconds(), stockRSS, oursRSS)
}
