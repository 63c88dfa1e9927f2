package replication

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// TestCyrusInitialSyncRoundTrips: the first sync of a user (user level, every folder new
// to the replica) reads the replica once. Every folder is created by an APPLY MAILBOX
// that the replica checks against the master's SYNC_CRCs, and the subscriptions and
// quota by APPLYs it accepted, so once the master is read again and found unchanged no
// confirming round opens every folder of the replica again (GET USER does). With the
// master's index the records come from cyrus.index, not GET FULLMAILBOX; a body copied
// into three folders is uploaded once. The replica ends equal to the master, expunged
// records, flags and annotations included, and a second sync finds nothing to do.
// (TestCyrusReplanActionsHaveRecords: a master changed meanwhile gets the full round.)
func TestCyrusInitialSyncRoundTrips(t *testing.T) {
	o := startObservedEnv(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m := o.p.Master
	const user = "alice"
	m.CreateUser(t, user)
	m.CreateFolder(t, user, "Work")
	m.CreateFolder(t, user, "Archive")
	for i := range 3 {
		m.Deliver(t, user, cyruspair.Message(fmt.Sprintf("seed %d", i), "body"))
	}
	c := m.IMAPAs(t, user)
	for _, cmd := range []string{
		"SELECT INBOX",
		"COPY 1:3 " + cyruspair.Quote(o.p.IMAPFolder("Work")),
		"COPY 1:3 " + cyruspair.Quote(o.p.IMAPFolder("Archive")),
		`STORE 2 ANNOTATION (/comment (value.shared "note"))`,
	} {
		if _, err := c.Cmd("%s", cmd); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
	}
	m.Store(t, user, "Work", "1", "+FLAGS", `\Flagged`, "$Label1")
	m.Store(t, user, "Archive", "3", "+FLAGS", `\Deleted`)
	m.Expunge(t, user, "Archive") // delayed expunge: the record stays, flagged expunged
	m.Subscribe(t, user, "Work")
	m.SetQuota(t, user, 100000)

	o.master.take()
	o.replica.take()
	o.index.take()
	res, err := o.x.Sync(ctx, []string{user}, false)
	if err != nil {
		t.Fatalf("sync: %+v %v", res, err)
	}
	mn, rn := o.master.take(), o.replica.take()
	t.Logf("initial sync: master %v, replica %v", mn, rn)
	if !res.Equal || res.BodiesSent != 3 {
		t.Errorf("result %+v: want equal with 3 bodies sent", res)
	}
	if whole, fallbacks := o.index.take(); whole != 3 || len(fallbacks) != 0 {
		t.Errorf("%d folders read from the master's index, fallbacks %v; want all 3 from the index", whole, fallbacks)
	}
	assertCommands(t, "initial sync", mn, rn, []commandWant{
		{"master", "GET USER", 2}, // the plan's read, and the check that the master is unchanged
		{"replica", "GET USER", 1},
		{"master", "GET FULLMAILBOX", 0},
		{"master", "GET FETCH", 3},
		{"replica", "APPLY MAILBOX", 3},
		{"replica", "APPLY MESSAGE", 1},
	})
	assertEqual(t, o.p, o.p.Replica, user)

	again := o.sync(t, user)
	if !again.Equal || len(again.Decisions) != 0 || again.BodiesSent != 0 {
		t.Errorf("second sync: %+v; want nothing to do", again)
	}
}
