package replication

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// PendingQueue is the sync-log work taken from log-runs and not yet replicated, saved
// atomically beside the log it came from (<channel>/log-pending.json, see
// LogDir.PendingPath), so it is exactly as durable as the log itself. A log-run is removed only once its work is
// merged in here and saved, so the log can be consumed while users are still being
// replicated; an entry leaves the queue only when the job that carried it succeeded (or
// its users were handed to the retry queue, saved first). A crash at any point leaves
// every entry in log-run, in pending.json, or in retry.json.
//
// A batch being replicated is "in flight": new work for one of its users is kept in a
// separate waiting batch, run once the user is free. Memory and the file grow with the
// distinct users and folders pending, not with the length of the log.
type PendingQueue struct {
	path    string
	batches map[int]*pendingBatch
	waiting map[string]int // user → id of the waiting (not in flight) batch holding it
	nextID  int
	dirty   bool
}

type pendingBatch struct {
	users    map[string]*UserWork
	folders  map[string]map[string]bool
	inFlight bool
}

// OpenPendingQueue loads the queue saved at path (empty when absent; path "" keeps it in
// memory only). Batches that were in flight when the process stopped are waiting again.
func OpenPendingQueue(path string) (*PendingQueue, error) {
	q := &PendingQueue{path: path, batches: map[int]*pendingBatch{}, waiting: map[string]int{}}
	if path == "" {
		return q, nil
	}
	b, err := os.ReadFile(q.path)
	if errors.Is(err, fs.ErrNotExist) {
		return q, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read pending queue: %w", err)
	}
	var list []Batch
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("pending queue %s is corrupt: %w", q.path, err)
	}
	q.Add(list)
	q.dirty = false
	return q, nil
}

// Add merges log batches into the waiting work: a batch sharing a user with a waiting
// batch is merged with it (a user is never split, joined users stay joined).
func (q *PendingQueue) Add(batches []Batch) {
	for _, b := range batches {
		id := q.nextID
		q.nextID++
		nb := &pendingBatch{users: map[string]*UserWork{}, folders: map[string]map[string]bool{}}
		q.batches[id] = nb
		for _, w := range b.Users {
			if old, ok := q.waiting[w.User]; ok && old != id {
				q.mergeInto(id, old)
			}
			nb.add(w)
			q.waiting[w.User] = id
		}
		q.dirty = true
	}
}

// mergeInto moves waiting batch from into batch to.
func (q *PendingQueue) mergeInto(to, from int) {
	fb := q.batches[from]
	delete(q.batches, from)
	for u, w := range fb.users {
		ww := *w
		ww.Mailboxes = slices.Collect(maps.Keys(fb.folders[u]))
		q.batches[to].add(ww)
		q.waiting[u] = to
	}
}

func (b *pendingBatch) add(w UserWork) {
	cur := b.users[w.User]
	if cur == nil {
		cur = &UserWork{User: w.User}
		b.users[w.User] = cur
		b.folders[w.User] = map[string]bool{}
	}
	cur.Full = cur.Full || w.Full
	cur.Meta = cur.Meta || w.Meta
	for _, m := range w.Mailboxes {
		b.folders[w.User][m] = true
	}
}

func (b *pendingBatch) batch() Batch {
	var out Batch
	for _, u := range slices.Sorted(maps.Keys(b.users)) {
		w := *b.users[u]
		w.Mailboxes = slices.Sorted(maps.Keys(b.folders[u]))
		out.Users = append(out.Users, w)
	}
	return out
}

// PendingBatch is a waiting batch handed out by Ready.
type PendingBatch struct {
	ID int
	Batch
}

// Ready lists the waiting batches none of whose users is busy, in a stable order.
func (q *PendingQueue) Ready(busy func(user string) bool) []PendingBatch {
	var out []PendingBatch
	for _, id := range slices.Sorted(maps.Keys(q.batches)) {
		b := q.batches[id]
		if b.inFlight {
			continue
		}
		free := true
		for u := range b.users {
			free = free && !busy(u)
		}
		if free {
			out = append(out, PendingBatch{ID: id, Batch: b.batch()})
		}
	}
	return out
}

// Start marks a waiting batch in flight: work for its users that arrives from now on is
// kept in a new waiting batch.
func (q *PendingQueue) Start(id int) {
	b := q.batches[id]
	if b == nil || b.inFlight {
		return
	}
	b.inFlight = true
	for u := range b.users {
		if q.waiting[u] == id {
			delete(q.waiting, u)
		}
	}
}

// Done removes a batch: replicated, or its users handed to the retry queue (saved).
func (q *PendingQueue) Done(id int) {
	b := q.batches[id]
	if b == nil {
		return
	}
	delete(q.batches, id)
	for u := range b.users {
		if q.waiting[u] == id {
			delete(q.waiting, u)
		}
	}
	q.dirty = true
}

// Len is the number of users with pending work (a user in flight with more work
// waiting counts twice).
func (q *PendingQueue) Len() int {
	n := 0
	for _, b := range q.batches {
		n += len(b.users)
	}
	return n
}

// Save writes the queue atomically when it changed since the last save; an empty queue
// is no file.
func (q *PendingQueue) Save() error {
	if !q.dirty || q.path == "" {
		q.dirty = false
		return nil
	}
	if len(q.batches) == 0 {
		if err := os.Remove(q.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove empty pending queue: %w", err)
		}
		q.dirty = false
		return syncDir(filepath.Dir(q.path))
	}
	ids := slices.Collect(maps.Keys(q.batches))
	sort.Ints(ids)
	list := make([]Batch, 0, len(ids))
	for _, id := range ids {
		list = append(list, q.batches[id].batch())
	}
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(q.path, b, 0o600); err != nil {
		return fmt.Errorf("save pending queue: %w", err)
	}
	q.dirty = false
	return nil
}
