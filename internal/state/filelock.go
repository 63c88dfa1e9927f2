package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// ErrLockBusy means another writer held a lock for longer than the caller would wait.
var ErrLockBusy = errors.New("lock held by another writer")

// heldLocks are the lock files this process holds. flock(2) excludes two open file
// descriptions even within one process, but on NFS Linux turns flock into POSIX record
// locks, which a process never conflicts with itself on: the table keeps goroutines
// apart there too.
var heldLocks = struct {
	sync.Mutex
	paths map[string]bool
}{paths: map[string]bool{}}

// tryLockFile takes the exclusive lock of path (creating the file) without waiting. It
// returns a nil unlock when another goroutine or process holds it.
func tryLockFile(path string) (unlock func(), err error) {
	heldLocks.Lock()
	defer heldLocks.Unlock()
	if heldLocks.paths[path] {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	heldLocks.paths[path] = true
	return func() {
		heldLocks.Lock()
		defer heldLocks.Unlock()
		// Closing the descriptor releases the flock.
		f.Close()
		delete(heldLocks.paths, path)
	}, nil
}

// lockFile takes the exclusive lock of path, waiting up to wait (0: as long as ctx
// allows). The lock is released by the kernel if the process dies.
func lockFile(ctx context.Context, path string, wait time.Duration) (func(), error) {
	var deadline <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		deadline = t.C
	}
	pause := 2 * time.Millisecond
	for {
		unlock, err := tryLockFile(path)
		if err != nil || unlock != nil {
			return unlock, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %s: %w", ErrLockBusy, path, ctx.Err())
		case <-deadline:
			return nil, fmt.Errorf("%w: %s: still held after %s", ErrLockBusy, path, wait)
		case <-time.After(pause):
		}
		pause = min(2*pause, 200*time.Millisecond)
	}
}

// lockDir holds the lock files under the state directory.
const lockDir = "locks"
