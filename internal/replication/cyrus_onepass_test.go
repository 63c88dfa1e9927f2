package replication

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/cyrusindex"
	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// commandCounts counts the csync commands sent on one connection (its Observe hook,
// which also feeds the replicator's csync-stats).
type commandCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *commandCounts) observe(cmd string, _ time.Duration, _ error) {
	c.mu.Lock()
	c.n[cmd]++
	c.mu.Unlock()
}

func (c *commandCounts) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// TestCyrusOnePassRoundTrips: a one-message update of a folder, as the rolling
// replicator runs it from the sync log (mailbox level, delta from the master's index),
// costs one GET MAILBOXES at each end, reads no folder in full, uploads the message
// without APPLY RESERVE (which scans the replica folder), applies the folder once, and
// leaves the replica equal to the master. Each extra round trip opens the
// (possibly large) folder on a server again: this pins the count so a regression fails.
func TestCyrusOnePassRoundTrips(t *testing.T) {
	e := startEnv(t, "delayed", false)
	master, replica := &commandCounts{n: map[string]int{}}, &commandCounts{n: map[string]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opt := csync.Options{Username: e.p.ReplUser, Password: e.p.ReplPassword, TLS: e.p.ClientTLS()}
	opt.Observe = master.observe
	mc, err := csync.DialMaster(ctx, e.p.Master.SyncAddr, opt)
	if err != nil {
		t.Fatal(err)
	}
	opt.Observe = replica.observe
	rc, err := csync.DialReplica(ctx, e.p.Replica.SyncAddr, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close(); rc.Close() })
	local, err := cyrusindex.NewLocal(e.p.Master.ConfigPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := &indexEvents{}
	e.x.Master, e.x.Replica, e.x.MasterIndex, e.x.IndexStats = mc, rc, local, ev.add

	m := e.p.Master
	m.CreateUser(t, "alice")
	m.CreateFolder(t, "alice", "Work")
	for i := 0; i < 3; i++ {
		m.Deliver(t, "alice", cyruspair.Message("seed", "body"))
	}
	e.sync(t, "alice")
	assertEqual(t, e.p, e.p.Replica, "alice")

	for pass := 1; pass <= 2; pass++ {
		m.Deliver(t, "alice", cyruspair.Message("one more", "body"))
		master.take()
		replica.take()
		ev.take()
		res, err := e.x.SyncWork(ctx, []synclog.UserWork{{User: "alice", Mailboxes: []string{"user.alice"}}})
		if err != nil || !res.MailboxLevel || !res.Equal {
			t.Fatalf("pass %d: %+v %v", pass, res, err)
		}
		mn, rn := master.take(), replica.take()
		t.Logf("pass %d: master %v, replica %v", pass, mn, rn)
		if deltas, fallbacks := ev.take(); deltas != 1 || len(fallbacks) != 0 {
			t.Errorf("pass %d: %d deltas, fallbacks %v; want one delta", pass, deltas, fallbacks)
		}
		want := []struct {
			end  string
			got  map[string]int
			cmd  string
			want int
		}{
			{"master", mn, "GET MAILBOXES", 1},
			{"master", mn, "GET FULLMAILBOX", 0},
			{"master", mn, "GET USER", 0},
			{"replica", rn, "GET MAILBOXES", 1},
			{"replica", rn, "GET FULLMAILBOX", 0},
			{"replica", rn, "APPLY MAILBOX", 1},
			{"replica", rn, "APPLY RESERVE", 0}, // a small new message is uploaded without the scan
			{"replica", rn, "APPLY MESSAGE", 1},
		}
		for _, w := range want {
			if w.got[w.cmd] != w.want {
				t.Errorf("pass %d: %s %s sent %d times, want %d (master %v, replica %v)", pass, w.end, w.cmd, w.got[w.cmd], w.want, mn, rn)
			}
		}
		assertEqual(t, e.p, e.p.Replica, "alice")
	}
}
