// Package progress counts how far a pass over users has come (users done of the users
// to do, failures, message bodies and bytes uploaded) and says so: a JSON line at a
// fixed interval and once at the end, and a one-line bar for a person at a terminal.
// It knows nothing of csync or Kubernetes; the replicator feeds it, and the kubectl
// plugin draws the same bar from a resource's status.
package progress

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// Tracker holds the figures of one pass. Safe for concurrent use: workers count bodies
// and bytes as they stream, the runner counts users as they end.
type Tracker struct {
	started time.Time
	now     func() time.Time

	total, done, failed atomic.Int64
	bodies, bytes       atomic.Int64
	// resumed: users done before this process (a resumed pass), not counted in the pace.
	resumed atomic.Int64
}

// NewTracker starts a pass over total users at now() (nil: the wall clock).
func NewTracker(total int, now func() time.Time) *Tracker {
	if now == nil {
		now = func() time.Time { return time.Now().UTC() }
	}
	t := &Tracker{started: now(), now: now}
	t.total.Store(int64(total))
	return t
}

// Started is when the pass began.
func (t *Tracker) Started() time.Time { return t.started }

// AddTotal adds users to do (e.g. users a resumed pass had done before are counted in
// both total and done).
func (t *Tracker) AddTotal(n int) { t.total.Add(int64(n)) }

// Resumed counts users an earlier run of the pass did: done, but not part of this
// run's pace (the time left is estimated from this run's users only).
func (t *Tracker) Resumed(n int) {
	t.done.Add(int64(n))
	t.resumed.Add(int64(n))
}

// Done counts users that ended (after their last attempt), failed of them failed.
func (t *Tracker) Done(users, failed int) {
	t.done.Add(int64(users))
	t.failed.Add(int64(failed))
}

// Moved counts message bodies and bytes uploaded to the replica.
func (t *Tracker) Moved(bodies int, bytes int64) {
	if bodies != 0 {
		t.bodies.Add(int64(bodies))
	}
	if bytes != 0 {
		t.bytes.Add(bytes)
	}
}

// Snapshot returns the figures now, with the time elapsed and the time left estimated
// from the users done so far.
func (t *Tracker) Snapshot() report.Progress {
	p := report.Progress{
		Started: t.started,
		Done:    int(t.done.Load()), Total: int(t.total.Load()), Failed: int(t.failed.Load()),
		Bodies: t.bodies.Load(), Bytes: t.bytes.Load(),
		ElapsedMS: t.now().Sub(t.started).Milliseconds(),
	}
	p.ETAMS = ETA(p.Done, p.Total, int(t.resumed.Load()), p.ElapsedMS)
	return p
}

// ETA estimates the milliseconds left from this run's pace (users done minus those
// resumed, in elapsedMS): -1 while this run has done none (unknown), 0 once every user
// is done.
func ETA(done, total, resumed int, elapsedMS int64) int64 {
	ran := done - resumed
	switch {
	case done >= total:
		return 0
	case ran <= 0:
		return -1
	}
	return elapsedMS * int64(total-done) / int64(ran)
}

// Line is the "progress" JSON line the replicator prints on stdout.
type Line struct {
	Type      string `json:"type"` // "progress"
	Done      int    `json:"done"`
	Total     int    `json:"total"`
	Failed    int    `json:"failed"`
	Bodies    int64  `json:"bodies"`
	Bytes     int64  `json:"bytes"`
	ElapsedMS int64  `json:"elapsedMs"`
	ETAMS     int64  `json:"etaMs"`
}

// LineOf is the JSON line of a snapshot.
func LineOf(p report.Progress) Line {
	return Line{Type: "progress", Done: p.Done, Total: p.Total, Failed: p.Failed, Bodies: p.Bodies, Bytes: p.Bytes, ElapsedMS: p.ElapsedMS, ETAMS: p.ETAMS}
}

// Reporter hands a snapshot to its callback every interval while the pass runs, and a
// last one (Finished set) when stopped.
type Reporter struct {
	t    *Tracker
	each func(report.Progress)
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
	last report.Progress
}

// Start calls each with a snapshot of t every interval until Stop.
func Start(t *Tracker, every time.Duration, each func(report.Progress)) *Reporter {
	r := &Reporter{t: t, each: each, stop: make(chan struct{})}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-tick.C:
				r.each(t.Snapshot())
			}
		}
	}()
	return r
}

// Stop ends the ticks and hands the final snapshot (Finished set) to the callback once;
// it returns that snapshot. Calling it again returns the same snapshot.
func (r *Reporter) Stop() report.Progress {
	r.once.Do(func() {
		close(r.stop)
		r.wg.Wait()
		r.last = r.t.Snapshot()
		r.last.Finished = true
		r.each(r.last)
	})
	return r.last
}
