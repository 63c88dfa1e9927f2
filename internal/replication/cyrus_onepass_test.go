package replication

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/executor"
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

// observedEnv is a test env whose executor talks to both ends over connections that
// count their commands, with update deltas from the master's index.
type observedEnv struct {
	*env
	master, replica *commandCounts
	index           *indexEvents
	cache           *cacheEvents
}

func startObservedEnv(t *testing.T, replicaCache bool) *observedEnv {
	t.Helper()
	o := &observedEnv{env: startEnv(t, "delayed", false), master: &commandCounts{n: map[string]int{}},
		replica: &commandCounts{n: map[string]int{}}, index: &indexEvents{}, cache: &cacheEvents{}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opt := csync.Options{Username: o.p.ReplUser, Password: o.p.ReplPassword, TLS: o.p.ClientTLS()}
	opt.Observe = o.master.observe
	mc, err := csync.DialMaster(ctx, o.p.Master.SyncAddr, opt)
	if err != nil {
		t.Fatal(err)
	}
	opt.Observe = o.replica.observe
	rc, err := csync.DialReplica(ctx, o.p.Replica.SyncAddr, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close(); rc.Close() })
	o.x.Master, o.x.Replica, o.x.IndexStats = mc, rc, o.index.add
	o.x.MasterIndex = masterIndex(t, o.p.Master, o.p.Channel)
	o.x.ReplicaCache, o.x.CacheStats = replicaCache, o.cache.add
	return o
}

// pass runs one mailbox-level batch of the named folders of user, as the rolling
// replicator runs it from the sync log, and returns the commands sent to each end.
func (o *observedEnv) pass(ctx context.Context, t *testing.T, user string, names ...string) (*executor.BatchResult, map[string]int, map[string]int) {
	t.Helper()
	o.master.take()
	o.replica.take()
	res, err := o.x.SyncWork(ctx, []synclog.UserWork{{User: user, Mailboxes: names}})
	if err != nil {
		t.Fatalf("SyncWork %v: %+v %v", names, res, err)
	}
	return res, o.master.take(), o.replica.take()
}

// cacheEvents collects the executor's replica-cache events by reason ("" = planned
// from the ledger and carried out).
type cacheEvents struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *cacheEvents) add(ev executor.CacheEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[ev.Reason]++
}

func (c *cacheEvents) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = nil
	return n
}

// onePassRoundTrips: one-message updates of a folder, as the rolling replicator runs
// them from the sync log (mailbox level, delta from the master's index), cost one GET
// MAILBOXES on the master, one on the replica unless the ledger's record of the folder
// stands in for it (replicaCache), read no folder in full, upload the message without
// APPLY RESERVE (which scans the replica folder), apply the folder once, and leave the
// replica equal to the master. Each extra round trip opens the (possibly large) folder
// on a server again: this pins the count so a regression fails.
func onePassRoundTrips(t *testing.T, replicaCache bool) {
	o := startObservedEnv(t, replicaCache)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m := o.p.Master
	m.CreateUser(t, "alice")
	m.CreateFolder(t, "alice", "Work")
	for i := 0; i < 3; i++ {
		m.Deliver(t, "alice", cyruspair.Message("seed", "body"))
	}
	o.sync(t, "alice")
	assertEqual(t, o.p, o.p.Replica, "alice")
	replicaReads, ledgerPlans := 1, 0
	if replicaCache {
		replicaReads, ledgerPlans = 0, 1
	}
	for pass := 1; pass <= 2; pass++ {
		m.Deliver(t, "alice", cyruspair.Message("one more", "body"))
		o.index.take()
		res, mn, rn := o.pass(ctx, t, "alice", "user.alice")
		if !res.MailboxLevel || !res.Equal {
			t.Fatalf("pass %d: %+v", pass, res)
		}
		t.Logf("pass %d: master %v, replica %v", pass, mn, rn)
		if deltas, fallbacks := o.index.take(); deltas != 1 || len(fallbacks) != 0 {
			t.Errorf("pass %d: %d deltas, fallbacks %v; want one delta", pass, deltas, fallbacks)
		}
		if got := o.cache.take(); got[""] != ledgerPlans || len(got) > ledgerPlans {
			t.Errorf("pass %d: replica-cache events %v, want %d planned from the ledger and nothing else", pass, got, ledgerPlans)
		}
		assertCommands(t, fmt.Sprintf("pass %d", pass), mn, rn, []commandWant{
			{"master", "GET MAILBOXES", 1},
			{"master", "GET FULLMAILBOX", 0},
			{"master", "GET USER", 0},
			{"replica", "GET MAILBOXES", replicaReads},
			{"replica", "GET FULLMAILBOX", 0},
			{"replica", "APPLY MAILBOX", 1},
			{"replica", "APPLY RESERVE", 0}, // a small new message is uploaded without the scan
			{"replica", "APPLY MESSAGE", 1},
		})
		assertEqual(t, o.p, o.p.Replica, "alice")
	}
}

func TestCyrusOnePassRoundTrips(t *testing.T) { onePassRoundTrips(t, false) }

// TestCyrusOnePassRoundTripsReplicaCache: with the ledger's record of the replica
// (--replica-cache), a one-message update does not read the replica at all.
func TestCyrusOnePassRoundTripsReplicaCache(t *testing.T) { onePassRoundTrips(t, true) }

// TestCyrusRenameRoundTrips: a folder renamed on the master, replayed at mailbox level,
// costs one GET MAILBOXES on the master and two on the replica (the plan's read and the
// compare-and-rename re-check right before APPLY RENAME): the APPLY MAILBOX that follows
// the rename carries the master's SYNC_CRCs, which the replica checks, so no confirming
// round reads both ends again. The replica ends equal to the master.
func TestCyrusRenameRoundTrips(t *testing.T) {
	o := startObservedEnv(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m := o.p.Master
	m.CreateUser(t, "alice")
	m.CreateFolder(t, "alice", "Work")
	m.Append(t, "alice", "Work", cyruspair.Message("w", "work"))
	o.sync(t, "alice")
	m.Rename(t, "alice", "Work", "Play")
	res, mn, rn := o.pass(ctx, t, "alice", "user.alice.Work", "user.alice.Play")
	t.Logf("master %v, replica %v", mn, rn)
	if !res.MailboxLevel || !res.Equal {
		t.Fatalf("%+v", res)
	}
	assertCommands(t, "rename", mn, rn, []commandWant{
		{"master", "GET MAILBOXES", 1},
		{"replica", "GET MAILBOXES", 2},
		{"replica", "APPLY RENAME", 1},
		{"replica", "APPLY MAILBOX", 1},
		{"replica", "APPLY MESSAGE", 0},
	})
	assertEqual(t, o.p, o.p.Replica, "alice")
}

// commandWant is how many times a command should have been sent to one end.
type commandWant struct {
	end, cmd string
	want     int
}

// assertCommands checks the commands counted at the master (mn) and the replica (rn).
func assertCommands(t *testing.T, label string, mn, rn map[string]int, wants []commandWant) {
	t.Helper()
	for _, w := range wants {
		got := mn
		if w.end == "replica" {
			got = rn
		}
		if got[w.cmd] != w.want {
			t.Errorf("%s: %s %s sent %d times, want %d (master %v, replica %v)", label, w.end, w.cmd, got[w.cmd], w.want, mn, rn)
		}
	}
}
