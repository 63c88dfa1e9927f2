package state

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/plan"
)

func TestLedgerSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := l.Load("john.doe@example.com")
	now := time.Unix(1000, 0)
	if !u.Record([]plan.Folder{fo("u1", "example.com!user.john^doe", 1), fo("x", "user.other", 1)}, now) {
		t.Fatal("first record reported no change")
	}
	if u.Record([]plan.Folder{fo("u1", "example.com!user.john^doe", 1)}, now.Add(time.Second)) {
		t.Fatal("same folder reported as a change")
	}
	if err := l.Save(u); err != nil {
		t.Fatal(err)
	}
	l2, _ := OpenLedger(dir)
	u2, err := l2.Load("john.doe@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := u2.SeenOnMaster("u1"); !ok || n != "example.com!user.john^doe" {
		t.Fatalf("after reopen: %q %v", n, ok)
	}
	if _, ok := u2.SeenOnMaster("x"); ok {
		t.Fatal("another user's folder recorded")
	}
	if _, ok := (Ledgers{u2}).SeenOnMaster("nope"); ok {
		t.Fatal("unknown uid seen")
	}
	// A corrupt file is an error, not an empty ledger (which would hide evidence).
	os.WriteFile(l2.path("bad"), []byte("{"), 0o600)
	if _, err := l2.Load("bad"); err == nil {
		t.Fatal("corrupt ledger accepted")
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "ledger"))
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".json" {
			t.Fatalf("temp file left behind: %s", e.Name())
		}
	}
}

func TestRetryQueue(t *testing.T) {
	dir := t.TempDir()
	q, err := OpenRetryQueue(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(10000, 0)
	e := q.Fail("alice", errors.New("boom"), now)
	if e.Attempts != 1 || e.NextTry != now.Add(5*time.Second) {
		t.Fatalf("first failure: %+v", e)
	}
	q.Fail("alice", nil, now)
	e = q.Fail("alice", nil, now)
	if e.NextTry != now.Add(20*time.Second) || e.LastError != "boom" {
		t.Fatalf("third failure: %+v", e)
	}
	for range 20 {
		e = q.Fail("alice", nil, now)
	}
	if e.NextTry != now.Add(10*time.Minute) {
		t.Fatalf("backoff not capped: %v", e.NextTry.Sub(now))
	}
	q.Defer("bob", now)
	if !q.Waiting("alice", now) || q.Waiting("bob", now) {
		t.Fatal("waiting")
	}
	if due := q.Due(now); len(due) != 1 || due[0] != "bob" {
		t.Fatalf("due %v", due)
	}
	if err := q.Save(); err != nil {
		t.Fatal(err)
	}
	q2, err := OpenRetryQueue(dir)
	if err != nil {
		t.Fatal(err)
	}
	if q2.Len() != 2 || q2.Entry("alice").Attempts != 23 {
		t.Fatalf("after reopen: %d %+v", q2.Len(), q2.Entry("alice"))
	}
	q2.Succeed("alice")
	if q2.Entry("alice") != nil {
		t.Fatal("succeed did not remove")
	}
}

// fo is a master folder of the planner's tests (plan's fo).
func fo(uid, name string, modseq uint64) plan.Folder {
	return plan.Folder{UniqueID: uid, Name: name, UIDValidity: 100, LastUID: uint32(modseq), HighestModSeq: modseq, Partition: "default", ACL: "alice\tlrswipkxtecdan\t"}
}
