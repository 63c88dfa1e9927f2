package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/atomicfile"
)

// RetryQueue holds users that must be (re)synced in full: failed users with their
// backoff, and users whose log entries arrived while they were backing off. It is
// saved atomically in <state-dir>/retry.json before their work leaves the pending queue
// (see PendingQueue), so no entry is lost, and a failing user is retried with backoff
// instead of in a hot loop.
type RetryQueue struct {
	mu      sync.Mutex
	path    string
	Base    time.Duration // first backoff
	Max     time.Duration // backoff cap
	entries map[string]*RetryEntry
}

// RetryEntry is one queued user.
type RetryEntry struct {
	User      string    `json:"user"`
	Attempts  int       `json:"attempts"` // consecutive failures
	NextTry   time.Time `json:"nextTry"`
	LastError string    `json:"lastError,omitempty"`
}

// OpenRetryQueue loads the queue from stateDir (empty when absent).
func OpenRetryQueue(stateDir string) (*RetryQueue, error) {
	q := &RetryQueue{path: filepath.Join(stateDir, "retry.json"), Base: 5 * time.Second, Max: 10 * time.Minute, entries: map[string]*RetryEntry{}}
	b, err := os.ReadFile(q.path)
	if errors.Is(err, fs.ErrNotExist) {
		return q, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read retry queue: %w", err)
	}
	var list []*RetryEntry
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("retry queue %s is corrupt: %w", q.path, err)
	}
	for _, e := range list {
		q.entries[e.User] = e
	}
	return q, nil
}

// Backoff is the delay after n consecutive failures: Base·2^(n-1), capped at Max.
func (q *RetryQueue) Backoff(n int) time.Duration {
	d := q.Base
	for i := 1; i < n && d < q.Max; i++ {
		d *= 2
	}
	return min(d, q.Max)
}

// Fail records a failure of user at now and schedules the next try.
func (q *RetryQueue) Fail(user string, err error, now time.Time) *RetryEntry {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.entries[user]
	if e == nil {
		e = &RetryEntry{User: user}
		q.entries[user] = e
	}
	e.Attempts++
	e.NextTry = now.Add(q.Backoff(e.Attempts))
	if err != nil {
		e.LastError = err.Error()
	}
	c := *e
	return &c
}

// Defer queues user for a full sync at its scheduled time without counting a failure
// (new log entries for a user that is backing off).
func (q *RetryQueue) Defer(user string, now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.entries[user] == nil {
		q.entries[user] = &RetryEntry{User: user, NextTry: now}
	}
}

// Succeed removes user from the queue.
func (q *RetryQueue) Succeed(user string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.entries, user)
}

// Waiting reports whether user is queued with a next try after now (backing off).
func (q *RetryQueue) Waiting(user string, now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.entries[user]
	return e != nil && e.NextTry.After(now)
}

// Due returns the queued users whose next try is at or before now.
func (q *RetryQueue) Due(now time.Time) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []string
	for u, e := range q.entries {
		if !e.NextTry.After(now) {
			out = append(out, u)
		}
	}
	sort.Strings(out)
	return out
}

// Entry returns a copy of user's entry, or nil.
func (q *RetryQueue) Entry(user string) *RetryEntry {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e := q.entries[user]; e != nil {
		c := *e
		return &c
	}
	return nil
}

// Len is the number of queued users.
func (q *RetryQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.entries)
}

// Save writes the queue atomically.
func (q *RetryQueue) Save() error {
	q.mu.Lock()
	list := make([]*RetryEntry, 0, len(q.entries))
	for _, e := range q.entries {
		list = append(list, e)
	}
	q.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].User < list[j].User })
	b, err := json.MarshalIndent(list, "", " ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(q.path, b, 0o600)
}
