package replication

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/executor"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
)

// Connector opens an executor with fresh connections to both servers.
type Connector func(ctx context.Context) (*executor.Executor, error)

// Replica-only policies: what a kept replica-only folder (no evidence) means for the
// user's outcome. The folder itself is always kept and reported.
const (
	PolicyKeep = "keep" // kept and reported; the user still counts as synced
	PolicyFail = "fail" // kept and reported; the user counts as differing (exit 1)
)

// Runner runs batches on a pool of workers, each with its own connections. A failing
// batch never holds up the others: it is retried after a backoff (one-shot modes) or
// handed to the durable retry queue (rolling), while the other workers carry on.
type Runner struct {
	Connect Connector
	Workers int
	// BatchTimeout cuts an attempt that makes no progress (no message body bytes moved,
	// no action completed) for this long; 0 = never. A big folder on a slow link is not
	// cut as long as it moves, so it converges however long its upload takes.
	BatchTimeout time.Duration
	Attempts     int // attempts per batch within one Run (default 1)
	Backoff      func(attempt int) time.Duration
	Policy       string
	Rec          *Recorder
	Now          func() time.Time
	Emit         func(rec any)
}

// Job is one batch to run.
type Job struct {
	Users  []string
	Verify bool
	// Work, when set, is the sync-log work of the batch: mailbox-level when it can be.
	Work []synclog.UserWork
}

// JobResult is the outcome of a job after its last attempt.
type JobResult struct {
	Job      Job
	Result   *executor.BatchResult
	Err      error
	Attempts int
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now().UTC()
}

// Run runs the jobs and returns one result per job (in completion order).
func (r *Runner) Run(ctx context.Context, jobs []Job) []JobResult {
	var results []JobResult
	r.run(ctx, jobs, func(res JobResult) { results = append(results, res) })
	return results
}

// RunRecord runs the jobs and records each result as its job ends, so that memory is
// bounded by the workers, not by the number of jobs. It returns the users that failed.
func (r *Runner) RunRecord(ctx context.Context, jobs []Job) (failed []string) {
	r.run(ctx, jobs, func(res JobResult) { failed = append(failed, r.Record([]JobResult{res})...) })
	return failed
}

// RunEach runs the jobs and calls done once per job, as it ends (after its last
// attempt); calls to done are serialised. Nothing is kept once done returns.
func (r *Runner) RunEach(ctx context.Context, jobs []Job, done func(JobResult)) {
	r.run(ctx, jobs, done)
}

// run runs the jobs, calling done once per job after its last attempt; calls to done
// are serialised.
func (r *Runner) run(ctx context.Context, jobs []Job, done func(JobResult)) {
	workers := max(r.Workers, 1)
	attempts := max(r.Attempts, 1)
	type item struct {
		job     Job
		attempt int
	}
	queue := make(chan item, len(jobs))
	var pending sync.WaitGroup
	var mu sync.Mutex
	finish := func(res JobResult) {
		mu.Lock()
		done(res)
		mu.Unlock()
		pending.Done()
	}
	for _, j := range jobs {
		pending.Add(1)
		queue <- item{job: j, attempt: 1}
	}
	allDone := make(chan struct{})
	go func() { pending.Wait(); close(allDone) }()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var x *executor.Executor
			defer func() {
				if x != nil && x.Close != nil {
					x.Close()
				}
			}()
			for {
				var it item
				select {
				case <-allDone:
					return
				case it = <-queue:
				}
				res, err := r.attempt(ctx, &x, it.job)
				if err != nil && it.attempt < attempts && ctx.Err() == nil {
					// Retry later, off this worker: the other jobs go on meanwhile.
					delay := time.Second
					if r.Backoff != nil {
						delay = r.Backoff(it.attempt)
					}
					// Say why: a later success must not hide the failure.
					r.emit(retryLine{Type: "retry", Users: it.job.Users, Attempt: it.attempt, Error: err.Error(), DelayMS: delay.Milliseconds()})
					next := item{job: it.job, attempt: it.attempt + 1}
					time.AfterFunc(delay, func() { queue <- next })
					continue
				}
				finish(JobResult{Job: it.job, Result: res, Err: err, Attempts: it.attempt})
			}
		}()
	}
	wg.Wait()
}

// attempt runs one job on the worker's executor, connecting (again) when needed.
func (r *Runner) attempt(ctx context.Context, x **executor.Executor, j Job) (*executor.BatchResult, error) {
	tick := func() {}
	if r.BatchTimeout > 0 {
		var stop func()
		ctx, tick, stop = stallGuard(ctx, r.BatchTimeout)
		defer stop()
	}
	if *x == nil {
		e, err := r.Connect(ctx)
		if err != nil {
			return nil, fmt.Errorf("connect: %w", withCause(ctx, err))
		}
		e.Emit = r.Emit
		*x = e
	}
	(*x).Progress = tick
	var res *executor.BatchResult
	var err error
	if len(j.Work) > 0 && !j.Verify {
		res, err = (*x).SyncWork(ctx, j.Work)
	} else {
		res, err = (*x).Sync(ctx, j.Users, j.Verify)
	}
	(*x).Progress = nil
	if err != nil {
		err = withCause(ctx, err)
		// The session may be unusable (or mid-command): start the next job afresh.
		if (*x).Close != nil {
			(*x).Close()
		}
		*x = nil
		return res, err
	}
	if r.Policy == PolicyFail && res.Kept > 0 {
		for i := range res.Users {
			for _, d := range res.Decisions {
				if d.User == res.Users[i].User && (d.Action == report.ActionKeep || d.Action == report.ActionMoveAside) {
					res.Users[i].Outcome = report.OutcomeDiffers
				}
			}
		}
	}
	return res, nil
}

// errStalled is the cause of an attempt cut by its BatchTimeout.
var errStalled = errors.New("batch made no progress for --batch-timeout")

// stallGuard returns a context cancelled once tick has not been called for d.
func stallGuard(parent context.Context, d time.Duration) (ctx context.Context, tick, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	t := time.AfterFunc(d, func() { cancel(fmt.Errorf("%w (%s)", errStalled, d)) })
	return ctx, func() { t.Reset(d) }, func() { t.Stop(); cancel(nil) }
}

// withCause names why ctx ended (e.g. the stall guard) in an error it caused.
func withCause(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
		return fmt.Errorf("%w: %w", cause, err)
	}
	return err
}

// Record folds job results into the recorder (and emits one "user" line per user). It
// returns the users that failed.
func (r *Runner) Record(results []JobResult) (failed []string) {
	now := r.now()
	for _, jr := range results {
		r.Rec.notePartitionResult(jr)
		if jr.Err == nil && jr.Result != nil {
			for i := range jr.Result.Users {
				jr.Result.Users[i].Attempts = jr.Attempts
			}
			r.Rec.AddBatch(jr.Result, now)
			for _, u := range jr.Result.Users {
				r.emit(userLine{Type: "user", UserResult: u})
			}
			continue
		}
		if jr.Result != nil {
			// What the failed attempt found and decided still belongs in the report.
			r.Rec.AddBatch(jr.Result, now)
		}
		for _, u := range jr.Job.Users {
			ur := report.UserResult{User: u, Outcome: report.OutcomeFailed, Attempts: jr.Attempts, Error: errString(jr.Err)}
			r.Rec.AddUser(ur, now)
			r.emit(userLine{Type: "user", UserResult: ur})
			failed = append(failed, u)
		}
	}
	return failed
}

func (r *Runner) emit(v any) {
	if r.Emit != nil {
		r.Emit(v)
	}
}

// retryLine is the JSON line written when a failed attempt is scheduled again.
type retryLine struct {
	Type    string   `json:"type"`
	Users   []string `json:"users"`
	Attempt int      `json:"attempt"`
	Error   string   `json:"error"`
	DelayMS int64    `json:"delayMs"`
}

type userLine struct {
	Type string `json:"type"`
	report.UserResult
}

func errString(err error) string {
	if err == nil {
		return "failed"
	}
	return err.Error()
}

// ErrUsage marks a configuration error (bad flags, unreadable files).
var ErrUsage = errors.New("usage")
