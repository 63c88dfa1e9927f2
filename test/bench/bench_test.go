// Package bench measures the replicator side by side with stock Cyrus sync_client on the
// same real master, in the same run: one-message updates by folder size (onepass), a
// fleet's initial sync, day of traffic, renames and audit (fleet), and replication lag
// under a steady stream (lag). Stock sync_client replicates into Replica2 (the master's
// "stock" channel), always in the foreground with its exit status checked; the
// replicator into Replica (the "cyrusrepl" channel). After every phase both replicas
// are compared with the master record by record. Run with `make bench` (hack/bench.sh).
//
// Figures are printed with the median and range over repeated runs or passes; the
// medians are also reported with b.ReportMetric. Ratios are ours/stock (below 1.0 means
// faster than stock).
package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// run runs a command to completion and returns its wall time, peak RSS in KiB (the
// child's own VmHWM, see rss_test.go) and combined output; a non-zero exit fails the
// benchmark.
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
	hwm := pollHWM(cmd.Process.Pid)
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
