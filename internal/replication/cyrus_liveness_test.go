package replication

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

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
	return pr, func(context.Context) (*Executor, error) { return e.executor(t, &via), nil }
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
