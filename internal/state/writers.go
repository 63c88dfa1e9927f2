package state

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"
)

// UserLocks keep one writer per user on the replica: every replicator that shares a
// state directory (the pair's rolling or audit replicator, its resyncs, the workers of
// each) takes a user's lock before it reads the user to plan and holds it until the
// batch's writes are done. The locks are flock(2) locks on one file per user under
// <state-dir>/locks, so they hold across processes and pods that mount the same
// volume, and the kernel drops them when a holder dies.
type UserLocks struct {
	dir string
	// Wait is how long Lock waits for another writer before it gives up with
	// ErrLockBusy (0: as long as the context allows).
	Wait time.Duration
}

// OpenUserLocks opens (creating) the lock directory under stateDir.
func OpenUserLocks(stateDir string, wait time.Duration) (*UserLocks, error) {
	dir := filepath.Join(stateDir, lockDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create lock dir: %w", err)
	}
	return &UserLocks{dir: dir, Wait: wait}, nil
}

// Lock takes the writer locks of users in sorted order (so two writers that want
// overlapping sets never wait on each other in a cycle) and returns the function that
// releases them. On error it holds none.
func (l *UserLocks) Lock(ctx context.Context, users []string) (release func(), err error) {
	users = slices.Clone(users)
	sort.Strings(users)
	users = slices.Compact(users)
	var held []func()
	release = func() {
		for i := len(held) - 1; i >= 0; i-- {
			held[i]()
		}
	}
	for _, u := range users {
		unlock, err := lockFile(ctx, filepath.Join(l.dir, "user-"+url.PathEscape(u)+".lock"), l.Wait)
		if err != nil {
			release()
			return nil, fmt.Errorf("user %s: %w", u, err)
		}
		held = append(held, unlock)
	}
	return release, nil
}
