//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// BenchmarkClusterUp measures `hack/cluster.sh up` (to a Ready node with a default
// service account) and `down`, reusing the directory as every second run does:
//
//	go test -tags e2e -run '^$' -bench ClusterUp -benchtime 3x ./test/e2e/
func BenchmarkClusterUp(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Fatal("the e2e cluster needs root")
	}
	repo := repoRoot(b)
	dir := os.Getenv("CYRUSREPL_E2E_CLUSTER_DIR")
	if dir == "" {
		dir = "/tmp/cyrusrepl-e2e"
	}
	sh := func(args ...string) time.Duration {
		cmd := exec.CommandContext(context.Background(), "hack/cluster.sh", args...)
		cmd.Dir = repo
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("cluster.sh %v: %v\n%s", args, err, out)
		}
		return time.Since(start)
	}
	var up, down time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		up += sh("up", dir)
		down += sh("down", dir)
	}
	b.ReportMetric(up.Seconds()/float64(b.N), "s/up")
	b.ReportMetric(down.Seconds()/float64(b.N), "s/down")
}
