package replication

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/executor"
	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// fakeEnd answers GET USER with one INBOX per user, and fails for user "bad"; it is
// enough for the runner's scheduling, which is what these tests are about.
type fakeEnd struct {
	executor.ReplicaWriter // unimplemented methods panic: the plans here never need them
	mu                     sync.Mutex
	calls                  map[string]int
	block                  chan struct{} // GET USER of "slow" waits on it
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
	return &csync.UserState{Mailboxes: []csync.Mailbox{{UniqueID: "id-" + u, Name: mboxname.UserRoot(u), UIDValidity: 1}}}, nil
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
		Connect: func(context.Context) (*executor.Executor, error) {
			connects.Add(1)
			return &executor.Executor{Master: end, Replica: end}, nil
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

// countingEnd is a fakeEnd that records, at each GET USER, how many users the recorder
// already holds: with RunRecord, every earlier job must be recorded by then.
type countingEnd struct {
	fakeEnd
	rec  *Recorder
	seen []int
}

func (c *countingEnd) GetUser(ctx context.Context, u string) (*csync.UserState, error) {
	c.mu.Lock()
	c.seen = append(c.seen, len(c.rec.Outcomes()))
	c.mu.Unlock()
	return c.fakeEnd.GetUser(ctx, u)
}

func TestRunRecordRecordsAsJobsEnd(t *testing.T) {
	rec := NewRecorder("sync", "p", time.Now())
	end := &countingEnd{fakeEnd: fakeEnd{calls: map[string]int{}}, rec: rec}
	var lines atomic.Int32
	r := &Runner{
		Connect: func(context.Context) (*executor.Executor, error) {
			return &executor.Executor{Master: end, Replica: end}, nil
		},
		Workers: 1, Rec: rec,
		Emit: func(v any) {
			if _, ok := v.(userLine); ok {
				lines.Add(1)
			}
		},
	}
	var jobs []Job
	for _, u := range []string{"u1", "u2", "bad", "u3"} {
		jobs = append(jobs, Job{Users: []string{u}})
	}
	failed := r.RunRecord(context.Background(), jobs)
	if len(failed) != 1 || failed[0] != "bad" {
		t.Fatalf("failed %v", failed)
	}
	// One worker, two GET USERs per job (master, replica): job k starts with k users recorded.
	want := []int{0, 0, 1, 1, 2, 3, 3}
	if len(end.seen) != len(want) {
		t.Fatalf("GET USER calls saw %v, want %v", end.seen, want)
	}
	for i := range want {
		if end.seen[i] != want[i] {
			t.Fatalf("GET USER calls saw %v, want %v", end.seen, want)
		}
	}
	if lines.Load() != 4 {
		t.Fatalf("user lines: %d", lines.Load())
	}
	if s := rec.Summary(nil); s.UsersTotal != 4 || s.UsersFailed != 1 {
		t.Fatalf("summary %+v", s)
	}
}

// BenchmarkRunRecordMemory reports the live heap at the last job of a run over n users:
// with results recorded as jobs end, it stays flat as n grows (apart from the
// recorder's one small entry per user).
func BenchmarkRunRecordMemory(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			for range b.N {
				rec := NewRecorder("sync", "p", time.Now())
				end := &heapEnd{fakeEnd: fakeEnd{calls: map[string]int{}}, last: fmt.Sprintf("u%d", n-1)}
				r := &Runner{Connect: func(context.Context) (*executor.Executor, error) {
					return &executor.Executor{Master: end, Replica: end}, nil
				}, Workers: 4, Rec: rec}
				jobs := make([]Job, n)
				for i := range jobs {
					jobs[i] = Job{Users: []string{fmt.Sprintf("u%d", i)}}
				}
				runtime.GC()
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
				r.RunRecord(context.Background(), jobs)
				b.ReportMetric(float64(int64(end.heap)-int64(before.HeapAlloc))/1024, "live-KiB")
			}
		})
	}
}

// heapEnd measures the live heap when the last user's GET USER runs.
type heapEnd struct {
	fakeEnd
	last string
	heap uint64
}

func (h *heapEnd) GetUser(ctx context.Context, u string) (*csync.UserState, error) {
	if u == h.last {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		h.mu.Lock()
		h.heap = max(h.heap, m.HeapAlloc)
		h.mu.Unlock()
	}
	return h.fakeEnd.GetUser(ctx, u)
}
