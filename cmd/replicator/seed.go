package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/replication"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/state"
)

// Seeding modes of `replicator rolling --seed`.
const (
	seedAuto = "auto" // seed when the state has no completed seed and is new, or the replica is empty
	seedOff  = "off"
)

// seedSample is how many master users, spread over the sorted list, are looked up on
// the replica to tell an empty replica from one that holds the master's users.
const seedSample = 16

// seedRetryWait is the pause before listing the master's users or probing the replica
// again after a failure.
const seedRetryWait = 30 * time.Second

// seeder runs the seeding pass of a rolling replicator: before the sync log is
// consumed, one full sync of every master user, so a new or empty replica is filled
// whether or not the log names every user. The users done are recorded in the state
// directory as they end, so a restarted replicator resumes the pass where it stopped;
// once complete the pass never runs again on this state.
type seeder struct {
	c       *commonFlags
	users   *masterUsers
	connect replication.Connector
	retry   *state.RetryQueue
	rec     *replication.Recorder
	out     *jsonLines
	stderr  io.Writer
	publish func(context.Context)
	now     func() time.Time
}

// seedLine is the JSON line that says where seeding stands.
type seedLine struct {
	Type   string `json:"type"` // "seed"
	Event  string `json:"event"`
	Reason string `json:"reason,omitempty"`
	Users  int    `json:"users,omitempty"`
	Done   int    `json:"done,omitempty"`
	Failed int    `json:"failed,omitempty"`
}

// run seeds when needed and returns once the pass completed, was not needed, cannot
// run, or ctx ended (then it resumes at the next start). An error is a state
// directory that cannot be written.
func (s *seeder) run(ctx context.Context) error {
	store, err := state.OpenSeed(s.c.stateDir)
	if err != nil {
		return err
	}
	defer store.Close()
	if r := store.Record(); r != nil && r.Completed != nil {
		s.rec.SetSeed(seedReport(r))
		return nil
	}
	if !s.users.available() {
		why := "the master's users cannot be listed: give --master-config or --master-imap"
		s.rec.SetSeed(report.Seed{State: report.SeedUnavailable, Reason: why})
		s.out.emit(seedLine{Type: "seed", Event: report.SeedUnavailable, Reason: why})
		return nil
	}
	users, ok := s.listUsers(ctx)
	if !ok {
		return nil
	}
	if store.Record() == nil {
		need, reason, ok := s.needed(ctx, users)
		if !ok {
			return nil
		}
		if !need {
			if err := store.Skip(s.now(), reason); err != nil {
				return err
			}
			s.rec.SetSeed(seedReport(store.Record()))
			s.out.emit(seedLine{Type: "seed", Event: report.SeedNotNeeded, Reason: reason, Users: len(users)})
			return nil
		}
		if err := store.Begin(s.now(), reason); err != nil {
			return err
		}
	}
	return s.pass(ctx, store, users)
}

// pass runs the full sync of every user the record does not show done.
func (s *seeder) pass(ctx context.Context, store *state.Seed, users []string) error {
	rec := store.Record()
	todo := slices.DeleteFunc(slices.Clone(users), store.Done)
	event := "start"
	if len(todo) < len(users) {
		event = "resume"
	}
	s.rec.SetSeed(seedReport(rec))
	s.out.emit(seedLine{Type: "seed", Event: event, Reason: rec.Reason, Users: len(users), Done: len(users) - len(todo)})
	jobs := make([]replication.Job, len(todo))
	for i, u := range todo {
		jobs[i] = replication.Job{Users: []string{u}}
	}
	runner := &replication.Runner{Connect: s.connect, Workers: s.c.workers, BatchTimeout: s.c.batchTimeout,
		Attempts: 3, Policy: s.c.replicaOnlyPolicy, Rec: s.rec, Emit: s.out.emit,
		Backoff: func(n int) time.Duration { return time.Duration(1<<min(n-1, 6)) * time.Second }}
	p := s.c.progress.startPass(len(users), s.out, s.rec, s.stderr, s.publish)
	p.t.Resumed(len(users) - len(todo))
	failures := map[string]error{}
	var markErr error
	runPass(ctx, runner, jobs, p, func(res replication.JobResult, failed []string) {
		for _, u := range res.Job.Users {
			if slices.Contains(failed, u) {
				failures[u] = res.Err
				continue
			}
			if err := store.MarkDone(u); err != nil && markErr == nil {
				markErr = err // the user is done again after a restart: harmless
			}
		}
	})
	p.stop()
	if markErr != nil {
		s.rec.SetError(fmt.Errorf("seed: %w", markErr), s.now())
	}
	if ctx.Err() != nil {
		return nil // cut short: the next start resumes
	}
	return s.complete(store, users, failures)
}

// complete hands the users that failed to the retry queue (saved first: they are owed
// a full sync) and records the pass complete.
func (s *seeder) complete(store *state.Seed, users []string, failures map[string]error) error {
	now := s.now()
	for u, err := range failures {
		s.retry.Fail(u, err, now)
	}
	if len(failures) > 0 {
		if err := s.retry.Save(); err != nil {
			return fmt.Errorf("seed: save retry queue: %w", err)
		}
	}
	if err := store.Complete(now, len(users), len(failures)); err != nil {
		return err
	}
	s.rec.SetSeed(seedReport(store.Record()))
	s.out.emit(seedLine{Type: "seed", Event: report.SeedComplete, Users: len(users), Failed: len(failures)})
	if s.publish != nil {
		s.publish(context.Background())
	}
	return nil
}

// listUsers lists the master's users, trying again every seedRetryWait (and saying
// why) until it works or ctx ends.
func (s *seeder) listUsers(ctx context.Context) ([]string, bool) {
	for {
		users, err := s.users.list(ctx)
		if err == nil {
			sort.Strings(users)
			return slices.Compact(users), true
		}
		if !s.wait(ctx, fmt.Errorf("seed: %w", err)) {
			return nil, false
		}
	}
}

// needed decides whether this state needs a seeding pass: it does when the state
// directory began empty (a new pair, or a lost state: the pass also brings back the
// in-step marks), or when the replica holds none of a sample of the master's users.
func (s *seeder) needed(ctx context.Context, users []string) (bool, string, bool) {
	if s.c.state.New {
		return true, "the replicator's state began empty (a new pair, or its state was lost)", true
	}
	if len(users) == 0 {
		return true, "the master has no users", true
	}
	for {
		held, err := s.replicaHolds(ctx, sample(users, seedSample))
		if err == nil {
			if held != "" {
				return false, "the state was kept and the replica holds the master's users (" + held + ", …)", true
			}
			return true, fmt.Sprintf("the replica holds none of %d of the master's users looked up", min(len(users), seedSample)), true
		}
		if !s.wait(ctx, fmt.Errorf("seed: looking up users on the replica: %w", err)) {
			return false, "", false
		}
	}
}

// replicaHolds returns the first of users that has a folder on the replica ("" none).
func (s *seeder) replicaHolds(ctx context.Context, users []string) (string, error) {
	x, err := s.connect(ctx)
	if err != nil {
		return "", err
	}
	if x.Close != nil {
		defer x.Close()
	}
	for _, u := range users {
		st, err := x.Replica.GetUser(ctx, u)
		if err != nil {
			return "", fmt.Errorf("GET USER %s: %w", u, err)
		}
		if len(st.Mailboxes) > 0 {
			return u, nil
		}
	}
	return "", nil
}

// wait records err, publishes, and waits seedRetryWait; false when ctx ended.
func (s *seeder) wait(ctx context.Context, err error) bool {
	s.rec.SetError(err, s.now())
	fmt.Fprintf(s.stderr, "replicator rolling: %v (trying again in %s)\n", err, seedRetryWait)
	if s.publish != nil {
		s.publish(ctx)
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(seedRetryWait):
		return true
	}
}

// sample picks up to n users spread evenly over the list.
func sample(users []string, n int) []string {
	if len(users) <= n {
		return users
	}
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, users[i*len(users)/n])
	}
	return out
}

// seedReport is the report's view of a seed record.
func seedReport(r *state.SeedRecord) report.Seed {
	started := r.Started
	out := report.Seed{State: report.SeedRunning, Reason: r.Reason, Started: &started, Users: r.Users, Failed: r.Failed}
	if r.Completed != nil {
		done := *r.Completed
		out.Completed = &done
		out.State = report.SeedComplete
		if r.Skipped {
			out.State = report.SeedNotNeeded
		}
	}
	return out
}

var errSeedMode = errors.New("--seed must be auto or off")
