package replication

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

// writerLine is the JSON line written when an executor takes or releases users' writer
// locks: the record that no two writers held a user at once.
type writerLine struct {
	Type   string   `json:"type"` // "writer-lock"
	Event  string   `json:"event"`
	Users  []string `json:"users"`
	At     string   `json:"at"`
	WaitMS int64    `json:"waitMs,omitempty"`
}

// holdWriters makes sure the executor holds the writer locks of users before it reads
// them to plan. When the set grew (a cross-user rename joined a user) it releases what
// it holds and takes the whole set again in order; the caller reads both ends again
// after a join anyway.
func (x *Executor) holdWriters(ctx context.Context, users []string) error {
	if x.Writers == nil {
		return nil
	}
	if !slices.ContainsFunc(users, func(u string) bool { return !slices.Contains(x.writersHeld, u) }) {
		return nil
	}
	x.releaseWriters()
	start := time.Now()
	release, err := x.Writers.Lock(ctx, users)
	if err != nil {
		return err
	}
	x.writersHeld, x.writersRelease = slices.Clone(users), release
	x.emit(writerLine{Type: "writer-lock", Event: "held", Users: x.writersHeld, At: time.Now().UTC().Format(time.RFC3339Nano), WaitMS: time.Since(start).Milliseconds()})
	return nil
}

// releaseWriters releases the writer locks the executor holds, if any.
func (x *Executor) releaseWriters() {
	if x.writersRelease == nil {
		return
	}
	x.emit(writerLine{Type: "writer-lock", Event: "released", Users: x.writersHeld, At: time.Now().UTC().Format(time.RFC3339Nano)})
	x.writersRelease()
	x.writersHeld, x.writersRelease = nil, nil
}
