package replication

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/executor"
	"github.com/cyrusrepl/cyrusrepl/internal/state"
	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/faultproxy"
)

// slowReplica puts a throttling proxy (delay per 16 kB relayed) in front of the
// replica's sync port and returns a connector whose executors write through it.
func slowReplica(t *testing.T, e *env, delay time.Duration) (*faultproxy.Proxy, Connector) {
	t.Helper()
	pr, err := faultproxy.Start(e.p.Replica.SyncAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close() })
	pr.SetDelay(delay)
	via := *e.p.Replica
	via.SyncAddr = pr.Addr
	return pr, func(context.Context) (*executor.Executor, error) { return e.executor(t, &via), nil }
}

// bulk returns n messages of about size bytes each.
func bulk(prefix string, n, size int) [][]byte {
	line := strings.Repeat("0123456789abcdef", 4) + "\r\n"
	body := strings.Repeat(line, size/len(line))
	out := make([][]byte, n)
	for i := range out {
		out[i] = cyruspair.Message(fmt.Sprintf("%s %d", prefix, i), fmt.Sprintf("%d\r\n%s", i, body))
	}
	return out
}

// TestCyrusBigFolderConvergesPastBatchTimeout: a folder whose upload through a throttled
// link takes longer than --batch-timeout still reaches the replica: the timeout cuts an
// attempt that stalls, not one that moves. (Cut at a fixed deadline, every attempt
// would restart the upload from nothing and fail the same way.)
func TestCyrusBigFolderConvergesPastBatchTimeout(t *testing.T) {
	e := startEnv(t, "delayed", false)
	m := e.p.Master
	m.CreateUser(t, "big")
	e.sync(t, "big")
	m.DeliverMany(t, "big", bulk("big", 100, 100_000))                      // ~10 MB
	_, connect := slowReplica(t, e, 30*time.Millisecond)                    // ~0.5 MB/s: ~20 s for the upload
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // hang guard
	defer cancel()
	r := &Runner{Connect: connect, Workers: 1, Attempts: 2, BatchTimeout: 8 * time.Second,
		Backoff: func(int) time.Duration { return 0 }, Rec: NewRecorder("sync", "test", time.Now())}
	start := time.Now()
	res := r.Run(ctx, []Job{{Users: []string{"big"}}})
	if len(res) != 1 || res[0].Err != nil {
		t.Fatalf("a 10 MB folder on a ~0.5 MB/s link with an 8 s batch timeout did not converge: %v", res[0].Err)
	}
	assertEqual(t, e.p, e.p.Replica, "big")
	t.Logf("uploaded in %s with --batch-timeout 8s, %d attempt(s)", time.Since(start).Round(time.Second), res[0].Attempts)
}

// TestCyrusRollingSlowUserDoesNotHoldOthers: one user's upload crawls through a
// throttled link (minutes), and meanwhile another user's new mail must reach the
// replica (a one-minute hang guard): log consumption does not wait for the slow job. Mail for the slow user logged
// while it is in flight is kept and replicated once it is done.
func TestCyrusRollingSlowUserDoesNotHoldOthers(t *testing.T) {
	e := startEnv(t, "delayed", false)
	m := e.p.Master
	for _, u := range []string{"slow", "ann"} {
		m.CreateUser(t, u)
	}
	e.sync(t, "slow", "ann")
	logDir := m.SyncLogDir(e.p.Channel)
	drainLog(t, logDir)
	const big = 200
	m.DeliverMany(t, "slow", bulk("slow", big, 100_000)) // ~20 MB: over two minutes at ~160 kB/s
	pr, connect := slowReplica(t, e, 100*time.Millisecond)
	retry, err := state.OpenRetryQueue(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pendingDir := synclog.NewDir(logDir).PendingPath()
	pending, err := state.OpenPendingQueue(pendingDir)
	if err != nil {
		t.Fatal(err)
	}
	roll := &Rolling{Log: masterLog(t, m, logDir), Retry: retry, Pending: pending, Interval: 50 * time.Millisecond,
		Runner: &Runner{Connect: connect, Workers: 2, Attempts: 1, Rec: NewRecorder("rolling", "test", time.Now())}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // hang guard
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- roll.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-runDone }) }
	defer stop()

	waitUntil(t, ctx, "the slow user's log taken", func() bool { return !exists(logDir, "log") })
	m.Deliver(t, "ann", cyruspair.Message("ann", "while slow uploads"))
	m.Deliver(t, "slow", cyruspair.Message("slow", "while slow uploads"))
	// Hang guard, not a speed target: well under the slow user's upload time.
	annCtx, annCancel := context.WithTimeout(ctx, time.Minute)
	defer annCancel()
	waitUntil(t, annCtx, "ann's mail on the replica while the slow user uploads", func() bool {
		return e.p.Replica.Status(t, "ann", "INBOX").Messages == 1
	})
	if n := e.p.Replica.Status(t, "slow", "INBOX").Messages; n != 0 {
		t.Fatalf("ann's mail reached the replica only after the slow user's upload ended (%d messages there): consumption waited for the slow job", n)
	}
	// The log-run is gone while the slow user is in flight: its work is durable in the
	// pending queue, which a restart would run again.
	again, err := state.OpenPendingQueue(pendingDir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(again.Users(), "slow") {
		t.Fatalf("the slow user's work taken from the log is not in the pending queue while in flight: %v", again.Users())
	}
	pr.SetDelay(0)
	waitUntil(t, ctx, "the slow user converged, with the mail logged while in flight", func() bool {
		return e.p.Replica.Status(t, "slow", "INBOX").Messages == big+1
	})
	waitUntil(t, ctx, "the pending queue emptied", func() bool {
		q, err := state.OpenPendingQueue(pendingDir)
		return err == nil && q.Len() == 0
	})
	stop()
	assertEqual(t, e.p, e.p.Replica, "slow", "ann")
}

func exists(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

// waitUntil polls cond until it holds; ctx is the hang guard.
func waitUntil(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("hang guard: gave up waiting for %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
