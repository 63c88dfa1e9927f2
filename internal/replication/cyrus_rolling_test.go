package replication

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/executor"
	"github.com/cyrusrepl/cyrusrepl/internal/state"
	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// makeFailing damages bob's INBOX on the replica's disk (its cyrus.index overwritten
// with garbage, as a failing disk would) and gives him new mail on the master: every
// sync of bob fails on the replica until a person repairs it.
func makeFailing(t *testing.T, e *env) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ms, err := e.x.Replica.GetMailboxes(ctx, []string{"user.bob"})
	if err != nil || len(ms) != 1 {
		t.Fatalf("bob's INBOX on the replica: %v %v", ms, err)
	}
	// 3.6 keeps mailboxes by uniqueid: spool/uuid/<a>/<b>/<uniqueid>/cyrus.index.
	var index string
	err = filepath.WalkDir(e.p.Replica.Dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "cyrus.index" && filepath.Base(filepath.Dir(path)) == ms[0].UniqueID {
			index = path
		}
		return err
	})
	if err != nil || index == "" {
		t.Fatalf("bob's INBOX index on the replica not found under %s: %v", e.p.Replica.Dir, err)
	}
	if err := os.WriteFile(index, []byte(strings.Repeat("not an index ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	e.p.Master.Deliver(t, "bob", cyruspair.Message("master new", "x"))
}

// TestCyrusRollingFailingUserDoesNotBlock: a user that keeps failing is parked with
// backoff (no hot retry loop, its entries kept in the durable retry queue), and another
// user's new mail is replicated in the very next cycle.
func TestCyrusRollingFailingUserDoesNotBlock(t *testing.T) {
	e := startEnv(t, "delayed", false)
	m := e.p.Master
	for _, u := range []string{"alice", "bob"} {
		m.CreateUser(t, u)
		m.Deliver(t, u, cyruspair.Message("hi", u))
		e.sync(t, u)
	}
	logDir := m.SyncLogDir(e.p.Channel)
	drainLog(t, logDir)
	makeFailing(t, e)

	stateDir := t.TempDir()
	retry, err := state.OpenRetryQueue(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	retry.Base = time.Hour // no second try inside this test
	rec := NewRecorder("rolling", "test", time.Now())
	x := e.x
	roll := &Rolling{Log: masterLog(t, m, logDir), Retry: retry, Runner: &Runner{
		Connect: func(context.Context) (*executor.Executor, error) { return x, nil },
		Workers: 1, Attempts: 1, Rec: rec,
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Cycle 1: bob fails, goes to the retry queue.
	if err := roll.Cycle(ctx); err != nil {
		t.Fatal(err)
	}
	if e := retry.Entry("bob"); e == nil || e.Attempts != 1 || !strings.Contains(e.LastError, "bob") {
		t.Fatalf("bob not parked after failing on the replica: %+v", e)
	}
	if !rec.LastSuccess().IsZero() {
		t.Fatal("a cycle in which bob failed counted as a success")
	}
	// New mail for both arrives.
	m.Deliver(t, "alice", cyruspair.Message("urgent", "for alice"))
	m.Deliver(t, "bob", cyruspair.Message("more", "for bob"))
	// Cycle 2: alice's mail is replicated; bob is deferred, not retried (no hot loop).
	if err := roll.Cycle(ctx); err != nil {
		t.Fatal(err)
	}
	assertEqual(t, e.p, e.p.Replica, "alice")
	if e := retry.Entry("bob"); e == nil || e.Attempts != 1 {
		t.Fatalf("bob retried during backoff or lost: %+v", e)
	}
	// The queue is durable: reopened, bob is still owed a full sync.
	again, err := state.OpenRetryQueue(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if again.Entry("bob") == nil {
		t.Fatal("bob's pending sync did not survive a restart")
	}
	if s := rec.Summary(nil); s.UsersFailed != 1 || s.LastBatch == nil {
		t.Fatalf("summary: %+v", s)
	}
}

// TestCyrusMailboxLevelAndEscalation: a MAILBOX entry for a folder present at both ends,
// or new on the master, is handled at mailbox level; one for a folder the replica holds
// under a name the batch does not name (a rename whose old name is not in the log)
// escalates to a full user sync.
func TestCyrusMailboxLevelAndEscalation(t *testing.T) {
	e := startEnv(t, "delayed", false)
	m := e.p.Master
	cyruspair.SeedAlice(t, m)
	e.sync(t, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	m.Deliver(t, "alice", cyruspair.Message("new", "mail"))
	res, err := e.x.SyncWork(ctx, []synclog.UserWork{{User: "alice", Mailboxes: []string{"user.alice"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.MailboxLevel || !res.Equal || res.BodiesSent != 1 {
		t.Fatalf("mailbox level: %+v", res)
	}
	assertEqual(t, e.p, e.p.Replica, "alice")

	m.CreateFolder(t, "alice", "Fresh")
	m.Append(t, "alice", "Fresh", cyruspair.Message("f", "fresh"))
	res, err = e.x.SyncWork(ctx, []synclog.UserWork{{User: "alice", Mailboxes: []string{"user.alice.Fresh"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.MailboxLevel || !res.Equal || !hasDecision(res, "create", "none", "user.alice.Fresh") {
		t.Fatalf("new folder not created at mailbox level: %+v", res)
	}
	assertEqual(t, e.p, e.p.Replica, "alice")

	// The old name is not in the batch, but the master's mailboxes.db has it in the
	// folder's name history: still a mailbox-level rename.
	m.Rename(t, "alice", "Fresh", "Moved")
	res, err = e.x.SyncWork(ctx, []synclog.UserWork{{User: "alice", Mailboxes: []string{"user.alice.Moved"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.MailboxLevel || !hasDecision(res, "rename", "name-history", "user.alice.Moved") {
		t.Fatalf("rename known from name history not made at mailbox level: %+v", res)
	}
	// Without mailboxes.db, the replica's answer by uniqueid shows a rename the batch
	// cannot see whole: escalate.
	m.Rename(t, "alice", "Moved", "Final")
	x := *e.x
	x.MailboxesDB = nil
	e.records = nil
	res, err = x.SyncWork(ctx, []synclog.UserWork{{User: "alice", Mailboxes: []string{"user.alice.Final"}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.MailboxLevel || !hasDecision(res, "rename", "name-history", "user.alice.Final") {
		t.Fatalf("not escalated: %+v", res)
	}
	escalated := false
	for _, r := range e.records {
		if er, ok := r.(executor.EscalationRecord); ok && strings.Contains(er.Reason, "master only") {
			escalated = true
		}
	}
	if !escalated {
		t.Fatalf("no escalation record in %v", e.records)
	}
	if got := replicaUIDs(ctx, t, e.x, "user.alice.Moved", "user.alice.Final"); got["user.alice.Moved"] != "" || got["user.alice.Final"] == "" {
		t.Fatalf("replica after the escalated rename: %v", got)
	}
	assertEqual(t, e.p, e.p.Replica, "alice")
}

// TestCyrusRollingBadLine: a malformed line in the real channel log is recorded and
// skipped; the good entries around it are replicated.
func TestCyrusRollingBadLine(t *testing.T) {
	e := startEnv(t, "delayed", false)
	m := e.p.Master
	m.CreateUser(t, "alice")
	e.sync(t, "alice")
	logDir := m.SyncLogDir(e.p.Channel)
	drainLog(t, logDir)
	m.Deliver(t, "alice", cyruspair.Message("before", "x"))
	appendLog(t, logDir, `MAILBOX "user.alice.unterminated`)
	appendLog(t, logDir, "FROBNICATE user.alice")
	m.Deliver(t, "alice", cyruspair.Message("after", "y"))
	// The backlog counts the real log's entries (lines), the oldest one dated.
	var tr synclog.PendingTracker
	if p := tr.Observe(synclog.NewDir(logDir)); p.Entries < 4 || p.Since.IsZero() {
		t.Fatalf("pending before the cycle: %+v, want at least 4 entries, dated", p)
	}
	rec := NewRecorder("rolling", "test", time.Now())
	retry, _ := state.OpenRetryQueue(t.TempDir())
	var bad []badLineRecord
	x := e.x
	roll := &Rolling{Log: masterLog(t, m, logDir), Retry: retry,
		Emit: func(v any) {
			if b, ok := v.(badLineRecord); ok {
				bad = append(bad, b)
			}
		},
		Runner: &Runner{Connect: func(context.Context) (*executor.Executor, error) { return x, nil }, Workers: 1, Rec: rec}}
	if err := roll.Cycle(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(bad) != 2 || rec.Summary(nil).BadLogLines != 2 {
		t.Fatalf("bad lines: %+v", bad)
	}
	if s := rec.Summary(nil); s.Backlog == nil || *s.Backlog != 0 || s.PendingSince != nil || rec.LastSuccess().IsZero() {
		t.Fatalf("after the cycle: backlog %v pendingSince %v lastSuccess %v", s.Backlog, s.PendingSince, rec.LastSuccess())
	}
	assertEqual(t, e.p, e.p.Replica, "alice")
}
