package replication

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/executor"
	"github.com/cyrusrepl/cyrusrepl/internal/mboxdb"
	"github.com/cyrusrepl/cyrusrepl/internal/plan"
	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// TestCyrusMailboxesDBReadOnlyOnDisagreement: a user in step at both ends is compared
// without reading mailboxes.db (an audit of a healthy fleet spawns no cyr_dbtool); a
// rename on the master makes the next sync read it, and the rename is still made with
// the master's name history as evidence: with cyr_dbtool and with the Go reader.
func TestCyrusMailboxesDBReadOnlyOnDisagreement(t *testing.T) {
	for _, backend := range []string{mboxdb.BackendCyrDBTool, mboxdb.BackendGo} {
		t.Run(backend, func(t *testing.T) { readOnlyOnDisagreement(t, backend) })
	}
}

func readOnlyOnDisagreement(t *testing.T, backend string) {
	e := startEnv(t, "delayed", false)
	db, err := mboxdb.NewReader("", e.p.Master.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	db.Backend = backend
	m := e.p.Master
	cyruspair.SeedAlice(t, m)
	e.sync(t, "alice")
	x := *e.x
	reads := 0
	x.MailboxesDB = func(ctx context.Context, users, uids []string) (*mboxdb.DB, error) {
		reads++
		return db.ForUsers(ctx, users, uids)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := x.Sync(ctx, []string{"alice"}, true)
	if err != nil || !res.Equal {
		t.Fatalf("verify: %+v %v", res, err)
	}
	if reads != 0 {
		t.Fatalf("mailboxes.db read %d times for a user in step", reads)
	}
	m.Rename(t, "alice", "Sent", "Outbox")
	res, err = x.Sync(ctx, []string{"alice"}, false)
	if err != nil || !res.Equal {
		t.Fatalf("sync: %+v %v", res, err)
	}
	if reads == 0 || !hasDecision(res, "rename", "name-history", "user.alice.Outbox") {
		t.Fatalf("after a rename: %d reads, decisions %+v", reads, res.Decisions)
	}
	for _, d := range res.Decisions {
		if d.Action == "rename" && !strings.Contains(d.Reason, "master name history has user.alice.Sent") {
			t.Errorf("rename reason %q does not cite the name history", d.Reason)
		}
	}
	assertEqual(t, e.p, e.p.Replica, "alice")
}

// TestCyrusLedgerMarksFollowOurWrites: after a full sync and after a mailbox-level update,
// the ledger's in-step mark of every folder equals the replica's actual state, so the
// replicator's own writes are never taken for writes on the replica (which would keep a
// folder the master deleted). The mark is taken from what APPLY MAILBOX carried, even
// when no verification pass follows.
func TestCyrusLedgerMarksFollowOurWrites(t *testing.T) {
	e := startEnv(t, "immediate", false)
	m := e.p.Master
	cyruspair.SeedAlice(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	check := func(when string) {
		t.Helper()
		ru, err := e.x.Replica.GetUser(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		l, err := e.x.Ledger.Load("alice")
		if err != nil {
			t.Fatal(err)
		}
		for i := range ru.Mailboxes {
			f := executor.FolderFromMailbox(&ru.Mailboxes[i])
			got, ok := l.LastInStep(f.UniqueID)
			if !ok || got != plan.MarkOf(&f) {
				t.Errorf("%s: %s marked %+v (known %v), replica is at %+v", when, f.Name, got, ok, plan.MarkOf(&f))
			}
		}
	}
	e.sync(t, "alice")
	check("after the full sync")

	// Applies with no verification pass after them (as when a later action of the batch
	// fails): the marks of the changed folders come from what the applies carried.
	m.Deliver(t, "alice", cyruspair.Message("more", "mail"))
	m.Store(t, "alice", "Sent", "1", "+FLAGS", `\Flagged`)
	in, err := e.x.Gather(ctx, []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	p := plan.Compute(in)
	if len(p.Actions) != 2 {
		t.Fatalf("plan %v, want the updates of INBOX and Sent", p.Actions)
	}
	if _, err := e.x.Execute(ctx, &p, in); err != nil {
		t.Fatal(err)
	}
	check("after applies without a verification pass")

	m.Deliver(t, "alice", cyruspair.Message("again", "mail"))
	res, err := e.x.SyncWork(ctx, []synclog.UserWork{{User: "alice", Mailboxes: []string{"user.alice"}}})
	if err != nil || !res.MailboxLevel || !res.Equal {
		t.Fatalf("mailbox level: %+v %v", res, err)
	}
	check("after a mailbox-level update")

	// A folder the master deletes is then deleted on the replica (the marks match).
	m.Delete(t, "alice", "Sent")
	res = e.sync(t, "alice")
	if !hasDecision(res, "delete", "tombstone", "user.alice.Sent") {
		t.Fatalf("folder deleted on the master not deleted on the replica: %+v", res.Decisions)
	}
}
