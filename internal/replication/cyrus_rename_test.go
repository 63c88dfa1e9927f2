package replication

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/executor"
	"github.com/cyrusrepl/cyrusrepl/internal/state"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// userFetches counts the user-level reads of one end: GET USER, and GET FULLMAILBOX by name.
type userFetches struct {
	mu   sync.Mutex
	user int
	full []string
}

func (c *userFetches) addUser() { c.mu.Lock(); c.user++; c.mu.Unlock() }
func (c *userFetches) addFull(n string) {
	c.mu.Lock()
	c.full = append(c.full, n)
	c.mu.Unlock()
}

type countingMaster struct {
	executor.MasterReader
	c *userFetches
}

func (m countingMaster) GetUser(ctx context.Context, u string) (*csync.UserState, error) {
	m.c.addUser()
	return m.MasterReader.GetUser(ctx, u)
}

func (m countingMaster) GetFullMailbox(ctx context.Context, n string) (*csync.Mailbox, error) {
	m.c.addFull(n)
	return m.MasterReader.GetFullMailbox(ctx, n)
}

type countingReplica struct {
	executor.ReplicaWriter
	c *userFetches
}

func (r countingReplica) GetUser(ctx context.Context, u string) (*csync.UserState, error) {
	r.c.addUser()
	return r.ReplicaWriter.GetUser(ctx, u)
}

func (r countingReplica) GetFullMailbox(ctx context.Context, n string) (*csync.Mailbox, error) {
	r.c.addFull(n)
	return r.ReplicaWriter.GetFullMailbox(ctx, n)
}

// TestCyrusRollingRenameMailboxLevel: a folder renamed on the master (with a child,
// which Cyrus logs as a RENAME of its own) is replayed from the real sync log without a
// full user sync: no GET USER at either end, no folder outside the renamed ones read, no
// body sent, no escalation; the replica holds the folders under the new names with the
// same uniqueids, and equals the master.
func TestCyrusRollingRenameMailboxLevel(t *testing.T) {
	for _, mode := range []string{"delayed", "immediate"} {
		t.Run(mode, func(t *testing.T) {
			e := startEnv(t, mode, false)
			m := e.p.Master
			cyruspair.SeedAlice(t, m)
			for _, f := range []string{"A", "B", "C"} {
				m.CreateFolder(t, "alice", f)
				m.Append(t, "alice", f, cyruspair.Message("in "+f, f))
			}
			e.sync(t, "alice")
			logDir := m.SyncLogDir(e.p.Channel)
			drainLog(t, logDir)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			before := replicaUIDs(ctx, t, e.x, "user.alice.Work", "user.alice.Work.Old")

			m.Rename(t, "alice", "Work", "Job")

			var mc, rc userFetches
			x := e.x
			x.Master = countingMaster{MasterReader: x.Master, c: &mc}
			x.Replica = countingReplica{ReplicaWriter: x.Replica, c: &rc}
			records, rec := rollOnce(ctx, t, x, m, logDir)
			for _, r := range records {
				if er, ok := r.(executor.EscalationRecord); ok {
					t.Fatalf("escalated: %+v", er)
				}
			}
			if mc.user != 0 || rc.user != 0 {
				t.Fatalf("GET USER calls: master %d, replica %d", mc.user, rc.user)
			}
			renamed := []string{"user.alice.Work", "user.alice.Work.Old", "user.alice.Job", "user.alice.Job.Old"}
			for _, n := range append(slices.Clone(mc.full), rc.full...) {
				if !slices.Contains(renamed, n) {
					t.Fatalf("read an unrelated folder: %s (master %v, replica %v)", n, mc.full, rc.full)
				}
			}
			u := rec.Outcomes()["alice"]
			if u.Outcome == "" || u.Outcome == "failed" || u.BodiesSent != 0 {
				t.Fatalf("alice: %+v", u)
			}
			after := replicaUIDs(ctx, t, e.x, "user.alice.Job", "user.alice.Job.Old")
			if before["user.alice.Work"] == "" || after["user.alice.Job"] != before["user.alice.Work"] || after["user.alice.Job.Old"] != before["user.alice.Work.Old"] {
				t.Fatalf("uniqueids before %v, after %v", before, after)
			}
			if gone := replicaUIDs(ctx, t, e.x, "user.alice.Work", "user.alice.Work.Old"); len(gone) != 0 {
				t.Fatalf("old names still on the replica: %v", gone)
			}
			assertEqual(t, e.p, e.p.Replica, "alice")
		})
	}
}

// replicaUIDs asks the replica for the named folders: name → uniqueid.
func replicaUIDs(ctx context.Context, t *testing.T, x *executor.Executor, names ...string) map[string]string {
	t.Helper()
	ms, err := x.Replica.GetMailboxes(ctx, names)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range ms {
		out[m.Name] = m.UniqueID
	}
	return out
}

// rollOnce runs one rolling cycle over logDir on x (one worker) and returns what it
// emitted and recorded.
func rollOnce(ctx context.Context, t *testing.T, x *executor.Executor, m *cyruspair.Instance, logDir string) ([]any, *Recorder) {
	t.Helper()
	var records []any
	var mu sync.Mutex
	rec := NewRecorder("rolling", "test", time.Now())
	retry, err := state.OpenRetryQueue(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	roll := &Rolling{Log: masterLog(t, m, logDir), Retry: retry, Runner: &Runner{
		Connect: func(context.Context) (*executor.Executor, error) { return x, nil }, Workers: 1, Rec: rec,
		Emit: func(v any) { mu.Lock(); records = append(records, v); mu.Unlock() },
	}}
	if err := roll.Cycle(ctx); err != nil {
		t.Fatal(err)
	}
	return records, rec
}

// TestCyrusRollingCreateMailboxLevel: a folder created on the master (and written to) is
// replayed from the real sync log without a full user sync: the replica, asked by
// uniqueid, holds it nowhere, so it is created under its name with the master's uniqueid.
// A folder created under a parent the replica lacks may escalate; either way the replica
// ends equal to the master.
func TestCyrusRollingCreateMailboxLevel(t *testing.T) {
	e := startEnv(t, "delayed", false)
	m := e.p.Master
	cyruspair.SeedAlice(t, m)
	e.sync(t, "alice")
	logDir := m.SyncLogDir(e.p.Channel)
	drainLog(t, logDir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	m.CreateFolder(t, "alice", "Fresh")
	m.Append(t, "alice", "Fresh", cyruspair.Message("fresh", "new folder, new mail"))
	var mc, rc userFetches
	x := *e.x
	x.Master = countingMaster{MasterReader: e.x.Master, c: &mc}
	x.Replica = countingReplica{ReplicaWriter: e.x.Replica, c: &rc}
	records, rec := rollOnce(ctx, t, &x, m, logDir)
	for _, r := range records {
		if er, ok := r.(executor.EscalationRecord); ok {
			t.Fatalf("escalated: %+v", er)
		}
	}
	if mc.user != 0 || rc.user != 0 {
		t.Fatalf("GET USER calls: master %d, replica %d", mc.user, rc.user)
	}
	if u := rec.Outcomes()["alice"]; u.Outcome != "synced" || u.BodiesSent != 1 {
		t.Fatalf("alice: %+v", u)
	}
	ms, err := e.x.Master.GetMailboxes(ctx, []string{"user.alice.Fresh"})
	if err != nil || len(ms) != 1 {
		t.Fatalf("master GET MAILBOXES: %v %v", ms, err)
	}
	if got := replicaUIDs(ctx, t, e.x, "user.alice.Fresh"); got["user.alice.Fresh"] != ms[0].UniqueID {
		t.Fatalf("replica holds %v, master uniqueid %s", got, ms[0].UniqueID)
	}
	assertEqual(t, e.p, e.p.Replica, "alice")

	// Under a parent created in the same breath.
	m.CreateFolder(t, "alice", "Deep.Sub")
	m.Append(t, "alice", "Deep.Sub", cyruspair.Message("deep", "under a new parent"))
	rollOnce(ctx, t, &x, m, logDir)
	assertEqual(t, e.p, e.p.Replica, "alice")
}
