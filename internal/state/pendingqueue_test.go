package state

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
)

func readyOf(q *PendingQueue, busy func(string) bool) string {
	var out []PendingBatch
	q.Ready(busy, func(b PendingBatch) bool { out = append(out, b); return true })
	return fmt.Sprint(out)
}

// TestPendingQueue: work for a user in flight waits in a separate batch; joined users
// stay joined; the queue survives a reopen with in-flight work waiting again; a segment
// file goes once every batch holding its work is done.
func TestPendingQueue(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log-pending")
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	q, err := OpenPendingQueue(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Add([]synclog.Batch{{Users: []synclog.UserWork{{User: "a", Mailboxes: []string{"user.a"}}}}, {Users: []synclog.UserWork{{User: "b", Meta: true}}}}, t0); err != nil {
		t.Fatal(err)
	}
	free := func(string) bool { return false }
	if got := readyOf(q, free); got != "[{0 {[{a false [user.a] false}]}} {1 {[{b false [] true}]}}]" {
		t.Fatalf("ready: %s", got)
	}
	q.Start(0) // a in flight
	busy := func(u string) bool { return u == "a" }
	if err := q.Add([]synclog.Batch{{Users: []synclog.UserWork{{User: "a", Mailboxes: []string{"user.a.X"}}, {User: "c", Full: true}}}}, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := readyOf(q, busy); got != "[{1 {[{b false [] true}]}}]" {
		t.Fatalf("with a in flight, ready: %s", got)
	}
	segments := func() int {
		ents, _ := os.ReadDir(dir)
		return len(ents)
	}
	if n := segments(); n != 2 {
		t.Fatalf("%d segment files, want 2", n)
	}
	// Reopened while a was in flight: a's work is waiting again, merged with the work
	// that arrived meanwhile.
	again, err := OpenPendingQueue(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := readyOf(again, free); got != "[{1 {[{b false [] true}]}} {2 {[{a false [user.a user.a.X] false} {c true [] false}]}}]" {
		t.Fatalf("reopened: %s", got)
	}
	if again.Len() != 3 {
		t.Fatalf("len %d", again.Len())
	}
	if err := q.Done(0); err != nil {
		t.Fatal(err)
	}
	if got := readyOf(q, free); got != "[{1 {[{b false [] true}]}} {2 {[{a false [user.a.X] false} {c true [] false}]}}]" {
		t.Fatalf("after a's first batch: %s", got)
	}
	if n := segments(); n != 2 {
		t.Fatalf("segment 0 still holds b's work, yet %d segment files", n)
	}
	if !q.Since().Equal(t0) || !again.Since().Equal(t0) {
		t.Fatalf("oldest pending entry: %v (reopened %v), want %v", q.Since(), again.Since(), t0)
	}
	if err := q.Done(1); err != nil {
		t.Fatal(err)
	}
	if n := segments(); n != 1 {
		t.Fatalf("%d segment files after the first segment's work was done, want 1", n)
	}
	if !q.Since().Equal(t0.Add(time.Minute)) {
		t.Fatalf("oldest pending entry after the first segment: %v", q.Since())
	}
	if err := q.Done(2); err != nil {
		t.Fatal(err)
	}
	if n := segments(); n != 0 || q.Len() != 0 || !q.Since().IsZero() {
		t.Fatalf("%d segment files, %d users left after everything was done", n, q.Len())
	}
}
