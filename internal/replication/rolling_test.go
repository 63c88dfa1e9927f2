package replication

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/executor"
	"github.com/cyrusrepl/cyrusrepl/internal/state"
	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
)

// TestRollingSchedulingRace: the rolling loop's scheduling, without a server (it runs
// in the race-detector pass): while one user's job is blocked, later log entries for
// other users are taken and run, the blocked user's new entries wait for it, and every
// entry's work leaves the pending queue once done. The real-pair version is
// TestCyrusRollingSlowUserDoesNotHoldOthers.
func TestRollingSchedulingRace(t *testing.T) {
	end := &fakeEnd{calls: map[string]int{}, block: make(chan struct{})}
	logDir := t.TempDir()
	log := synclog.NewDir(logDir)
	pending, err := state.OpenPendingQueue(log.PendingPath())
	if err != nil {
		t.Fatal(err)
	}
	retry, err := state.OpenRetryQueue(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	roll := &Rolling{Log: log, Retry: retry, Pending: pending, Interval: time.Millisecond,
		Runner: &Runner{Connect: func(context.Context) (*executor.Executor, error) {
			return &executor.Executor{Master: end, Replica: end}, nil
		},
			Workers: 2, Rec: NewRecorder("rolling", "p", time.Now())}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // hang guard
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = roll.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()
	calls := func(u string) int {
		end.mu.Lock()
		defer end.mu.Unlock()
		return end.calls[u]
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("hang guard: %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	appendLog(t, logDir, "USER slow")
	waitFor("slow's job started", func() bool { return calls("slow") == 1 })
	for i, u := range []string{"u1", "u2", "u3"} {
		appendLog(t, logDir, "USER "+u)
		if i == 1 {
			appendLog(t, logDir, "USER slow") // waits until slow's job is done
		}
		waitFor(u+" replicated while slow is blocked", func() bool { return calls(u) == 2 }) // master + replica
	}
	if calls("slow") != 1 {
		t.Fatalf("slow ran again while in flight: %d GET USER calls", calls("slow"))
	}
	close(end.block)
	waitFor("slow's second batch", func() bool { return calls("slow") == 4 })
	waitFor("the pending queue emptied", func() bool {
		segs, _ := filepath.Glob(filepath.Join(log.PendingPath(), "*.json"))
		return len(segs) == 0
	})
}

// appendLog writes one entry the way Cyrus's sync_log_base does (synclog.AppendLine).
func appendLog(t testing.TB, dir, line string) {
	t.Helper()
	if err := synclog.AppendLine(dir, line); err != nil {
		t.Fatal(err)
	}
}
