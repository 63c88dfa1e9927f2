package replication

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/executor"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// Records that tell the truth: a batch reports only what it ran, and every action it
// runs has its decision record.

// TestCyrusJoinChainNeverEqualWithoutRunning: folders moved across users in a chain
// (u1's folder to u2, u2's to u3, … u4's to u5) make the batch ask for one more user per
// round. Starting from u1 alone, it must join all five and replicate every move, or fail
// saying why; it must never report the users equal without having run.
func TestCyrusJoinChainNeverEqualWithoutRunning(t *testing.T) {
	e := startEnv(t, "delayed", false)
	m := e.p.Master
	const n = 5
	var users []string
	for i := 1; i <= n; i++ {
		u := fmt.Sprintf("u%d", i)
		users = append(users, u)
		m.CreateUser(t, u)
		m.CreateFolder(t, u, "F")
		m.Append(t, u, "F", cyruspair.Message(u, "in F"))
	}
	e.sync(t, users...)
	admin := m.IMAPAs(t, e.p.AdminUser)
	for i := 1; i < n; i++ {
		from, to := cyruspair.Quote(e.p.IMAPAdminName(fmt.Sprintf("u%d", i), "F")), cyruspair.Quote(e.p.IMAPAdminName(fmt.Sprintf("u%d", i+1), "G"))
		inbox := cyruspair.Quote(e.p.IMAPAdminName(fmt.Sprintf("u%d", i+1), ""))
		for _, cmd := range []string{"SETACL " + from + " admin lrswipkxtecda", "SETACL " + inbox + " admin lrswipkxtecda", "RENAME " + from + " " + to} {
			if _, err := admin.Cmd("%s", cmd); err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := e.x.Sync(ctx, []string{"u1"}, false)
	if err != nil {
		t.Logf("the chain failed the batch (allowed, if it says why): %v", err)
		if res != nil && res.Equal {
			t.Fatalf("failed batch reports equal: %+v", res)
		}
		return
	}
	for _, u := range res.Users {
		if u.Outcome == report.OutcomeEqual || u.Outcome == report.OutcomeSynced {
			assertEqual(t, e.p, e.p.Replica, u.User)
		}
	}
	if !res.Equal || len(res.Users) != n {
		t.Fatalf("the chain of %d joins was not replicated: equal=%v users=%+v decisions=%+v", n-1, res.Equal, res.Users, res.Decisions)
	}
	assertEqual(t, e.p, e.p.Replica, users...)
}

// changingMaster renames a master folder (a real IMAP RENAME) right after the batch
// first reads the master's copy of a given folder, i.e. between the plan and the next
// actions: the batch plans again or escalates and runs actions of a later plan.
type changingMaster struct {
	executor.MasterReader
	after    string // the folder whose GET FULLMAILBOX triggers the rename
	fire     func()
	switched *bool
}

func (m changingMaster) GetFullMailbox(ctx context.Context, name string) (*csync.Mailbox, error) {
	mb, err := m.MasterReader.GetFullMailbox(ctx, name)
	if name == m.after && !*m.switched {
		*m.switched = true
		m.fire()
	}
	return mb, err
}

// TestCyrusReplanActionsHaveRecords: after the master changed mid-batch, the actions
// the batch runs from its later plan (here the folder's new name) have decision
// records, counted in the result.
func TestCyrusReplanActionsHaveRecords(t *testing.T) {
	e := startEnv(t, "delayed", false)
	m := e.p.Master
	m.CreateUser(t, "alice")
	e.sync(t, "alice")
	m.Deliver(t, "alice", cyruspair.Message("new", "inbox"))
	m.CreateFolder(t, "alice", "Fresh")
	m.Append(t, "alice", "Fresh", cyruspair.Message("fresh", "x"))
	x := *e.x
	switched := false
	x.Master = changingMaster{MasterReader: e.x.Master, after: "user.alice", switched: &switched,
		fire: func() { m.Rename(t, "alice", "Fresh", "Fresh2") }}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := x.Sync(ctx, []string{"alice"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if !switched {
		t.Fatal("the master was not changed mid-batch; the test proved nothing")
	}
	assertEqual(t, e.p, e.p.Replica, "alice")
	if !decisionNames(res, "user.alice.Fresh2") {
		t.Fatalf("the replica now holds user.alice.Fresh2, but no decision record names it: %s\n%+v", decisionsText(res), res)
	}
}

// TestCyrusEscalationKeepsDoneWork: a mailbox-level batch that has already replicated
// mail when it must escalate to a full user sync keeps, in its result, the actions and
// the bodies of that first part.
func TestCyrusEscalationKeepsDoneWork(t *testing.T) {
	e := startEnv(t, "delayed", false)
	m := e.p.Master
	m.CreateUser(t, "alice")
	e.sync(t, "alice")
	m.Deliver(t, "alice", cyruspair.Message("new", "inbox"))
	m.CreateFolder(t, "alice", "Fresh")
	m.Append(t, "alice", "Fresh", cyruspair.Message("fresh", "x"))
	x := *e.x
	switched := false
	x.Master = changingMaster{MasterReader: e.x.Master, after: "user.alice", switched: &switched,
		fire: func() { m.Rename(t, "alice", "Fresh", "Fresh2") }}
	e.records = nil
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := x.SyncWork(ctx, []synclog.UserWork{{User: "alice", Mailboxes: []string{"user.alice", "user.alice.Fresh"}}})
	if err != nil {
		t.Fatal(err)
	}
	escalated := false
	for _, r := range e.records {
		_, ok := r.(executor.EscalationRecord)
		escalated = escalated || ok
	}
	if !switched || !escalated {
		t.Fatalf("no escalation after the mid-batch change (switched=%v); the test proved nothing: %v", switched, e.records)
	}
	assertEqual(t, e.p, e.p.Replica, "alice")
	if !decisionNames(res, "user.alice") || res.BodiesSent < 2 {
		t.Fatalf("the escalated result lost the INBOX update done before escalating: bodies=%d %s", res.BodiesSent, decisionsText(res))
	}
}

func decisionNames(res *executor.BatchResult, name string) bool {
	for _, d := range res.Decisions {
		if d.MasterName == name || d.ReplicaName == name {
			return true
		}
	}
	return false
}

func decisionsText(res *executor.BatchResult) string {
	var b strings.Builder
	for _, d := range res.Decisions {
		fmt.Fprintf(&b, "\n  %s %s master=%s replica=%s", d.Action, d.Evidence, d.MasterName, d.ReplicaName)
	}
	return b.String()
}
