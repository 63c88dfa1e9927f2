package replication

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// fakeEnd answers GET USER with one INBOX per user, and fails for user "bad"; it is
// enough for the runner's scheduling, which is what these tests are about.
type fakeEnd struct {
	ReplicaWriter // unimplemented methods panic: the plans here never need them
	mu            sync.Mutex
	calls         map[string]int
	block         chan struct{} // GET USER of "slow" waits on it
}

func (f *fakeEnd) GetUser(ctx context.Context, u string) (*csync.UserState, error) {
	f.mu.Lock()
	f.calls[u]++
	f.mu.Unlock()
	switch u {
	case "bad":
		return nil, errors.New("boom")
	case "slow":
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &csync.UserState{Mailboxes: []csync.Mailbox{{UniqueID: "id-" + u, Name: UserRoot(u), UIDValidity: 1}}}, nil
}

func (f *fakeEnd) GetUniqueIDs(context.Context, []string) ([]csync.Mailbox, error) { return nil, nil }

func (f *fakeEnd) Fetch(context.Context, csync.FetchRequest) (*csync.FetchBody, error) {
	return nil, errors.New("unused")
}

func (f *fakeEnd) FetchSieve(context.Context, string, string) (*csync.Sieve, error) {
	return nil, errors.New("unused")
}

func TestRunnerRetriesWithoutBlocking(t *testing.T) {
	end := &fakeEnd{calls: map[string]int{}, block: make(chan struct{})}
	var connects atomic.Int32
	r := &Runner{
		Connect: func(context.Context) (*Executor, error) {
			connects.Add(1)
			return &Executor{Master: end, Replica: end}, nil
		},
		Workers:  2,
		Attempts: 3,
		Backoff:  func(int) time.Duration { return time.Millisecond },
		Rec:      NewRecorder("sync", "p", time.Now()),
	}
	// "slow" holds one worker until every other job is done: the failing user's
	// retries and the good users must all pass through the other worker meanwhile.
	go func() {
		for {
			end.mu.Lock()
			done := end.calls["bad"] >= 3 && end.calls["u3"] >= 2
			end.mu.Unlock()
			if done {
				close(end.block)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	results := r.Run(context.Background(), []Job{{Users: []string{"slow"}}, {Users: []string{"bad"}}, {Users: []string{"u1"}}, {Users: []string{"u2"}}, {Users: []string{"u3"}}})
	if len(results) != 5 {
		t.Fatalf("results: %d", len(results))
	}
	failed := r.Record(results)
	if len(failed) != 1 || failed[0] != "bad" {
		t.Fatalf("failed %v", failed)
	}
	out := r.Rec.Outcomes()
	if out["bad"].Attempts != 3 || out["bad"].Outcome != report.OutcomeFailed || out["bad"].Error == "" {
		t.Fatalf("bad: %+v", out["bad"])
	}
	for _, u := range []string{"slow", "u1", "u2", "u3"} {
		if out[u].Outcome != report.OutcomeEqual {
			t.Fatalf("%s: %+v", u, out[u])
		}
	}
	if s := r.Rec.Summary(nil); s.UsersTotal != 5 || s.UsersFailed != 1 || s.Users[0].User != "bad" {
		t.Fatalf("summary %+v", s)
	}
}
