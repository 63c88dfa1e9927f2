package state

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
	"strconv"
	"strings"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/atomicfile"
	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
)

// PendingQueue is the sync-log work taken from log-runs and not yet replicated. It is
// kept beside the log it came from (<channel>/log-pending/, see synclog.Dir.PendingPath), so
// it is exactly as durable as the log itself: each taken log-run becomes one segment
// file (its work grouped per user, written to a temporary file, fsynced and renamed)
// before the log-run is removed, and a segment file is removed once every batch holding
// its work is done. Saving never rewrites the whole backlog: each save writes only the
// new log-run's work. An entry leaves the queue only when the job that carried it
// succeeded, or its users were handed to the retry queue (saved first). A crash at any
// point leaves every entry in log-run, in a segment, or in retry.json.
//
// A batch being replicated is "in flight": new work for one of its users is kept in a
// separate waiting batch, run once the user is free. Memory grows with the distinct
// users and folders pending, not with the length of the log.
type PendingQueue struct {
	dir     string
	batches map[int]*pendingBatch
	order   []int             // batch ids in arrival order (stale ids are skipped, then dropped)
	waiting map[string]int    // user → id of the waiting (not in flight) batch holding it
	segRefs map[int]int       // segment → number of batches holding some of its work
	since   map[int]time.Time // segment → when its oldest entry was first seen
	nextID  int
	nextSeg int
}

type pendingBatch struct {
	users    map[string]*synclog.UserWork
	folders  map[string]map[string]bool
	segs     map[int]bool
	inFlight bool
}

// OpenPendingQueue loads the queue kept in dir (empty when absent; dir "" keeps it in
// memory only). Batches that were in flight when the process stopped are waiting again.
func OpenPendingQueue(dir string) (*PendingQueue, error) {
	q := &PendingQueue{dir: dir, batches: map[int]*pendingBatch{}, waiting: map[string]int{}, segRefs: map[int]int{}, since: map[int]time.Time{}}
	if dir == "" {
		return q, nil
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return q, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read pending queue: %w", err)
	}
	for _, e := range ents {
		seg, ok := segmentNumber(e.Name())
		if !ok {
			continue // a temporary file of a save that did not finish
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read pending queue: %w", err)
		}
		var sg segment
		if err := json.Unmarshal(b, &sg); err != nil {
			return nil, fmt.Errorf("pending queue segment %s is corrupt: %w", path, err)
		}
		q.add(seg, sg.Batches, sg.Since)
		q.nextSeg = max(q.nextSeg, seg+1)
	}
	return q, nil
}

// segment is the content of one segment file.
type segment struct {
	Since   time.Time       `json:"since,omitzero"` // when its oldest entry was first seen
	Batches []synclog.Batch `json:"batches"`
}

func segmentName(seg int) string { return fmt.Sprintf("%012d.json", seg) }

func segmentNumber(name string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSuffix(name, ".json"))
	return n, err == nil && strings.HasSuffix(name, ".json") && n >= 0
}

// Add saves the batches of one taken log-run as a new segment, with the date of its
// oldest entry (zero: unknown), then merges them into the waiting work. When it returns
// nil the work is durable and the log-run may go.
func (q *PendingQueue) Add(batches []synclog.Batch, since time.Time) error {
	if len(batches) == 0 {
		return nil
	}
	seg := q.nextSeg
	if q.dir != "" {
		if err := os.MkdirAll(q.dir, 0o700); err != nil {
			return fmt.Errorf("pending queue: %w", err)
		}
		b, err := json.Marshal(segment{Since: since, Batches: batches})
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(filepath.Join(q.dir, segmentName(seg)), b, 0o600); err != nil {
			return fmt.Errorf("save pending queue: %w", err)
		}
	}
	q.nextSeg++
	q.add(seg, batches, since)
	return nil
}

// add merges batches of segment seg into the waiting work: a batch sharing a user with
// a waiting batch is merged with it (a user is never split, joined users stay joined).
func (q *PendingQueue) add(seg int, batches []synclog.Batch, since time.Time) {
	if !since.IsZero() {
		q.since[seg] = since
	}
	for _, b := range batches {
		id := q.nextID
		q.nextID++
		nb := &pendingBatch{users: map[string]*synclog.UserWork{}, folders: map[string]map[string]bool{}, segs: map[int]bool{seg: true}}
		q.segRefs[seg]++
		q.batches[id] = nb
		q.order = append(q.order, id)
		for _, w := range b.Users {
			if old, ok := q.waiting[w.User]; ok && old != id {
				q.mergeInto(id, old)
			}
			nb.add(w)
			q.waiting[w.User] = id
		}
	}
}

// mergeInto moves waiting batch from into batch to.
func (q *PendingQueue) mergeInto(to, from int) {
	fb, tb := q.batches[from], q.batches[to]
	delete(q.batches, from)
	for seg := range fb.segs {
		if tb.segs[seg] {
			q.segRefs[seg]-- // two holders of the segment's work become one
		}
		tb.segs[seg] = true
	}
	for u, w := range fb.users {
		ww := *w
		ww.Mailboxes = slices.Collect(maps.Keys(fb.folders[u]))
		tb.add(ww)
		q.waiting[u] = to
	}
}

func (b *pendingBatch) add(w synclog.UserWork) {
	cur := b.users[w.User]
	if cur == nil {
		cur = &synclog.UserWork{User: w.User}
		b.users[w.User] = cur
		b.folders[w.User] = map[string]bool{}
	}
	cur.Full = cur.Full || w.Full
	cur.Meta = cur.Meta || w.Meta
	for _, m := range w.Mailboxes {
		b.folders[w.User][m] = true
	}
}

func (b *pendingBatch) batch() synclog.Batch {
	var out synclog.Batch
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
	synclog.Batch
}

// Ready calls take with the waiting batches none of whose users is busy, oldest first,
// until take returns false.
func (q *PendingQueue) Ready(busy func(user string) bool, take func(PendingBatch) bool) {
	live := q.order[:0]
	stopped := false
	for _, id := range q.order {
		b := q.batches[id]
		if b == nil {
			continue // done or merged away
		}
		live = append(live, id)
		if stopped || b.inFlight {
			continue
		}
		free := true
		for u := range b.users {
			free = free && !busy(u)
		}
		if free && !take(PendingBatch{ID: id, Batch: b.batch()}) {
			stopped = true
		}
	}
	q.order = live
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

// Done removes a batch (replicated, or its users handed to the retry queue, saved) and
// the segment files no other batch holds work of.
func (q *PendingQueue) Done(id int) error {
	b := q.batches[id]
	if b == nil {
		return nil
	}
	delete(q.batches, id)
	for u := range b.users {
		if q.waiting[u] == id {
			delete(q.waiting, u)
		}
	}
	var errs []error
	for _, seg := range slices.Sorted(maps.Keys(b.segs)) {
		if q.segRefs[seg]--; q.segRefs[seg] > 0 {
			continue
		}
		delete(q.segRefs, seg)
		delete(q.since, seg)
		if q.dir == "" {
			continue
		}
		if err := os.Remove(filepath.Join(q.dir, segmentName(seg))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("pending queue: %w", err))
		}
	}
	return errors.Join(errs...)
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

// Since is when the oldest entry still pending was first seen (zero: none, or unknown).
func (q *PendingQueue) Since() time.Time {
	var oldest time.Time
	for _, t := range q.since {
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	return oldest
}

// Users lists the users with pending work, sorted (reports and tests).
func (q *PendingQueue) Users() []string {
	set := map[string]bool{}
	for _, b := range q.batches {
		for u := range b.users {
			set[u] = true
		}
	}
	out := slices.Collect(maps.Keys(set))
	sort.Strings(out)
	return out
}
