package synclog

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPendingTracker: backlog counts entries (lines), not bytes, and the oldest pending
// entry keeps the date its log was first seen through the rename to log-run.
func TestPendingTracker(t *testing.T) {
	dir := t.TempDir()
	l := NewDir(dir)
	var tr PendingTracker
	if p := tr.Observe(l); p.Entries != 0 || !p.Since.IsZero() {
		t.Fatalf("empty channel: %+v", p)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	write := func(name, data string, mtime time.Time) {
		t.Helper()
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(data); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if err := os.Chtimes(filepath.Join(dir, name), mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	write("log", "MAILBOX user.alice\nMAILBOX user.bob.Sent\n", t0)
	p := tr.Observe(l)
	if p.Entries != 2 || !p.Since.Equal(t0) {
		t.Fatalf("first look: %+v, want 2 entries since %v", p, t0)
	}
	// more appends move the mtime, not the date of the oldest entry
	write("log", "SIEVE alice\n", t0.Add(time.Minute))
	if p := tr.Observe(l); p.Entries != 3 || !p.Since.Equal(t0) {
		t.Fatalf("after an append: %+v", p)
	}
	// the replicator takes the log: log-run keeps its date; a new log has its own
	if err := os.Rename(filepath.Join(dir, "log"), filepath.Join(dir, "log-run")); err != nil {
		t.Fatal(err)
	}
	write("log", "MAILBOX user.carol", t0.Add(2*time.Minute)) // no final newline: still an entry
	if p := tr.Observe(l); p.Entries != 4 || !p.Since.Equal(t0) {
		t.Fatalf("after the rename: %+v", p)
	}
	// log-run done: the new log is the oldest
	if err := os.Remove(filepath.Join(dir, "log-run")); err != nil {
		t.Fatal(err)
	}
	if p := tr.Observe(l); p.Entries != 1 || !p.Since.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("after log-run: %+v", p)
	}
	if err := os.Remove(filepath.Join(dir, "log")); err != nil {
		t.Fatal(err)
	}
	if p := tr.Observe(l); p.Entries != 0 || !p.Since.IsZero() {
		t.Fatalf("all consumed: %+v", p)
	}
	// a leftover log-run from another process is dated by its mtime
	write("log-run", "MAILBOX user.dave\n", t0.Add(3*time.Minute))
	var fresh PendingTracker
	if p := fresh.Observe(l); p.Entries != 1 || !p.Since.Equal(t0.Add(3*time.Minute)) {
		t.Fatalf("leftover log-run: %+v", p)
	}
}
