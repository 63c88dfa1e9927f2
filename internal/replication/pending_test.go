package replication

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestPendingQueue: work for a user in flight waits in a separate batch; joined users
// stay joined; the queue survives a reopen with in-flight work waiting again.
func TestPendingQueue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log-pending.json")
	q, err := OpenPendingQueue(path)
	if err != nil {
		t.Fatal(err)
	}
	q.Add([]Batch{{Users: []UserWork{{User: "a", Mailboxes: []string{"user.a"}}}}, {Users: []UserWork{{User: "b", Meta: true}}}})
	free := func(string) bool { return false }
	ready := q.Ready(free)
	if len(ready) != 2 {
		t.Fatalf("ready %+v", ready)
	}
	q.Start(ready[0].ID) // a in flight
	busy := func(u string) bool { return u == "a" }
	q.Add([]Batch{{Users: []UserWork{{User: "a", Mailboxes: []string{"user.a.X"}}, {User: "c", Full: true}}}})
	if err := q.Save(); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(q.Ready(busy)); got != "[{1 {[{b false [] true}]}}]" {
		t.Fatalf("with a in flight, ready: %s", got)
	}
	q.Done(ready[0].ID)
	if got := fmt.Sprint(q.Ready(free)); got != "[{1 {[{b false [] true}]}} {2 {[{a false [user.a.X] false} {c true [] false}]}}]" {
		t.Fatalf("after a's first batch: %s", got)
	}
	// Reopened before that Done was saved: a's in-flight work is waiting again, merged
	// with the work that arrived meanwhile.
	again, err := OpenPendingQueue(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(again.Ready(free)); got != "[{1 {[{b false [] true}]}} {2 {[{a false [user.a user.a.X] false} {c true [] false}]}}]" {
		t.Fatalf("reopened: %s", got)
	}
	if again.Len() != 3 {
		t.Fatalf("len %d", again.Len())
	}
	// Emptied, the queue is no file (the backlog of an idle channel is 0).
	for _, b := range again.Ready(free) {
		again.Done(b.ID)
	}
	if err := again.Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("empty queue left a file: %v", err)
	}
}
