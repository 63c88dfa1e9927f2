package state

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUserLocksOneWriterPerUser: a second writer of an overlapping set of users waits,
// and gives up with ErrLockBusy, until the first releases; disjoint users never wait.
func TestUserLocksOneWriterPerUser(t *testing.T) {
	dir := t.TempDir()
	a, err := OpenUserLocks(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := OpenUserLocks(dir, 50*time.Millisecond)
	ctx := context.Background()
	release, err := a.Lock(ctx, []string{"bob", "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lock(ctx, []string{"carol", "bob"}); !errors.Is(err, ErrLockBusy) || !strings.Contains(err.Error(), "user bob") {
		t.Fatalf("second writer of bob: %v, want ErrLockBusy naming bob", err)
	}
	// carol was taken before bob failed: it must have been given back.
	rc, err := b.Lock(ctx, []string{"carol"})
	if err != nil {
		t.Fatalf("carol after a failed set: %v", err)
	}
	rc()
	release()
	rb, err := b.Lock(ctx, []string{"carol", "bob"})
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	rb()
}

// TestUserLocksAcrossProcesses: a user's lock held by another process (flock(1), as
// another replicator pod on the same volume would) keeps this one out.
func TestUserLocksAcrossProcesses(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Fatal("flock(1) (util-linux) is needed")
	}
	dir := t.TempDir()
	l, _ := OpenUserLocks(dir, 100*time.Millisecond)
	// -o: sleep does not inherit the descriptor; flock(1) itself holds the lock.
	cmd := exec.Command("flock", "-o", filepath.Join(dir, lockDir, "user-bob.lock"), "sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	deadline := time.Now().Add(10 * time.Second) // hang guard while flock(1) starts
	for {
		release, err := l.Lock(context.Background(), []string{"bob"})
		if errors.Is(err, ErrLockBusy) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		release()
		if time.Now().After(deadline) {
			t.Fatal("flock(1) never took the lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	release, err := l.Lock(context.Background(), []string{"bob"})
	if err != nil {
		t.Fatalf("after the other process died: %v", err)
	}
	release()
}
