package replication

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/executor"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/state"
	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
)

// Rolling consumes a sync-log channel the way `sync_client -r` does, with per-user
// batches run on a pool of workers, failing users parked in the durable retry queue
// with backoff, and malformed lines recorded and skipped.
//
// Consumption never waits for replication: each pass takes the log, merges its work
// into the durable pending queue (saved before log-run is removed) and hands ready
// batches to free workers. A slow user holds one worker, not the log: the other users'
// mail keeps flowing, and entries for a user in flight wait in the queue until it is
// done.
type Rolling struct {
	// Log is where the sync-log entries come from: the channel directory
	// (*synclog.Dir) or the master's agent.
	Log    synclog.Source
	Runner *Runner
	Retry  *state.RetryQueue
	// Pending holds the work taken from the log and not yet replicated (nil: kept in
	// memory only, then a crash loses what was taken; the replicator always sets it).
	Pending  *state.PendingQueue
	Interval time.Duration             // pause between passes when there is nothing to do
	Publish  func(ctx context.Context) // called after every pass (reports, metrics)
	Emit     func(rec any)
	Now      func() time.Time
	// OnTake, when set, is told the outcome of each take of Run before the pass is
	// reported: nil or synclog.ErrNoLog when the source answered, else its error and the
	// pause before the next take (the replicator names an agent that cannot be had).
	OnTake func(err error, retryIn time.Duration)

	pool    chan *executor.Executor // a token per worker: its idle executor (nil: connect on use)
	results chan flight
	busy    map[string]bool // users in flight
	running int
	// takeErrs counts the passes in a row whose take failed (the source unreachable,
	// refusing): the pause before the next grows with it, up to MaxTakeBackoff.
	takeErrs int
	// ran: users run in the current Cycle, not run again in it as due retries (a zero
	// backoff would otherwise loop).
	ran map[string]bool
}

// flight is one job handed to a worker, and its result once done.
type flight struct {
	id int // pending batch (-1: a due retry, held by the retry queue)
	JobResult
}

func (r *Rolling) init() {
	if r.pool != nil {
		return
	}
	workers := max(r.Runner.Workers, 1)
	r.pool = make(chan *executor.Executor, workers)
	for range workers {
		r.pool <- nil
	}
	r.results = make(chan flight, workers)
	r.busy = map[string]bool{}
	if r.Pending == nil {
		r.Pending, _ = state.OpenPendingQueue("")
	}
}

func (r *Rolling) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now().UTC()
}

type badLineRecord struct {
	Type  string `json:"type"`
	File  string `json:"file"`
	Line  int    `json:"line"`
	Text  string `json:"text"`
	Error string `json:"error"`
}

type skippedRecord struct {
	Type  string `json:"type"`
	Entry string `json:"entry"`
	Why   string `json:"why"`
}

// Cycle runs one pass to its end: the log (or a leftover log-run), the pending work and
// the users whose retry is due, waiting for every job it started (rolling --once, tests).
// It returns ErrNoLog when the log was empty (pending work and due retries still ran).
func (r *Rolling) Cycle(ctx context.Context) error {
	r.init()
	r.ran = map[string]bool{}
	defer func() { r.ran = nil }()
	start := r.now()
	logErr := r.take(ctx)
	var settled, failed int
	for {
		if err := r.dispatch(ctx); err != nil && (logErr == nil || errors.Is(logErr, synclog.ErrNoLog)) {
			logErr = err
		}
		if r.running == 0 {
			break
		}
		n, f := r.settle(ctx, true)
		settled, failed = settled+n, failed+f
	}
	r.closeIdle()
	r.report(ctx, start, settled, failed, logErr)
	return logErr
}

// Run passes until ctx ends, without waiting for jobs in flight: after each pass it
// waits for a job to end or for Interval, and goes again at once when the log had
// something. Errors of one pass (e.g. the replica is down) are recorded and retried;
// they never end the loop. Jobs cut by the end of ctx stay in the pending queue.
func (r *Rolling) Run(ctx context.Context) error {
	r.init()
	defer r.stop()
	for {
		start := r.now()
		settled, failed := r.settle(ctx, false)
		takeErr := r.takeWaiting(ctx)
		logErr := takeErr
		if err := r.dispatch(ctx); err != nil && (logErr == nil || errors.Is(logErr, synclog.ErrNoLog)) {
			logErr = err
		}
		pause := r.pause(logErr)
		if r.OnTake != nil && ctx.Err() == nil {
			r.OnTake(takeErr, pause)
		}
		r.report(ctx, start, settled, failed, logErr)
		if ctx.Err() != nil {
			return nil
		}
		if logErr == nil {
			continue // more may be waiting: go again at once
		}
		if r.running == 0 {
			r.closeIdle() // idle: do not keep sessions open for nothing
		}
		if pause == 0 {
			continue // the take itself waited (long-poll)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		case f := <-r.results:
			r.results <- f // settled at the top of the next pass
		}
	}
}

// LongPoller is a synclog.Source whose Take waits for entries itself (the master's
// agent): Rolling then does not pause between passes, and cuts the wait short when a
// job ends.
type LongPoller interface{ LongPolls() bool }

// MaxTakeBackoff bounds the pause after failed takes (capped exponential from
// Interval), so that an unreachable agent is not hammered and is retried soon enough.
const MaxTakeBackoff = 30 * time.Second

// pause is how long Run waits after a pass that found nothing or failed: Interval, 0
// for a long-polling source that found nothing (its take waited), and a backoff that
// doubles per take failure in a row.
func (r *Rolling) pause(logErr error) time.Duration {
	if r.takeErrs > 0 {
		d := max(r.Interval, 50*time.Millisecond)
		for i := 1; i < r.takeErrs && d < MaxTakeBackoff; i++ {
			d *= 2
		}
		return min(d, MaxTakeBackoff)
	}
	if lp, ok := r.Log.(LongPoller); ok && lp.LongPolls() && errors.Is(logErr, synclog.ErrNoLog) {
		return 0
	}
	return r.Interval
}

// takeWaiting is take for Run: a long-polling source's wait is cut short when a job
// ends (so its result is settled at once) and bounded by Interval while retries wait.
func (r *Rolling) takeWaiting(ctx context.Context) error {
	lp, ok := r.Log.(LongPoller)
	if !ok || !lp.LongPolls() {
		return r.take(ctx)
	}
	tctx, cancel := context.WithCancel(ctx)
	if r.Retry.Len() > 0 {
		tctx, cancel = context.WithTimeout(ctx, r.Interval)
	}
	defer cancel()
	watched := make(chan struct{})
	if r.running > 0 {
		go func() {
			defer close(watched)
			select {
			case f := <-r.results:
				r.results <- f // settled at the top of the next pass
				cancel()
			case <-tctx.Done():
			}
		}()
	} else {
		close(watched)
	}
	err := r.takeOnce(tctx)
	cut := tctx.Err() != nil && ctx.Err() == nil
	cancel()
	<-watched
	if cut && err != nil {
		err = synclog.ErrNoLog // the wait was cut short (a job ended, retries are due): nothing taken
	}
	return r.counted(err)
}

// take moves the log (or a leftover log-run) into the pending queue, saved before
// log-run is removed, with the date of its oldest entry. It returns ErrNoLog when there
// was nothing.
func (r *Rolling) take(ctx context.Context) error {
	return r.counted(r.takeOnce(ctx))
}

// counted counts take failures in a row (takeErrs), which lengthen the pause.
func (r *Rolling) counted(err error) error {
	if err != nil && !errors.Is(err, synclog.ErrNoLog) {
		r.takeErrs++
	} else {
		r.takeErrs = 0
	}
	return err
}

func (r *Rolling) takeOnce(ctx context.Context) error {
	backlog, err := r.Log.Backlog(ctx) // date a new log before it is taken
	if err != nil {
		return fmt.Errorf("sync-log backlog: %w", err)
	}
	since := backlog.Since
	return r.Log.Take(ctx, func(sc *synclog.Scanner, reprocessed bool) error {
		g, err := r.group(sc, reprocessed)
		if err != nil {
			return err
		}
		return r.Pending.Add(g.Batches, since)
	})
}

// dispatch hands ready work to free workers: pending batches whose users are not in
// flight, then due retries. Batches of users backing off go to the retry queue (which
// asks for a full sync), saved before they leave the pending queue.
func (r *Rolling) dispatch(ctx context.Context) error {
	now := r.now()
	var jobs []flight
	var deferred []int
	queued := map[string]bool{}
	free := len(r.pool)
	r.Pending.Ready(r.isBusy, func(pb state.PendingBatch) bool {
		users := pb.UserNames()
		if slices.ContainsFunc(users, func(u string) bool { return r.Retry.Waiting(u, now) }) {
			for _, u := range users {
				r.Retry.Defer(u, now)
			}
			deferred = append(deferred, pb.ID)
			return true
		}
		work := slices.Clone(pb.Users)
		for i := range work {
			// A user owed a retry gets the full sync the retry stands for.
			work[i].Full = work[i].Full || r.Retry.Entry(work[i].User) != nil
		}
		jobs = append(jobs, flight{id: pb.ID, JobResult: JobResult{Job: Job{Users: users, Work: work}}})
		for _, u := range users {
			queued[u] = true
		}
		return len(jobs) < free // no more than the free workers can take
	})
	if len(deferred) > 0 {
		if err := r.Retry.Save(); err != nil {
			return fmt.Errorf("save retry queue: %w", err)
		}
		var errs []error
		for _, id := range deferred {
			errs = append(errs, r.Pending.Done(id))
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	for _, u := range r.Retry.Due(now) {
		if !queued[u] && !r.busy[u] && !r.ran[u] {
			jobs = append(jobs, flight{id: -1, JobResult: JobResult{Job: Job{Users: []string{u}}}})
		}
	}
	for _, f := range jobs {
		select {
		case x := <-r.pool:
			r.start(ctx, f, x)
		default:
			return nil // every worker is busy: the rest waits for the next pass
		}
	}
	return nil
}

func (r *Rolling) isBusy(u string) bool { return r.busy[u] }

// start runs one job on a worker.
func (r *Rolling) start(ctx context.Context, f flight, x *executor.Executor) {
	for _, u := range f.Job.Users {
		r.busy[u] = true
		if r.ran != nil {
			r.ran[u] = true
		}
	}
	if f.id >= 0 {
		r.Pending.Start(f.id)
	}
	r.running++
	go func() {
		f.Result, f.Err = r.Runner.attempt(ctx, &x, f.Job)
		f.Attempts = 1
		r.pool <- x
		r.results <- f
	}()
}

// settle records the jobs that ended (with wait, at least one) and moves their users in
// or out of the retry queue, saved before their work leaves the pending queue. Jobs cut
// because ctx ended are not failures: their work stays pending. It returns the number
// of users settled and of those that failed.
func (r *Rolling) settle(ctx context.Context, wait bool) (users, failed int) {
	var done []flight
	if wait && r.running > 0 {
		done = append(done, <-r.results)
	}
	for more := true; more; {
		select {
		case f := <-r.results:
			done = append(done, f)
		default:
			more = false
		}
	}
	if len(done) == 0 {
		return 0, 0
	}
	now := r.now()
	var finished []int
	for _, f := range done {
		r.running--
		for _, u := range f.Job.Users {
			delete(r.busy, u)
		}
		if ctx.Err() != nil {
			continue // interrupted: redone from the pending queue next time
		}
		r.Runner.Record([]JobResult{f.JobResult})
		for _, u := range f.Job.Users {
			if f.Err != nil {
				r.Retry.Fail(u, f.Err, now)
			} else {
				r.Retry.Succeed(u)
			}
		}
		users += len(f.Job.Users)
		if f.Err != nil {
			failed += len(f.Job.Users)
		}
		if f.id >= 0 {
			finished = append(finished, f.id)
		}
	}
	if err := r.Retry.Save(); err != nil {
		// The work stays in the pending queue (in flight until a restart re-reads it).
		r.Runner.Rec.SetError(fmt.Errorf("save retry queue: %w", err), now)
		return users, failed
	}
	for _, id := range finished {
		if err := r.Pending.Done(id); err != nil {
			r.Runner.Rec.SetError(err, now)
		}
	}
	return users, failed
}

// report records the pass (a batch when jobs ended in it), the backlog and its age, and
// publishes. The backlog counts the entries of log and log-run plus one per user with
// work in the pending queue.
func (r *Rolling) report(ctx context.Context, start time.Time, settled, passFailed int, logErr error) {
	failed := 0
	for _, u := range r.Runner.Rec.Outcomes() {
		if u.Outcome == report.OutcomeFailed {
			failed++
		}
	}
	waiting, err := r.Log.Backlog(ctx)
	if err != nil && ctx.Err() == nil && (logErr == nil || errors.Is(logErr, synclog.ErrNoLog)) {
		logErr = fmt.Errorf("sync-log backlog: %w", err)
	}
	backlog := waiting.Entries + r.Pending.Len()
	since := waiting.Since
	if q := r.Pending.Since(); !q.IsZero() && (since.IsZero() || q.Before(since)) {
		since = q
	}
	r.Runner.Rec.SetPendingSince(since)
	if settled > 0 {
		r.Runner.Rec.SetBatch(report.Batch{Time: r.now(), Users: settled, Failed: failed, DurationMS: r.now().Sub(start).Milliseconds()}, &backlog)
	} else {
		// An idle pass is not a batch: leave LastBatch alone so that an idle replicator
		// publishes an unchanged report (no ConfigMap write, no status churn).
		r.Runner.Rec.SetBacklog(&backlog)
	}
	if logErr != nil && !errors.Is(logErr, synclog.ErrNoLog) {
		r.Runner.Rec.SetError(logErr, r.now())
	} else if passFailed == 0 {
		r.Runner.Rec.MarkSuccess(r.now())
	}
	if r.Publish != nil {
		r.Publish(ctx)
	}
}

// closeIdle closes the sessions of idle workers.
func (r *Rolling) closeIdle() {
	for range cap(r.pool) - r.running {
		x := <-r.pool
		if x != nil && x.Close != nil {
			x.Close()
		}
		r.pool <- nil
	}
}

// stop waits for the jobs in flight (ctx has ended, so they end soon) and closes every
// session; their work stays in the pending queue.
func (r *Rolling) stop() {
	for r.running > 0 {
		<-r.results
		r.running--
	}
	r.closeIdle()
}

// group streams the log into per-user work: memory grows with the distinct users and
// folders named, not with the number of lines. Malformed lines and entries the
// replicator does not act on are recorded as they are met.
func (r *Rolling) group(sc *synclog.Scanner, reprocessed bool) (synclog.Grouped, error) {
	gr := synclog.NewGrouper()
	for {
		e, bad, ok := sc.Next()
		switch {
		case !ok:
			return gr.Batches(), sc.Err()
		case bad != nil:
			if !reprocessed {
				r.Runner.Rec.AddBadLogLines(1)
			}
			r.emit(badLineRecord{Type: "bad-log-line", File: "log-run", Line: bad.Line, Text: bad.Text, Error: bad.Err})
		case !gr.Add(e):
			r.emit(skippedRecord{Type: "skipped-log-entry", Entry: e.String(), Why: "not a user's mailbox (shared folders and server annotations are not replicated)"})
		}
	}
}

func (r *Rolling) emit(v any) {
	if r.Emit != nil {
		r.Emit(v)
	}
}
