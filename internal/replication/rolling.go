package replication

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// Rolling consumes a sync-log channel the way `sync_client -r` does, batch by batch,
// with per-user batches run in parallel, failing users parked in the durable retry
// queue with backoff, and malformed lines recorded and skipped.
type Rolling struct {
	Log      LogDir
	Runner   *Runner
	Retry    *RetryQueue
	Interval time.Duration             // pause between cycles when there is nothing to do
	Publish  func(ctx context.Context) // called after every cycle (reports, metrics)
	Emit     func(rec any)
	Now      func() time.Time

	pending PendingTracker // dates the oldest entry not replicated yet
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

// Cycle runs one pass: the log (or a leftover log-run) plus the users whose retry is due.
// It returns ErrNoLog when the log was empty (due retries still ran).
func (r *Rolling) Cycle(ctx context.Context) error {
	start := r.now()
	r.pending.Observe(r.Log) // date a new log before this cycle takes it
	var jobs []Job
	cycleFailed := 0
	settle := func(jr JobResult) {
		if jr.Err != nil {
			cycleFailed++
		}
		r.settle(jr)
	}
	logErr := r.Log.ConsumeOnce(func(entries []LogEntry, bad []BadLine, reprocessed bool) error {
		if !reprocessed {
			r.Runner.Rec.AddBadLogLines(len(bad))
		}
		for _, b := range bad {
			r.emit(badLineRecord{Type: "bad-log-line", File: "log-run", Line: b.Line, Text: b.Text, Error: b.Err})
		}
		g := GroupEntries(entries)
		for _, s := range g.Skipped {
			r.emit(skippedRecord{Type: "skipped-log-entry", Entry: s.String(), Why: "not a user's mailbox (shared folders and server annotations are not replicated)"})
		}
		jobs = r.plan(g.Batches, start)
		// Settled one by one as they end, so that a long log does not hold every
		// user's decisions at once.
		r.Runner.RunEach(ctx, jobs, settle)
		// Failures are in the retry queue now; make it durable before log-run goes.
		if err := r.Retry.Save(); err != nil {
			return fmt.Errorf("save retry queue: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err() // interrupted: keep log-run, redo it next time
		}
		return nil
	})
	if errors.Is(logErr, ErrNoLog) {
		// Nothing logged: still run the users whose retry is due.
		jobs = r.plan(nil, start)
		if len(jobs) > 0 {
			r.Runner.RunEach(ctx, jobs, settle)
			if err := r.Retry.Save(); err != nil {
				return fmt.Errorf("save retry queue: %w", err)
			}
		}
	}
	failed := 0
	for _, u := range r.Runner.Rec.Outcomes() {
		if u.Outcome == report.OutcomeFailed {
			failed++
		}
	}
	pending := r.pending.Observe(r.Log)
	backlog := pending.Entries
	r.Runner.Rec.SetPendingSince(pending.Since)
	users := 0
	for _, j := range jobs {
		users += len(j.Users)
	}
	if len(jobs) > 0 {
		r.Runner.Rec.SetBatch(report.Batch{Time: r.now(), Users: users, Failed: failed, DurationMS: r.now().Sub(start).Milliseconds()}, &backlog)
	} else {
		// An idle cycle is not a batch: leave LastBatch alone so that an idle replicator
		// publishes an unchanged report (no ConfigMap write, no status churn).
		r.Runner.Rec.SetBacklog(&backlog)
	}
	if logErr != nil && !errors.Is(logErr, ErrNoLog) {
		r.Runner.Rec.SetError(logErr, r.now())
	} else if cycleFailed == 0 {
		r.Runner.Rec.MarkSuccess(r.now())
	}
	if r.Publish != nil {
		r.Publish(ctx)
	}
	return logErr
}

// plan turns batches into jobs: users backing off are deferred to the retry queue (their
// entries are not lost: the queue asks for a full sync), and due retries are added.
func (r *Rolling) plan(batches []Batch, now time.Time) []Job {
	var jobs []Job
	inJob := map[string]bool{}
	for _, b := range batches {
		users := b.UserNames()
		waiting := false
		for _, u := range users {
			waiting = waiting || r.Retry.Waiting(u, now)
		}
		if waiting {
			for _, u := range users {
				r.Retry.Defer(u, now)
			}
			continue
		}
		work := slices.Clone(b.Users)
		for i := range work {
			// A user owed a retry gets the full sync the retry stands for.
			work[i].Full = work[i].Full || r.Retry.Entry(work[i].User) != nil
		}
		jobs = append(jobs, Job{Users: users, Work: work})
		for _, u := range users {
			inJob[u] = true
		}
	}
	for _, u := range r.Retry.Due(now) {
		if !inJob[u] {
			jobs = append(jobs, Job{Users: []string{u}})
			inJob[u] = true
		}
	}
	return jobs
}

// settle records a job's result and moves its users in or out of the retry queue (in
// memory: Cycle saves the queue before the log-run goes).
func (r *Rolling) settle(jr JobResult) {
	now := r.now()
	r.Runner.Record([]JobResult{jr})
	for _, u := range jr.Job.Users {
		if jr.Err != nil {
			r.Retry.Fail(u, jr.Err, now)
		} else {
			r.Retry.Succeed(u)
		}
	}
}

func (r *Rolling) emit(v any) {
	if r.Emit != nil {
		r.Emit(v)
	}
}

// Run cycles until ctx ends. Errors of one cycle (e.g. the replica is down) are recorded
// and retried after Interval; they never end the loop.
func (r *Rolling) Run(ctx context.Context) error {
	for {
		err := r.Cycle(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := r.Interval
		if err == nil {
			wait = 0 // more may be waiting: go again at once
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}
