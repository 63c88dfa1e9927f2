package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/agenttest"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

var (
	replOnce sync.Once
	replBin  string
	replErr  error
)

// replicator builds cmd/replicator once per test binary.
func replicator(t *testing.T) string {
	t.Helper()
	replOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cyrusrepl-agent-test-")
		if err != nil {
			replErr = err
			return
		}
		replBin = filepath.Join(dir, "replicator")
		out, err := exec.Command("go", "build", "-o", replBin, "github.com/cyrusrepl/cyrusrepl/cmd/replicator").CombinedOutput()
		if err != nil {
			replErr = fmt.Errorf("go build cmd/replicator: %v\n%s", err, out)
		}
	})
	if replErr != nil {
		t.Fatal(replErr)
	}
	return replBin
}

// runReplicatorCode runs the replicator through agent a (bounded) and returns its exit
// code and output.
func runReplicatorCode(t *testing.T, p *cyruspair.Pair, a *agenttest.Agent, mode string, extra ...string) (int, string) {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte(p.ReplPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{mode, "--master", p.Master.SyncAddr, "--replica", p.Replica.SyncAddr,
		"--master-password-file", pw, "--replica-password-file", pw, "--state-dir", filepath.Join(t.TempDir(), "state")}
	args = append(args, p.ReplicatorTLSFlags()...)
	args = append(args, a.Flags()...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, replicator(t), append(args, extra...)...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("replicator %s hung:\n%s", mode, out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	case err != nil:
		t.Fatal(err)
	}
	return 0, string(out)
}

// runReplicator runs the replicator through agent a and fails the test unless it
// exits 0.
func runReplicator(t *testing.T, p *cyruspair.Pair, a *agenttest.Agent, mode string, extra ...string) string {
	t.Helper()
	code, out := runReplicatorCode(t, p, a, mode, extra...)
	if code != 0 && mode != "verify" {
		t.Fatalf("replicator %s: exit %d\n%s", mode, code, out)
	}
	if code == 2 {
		t.Fatalf("replicator %s: exit 2 (usage or unreachable)\n%s", mode, out)
	}
	return out
}
