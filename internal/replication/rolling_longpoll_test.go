package replication

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/executor"
	"github.com/cyrusrepl/cyrusrepl/internal/state"
	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
)

// longPollDir is a channel directory taken like the agent's lease: when nothing is
// pending, Take waits until a log appears or ctx ends, however long that is (no bound).
type longPollDir struct {
	*synclog.Dir
	waiting atomic.Bool  // a Take is waiting
	polls   atomic.Int32 // long-polls that ended with nothing
}

func (l *longPollDir) LongPolls() bool { return true }

func (l *longPollDir) Take(ctx context.Context, handle func(*synclog.Scanner, bool) error) error {
	for {
		err := l.Dir.Take(ctx, handle)
		if !errors.Is(err, synclog.ErrNoLog) {
			return err
		}
		l.waiting.Store(true)
		select {
		case <-ctx.Done():
			l.waiting.Store(false)
			l.polls.Add(1)
			return synclog.ErrNoLog
		case <-time.After(time.Millisecond):
		}
	}
}

// TestRollingLongPollSettlesFinishedJobs: with a long-polling source, Run does not
// sleep between passes, and a job that ends while the long-poll waits is settled at
// once (the wait is cut short), not when the long-poll would have ended.
func TestRollingLongPollSettlesFinishedJobs(t *testing.T) {
	end := &fakeEnd{calls: map[string]int{}, block: make(chan struct{})}
	logDir := t.TempDir()
	src := &longPollDir{Dir: synclog.NewDir(logDir)}
	pending, err := state.OpenPendingQueue(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	retry, err := state.OpenRetryQueue(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Interval is an hour: only the long-poll and its cut can make progress here.
	rec := NewRecorder("rolling", "p", time.Now())
	roll := &Rolling{Log: src, Retry: retry, Pending: pending, Interval: time.Hour,
		Runner: &Runner{Connect: func(context.Context) (*executor.Executor, error) {
			return &executor.Executor{Master: end, Replica: end}, nil
		}, Workers: 2, Rec: rec}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // hang guard
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = roll.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("hang guard: %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	calls := func(u string) int {
		end.mu.Lock()
		defer end.mu.Unlock()
		return end.calls[u]
	}
	appendLog(t, logDir, "USER slow")
	waitFor("slow's job started", func() bool { return calls("slow") == 1 })
	if n := src.polls.Load(); n != 0 {
		t.Fatalf("%d long-polls ended before any job did", n)
	}
	// The source now long-polls with nothing to end it but a job's end: slow's job
	// ends, its result must cut the long-poll and be settled.
	waitFor("the long-poll beside slow's job", src.waiting.Load)
	close(end.block)
	waitFor("slow's job settled while the source long-polls", func() bool { _, ok := rec.Outcomes()["slow"]; return ok })
	if n := src.polls.Load(); n != 1 {
		t.Fatalf("long-polls cut: %d, want 1 (by slow's result)", n)
	}
}
