package replication

import (
	"sync"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/executor"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// Recorder folds batch results into the bounded report.Summary. Safe for concurrent use.
type Recorder struct {
	mu sync.Mutex
	s  report.Summary
	// users keeps the latest result per user, so UsersTotal/UsersFailed describe the
	// current state of every user seen in this run.
	users map[string]report.UserResult
	order []string
	// lastSuccess is the end of the latest cycle or pass in which no user failed and no
	// error occurred. Kept out of the summary: an idle replicator moves it every cycle,
	// and the report must not change (no ConfigMap write) when nothing else did.
	lastSuccess time.Time
	// partitionFailures: users failing for a partition the replica lacks (recorder_checks.go).
	partitionFailures map[string]map[string]bool
}

// NewRecorder starts a summary for a mode.
func NewRecorder(mode, pair string, now time.Time) *Recorder {
	return &Recorder{users: map[string]report.UserResult{}, s: report.Summary{
		Kind: report.SummaryKind, Mode: mode, Pair: pair, Started: now, Updated: now,
		ActionCounts: map[string]int{}, DecisionCounts: map[string]int{}, MismatchCounts: map[string]int{},
	}}
}

// AddBatch records a batch's users, decisions and mismatches.
func (r *Recorder) AddBatch(res *executor.BatchResult, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range res.Decisions {
		r.s.DecisionCounts[string(d.Action)+"/"+string(d.Evidence)]++
		if d.Action != report.ActionKeep {
			r.s.ActionCounts[string(d.Action)]++
		}
		r.s.Decisions = appendBounded(r.s.Decisions, d)
	}
	for _, m := range res.Mismatches {
		r.s.MismatchCounts[string(m.Kind)]++
		r.s.Mismatches = appendBounded(r.s.Mismatches, m)
	}
	for _, u := range res.Users {
		r.setUser(u)
	}
	r.s.Updated = now
}

// AddUser records one user's result (e.g. a failure).
func (r *Recorder) AddUser(u report.UserResult, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.setUser(u)
	if u.Error != "" {
		r.s.LastError = u.User + ": " + u.Error
	}
	r.s.Updated = now
}

func (r *Recorder) setUser(u report.UserResult) {
	if _, ok := r.users[u.User]; !ok {
		r.order = append(r.order, u.User)
	}
	r.users[u.User] = u
}

// SetBatch records the most recent batch and the backlog.
func (r *Recorder) SetBatch(b report.Batch, backlog *int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.LastBatch = &b
	r.s.Backlog = backlog
	r.s.Updated = b.Time
}

// SetBacklog records the backlog without a batch (an idle cycle).
func (r *Recorder) SetBacklog(backlog *int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.Backlog = backlog
}

// SetPendingSince records when the oldest sync-log entry not replicated yet was first
// seen (zero: none waits).
func (r *Recorder) SetPendingSince(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t.IsZero() {
		r.s.PendingSince = nil
		return
	}
	t = t.UTC().Truncate(time.Second)
	r.s.PendingSince = &t
}

// MarkSuccess records the end of a cycle or pass in which no user failed.
func (r *Recorder) MarkSuccess(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastSuccess = t
}

// LastSuccess is the time MarkSuccess last recorded (zero: never).
func (r *Recorder) LastSuccess() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastSuccess
}

// SetError records a run-level error.
func (r *Recorder) SetError(err error, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.s.LastError = err.Error()
	}
	r.s.Updated = now
}

// SetState records the state directory's identity in every later summary.
func (r *Recorder) SetState(st report.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.State = &st
}

// Summary returns a copy of the summary; finished marks a run that ended.
func (r *Recorder) Summary(finished *time.Time) *report.Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.s
	s.Finished = finished
	s.Users = nil
	s.UsersTotal, s.UsersFailed = len(r.users), 0
	for _, name := range r.order {
		u := r.users[name]
		if u.Outcome == report.OutcomeFailed {
			s.UsersFailed++
		}
	}
	// The most recent users, failures first so they are never crowded out.
	for _, name := range r.order {
		if u := r.users[name]; u.Outcome == report.OutcomeFailed && len(s.Users) < report.MaxRecent {
			s.Users = append(s.Users, u)
		}
	}
	for i := len(r.order) - 1; i >= 0 && len(s.Users) < report.MaxRecent; i-- {
		if u := r.users[r.order[i]]; u.Outcome != report.OutcomeFailed {
			s.Users = append(s.Users, u)
		}
	}
	s.Decisions = append([]report.Decision(nil), s.Decisions...)
	s.Mismatches = append([]report.Mismatch(nil), s.Mismatches...)
	s.Checks = append([]report.Check(nil), s.Checks...)
	s.ActionCounts = cloneCounts(s.ActionCounts)
	s.DecisionCounts = cloneCounts(s.DecisionCounts)
	s.MismatchCounts = cloneCounts(s.MismatchCounts)
	if s.State != nil {
		st := *s.State
		s.State = &st
	}
	return &s
}

// Outcomes returns the latest outcome per user.
func (r *Recorder) Outcomes() map[string]report.UserResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]report.UserResult, len(r.users))
	for k, v := range r.users {
		out[k] = v
	}
	return out
}

func appendBounded[T any](s []T, v T) []T {
	s = append(s, v)
	if len(s) > report.MaxRecent {
		s = append(s[:0:0], s[len(s)-report.MaxRecent:]...)
	}
	return s
}

func cloneCounts(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// AddBadLogLines counts malformed sync-log lines (each is also a JSON line on stdout).
func (r *Recorder) AddBadLogLines(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.BadLogLines += n
}
