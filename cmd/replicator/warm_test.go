package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/executor"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// TestWarmConnector: the probe's executor goes to the first caller only; later callers
// dial; one not taken in time is closed and never handed out.
func TestWarmConnector(t *testing.T) {
	var dialed, closed atomic.Int32
	dial := func(context.Context) (*executor.Executor, error) {
		dialed.Add(1)
		return &executor.Executor{}, nil
	}
	warm := &executor.Executor{Close: func() { closed.Add(1) }}
	w := newWarmConnector(warm, dial, time.Hour)
	if x, _ := w.connect(context.Background()); x != warm || dialed.Load() != 0 {
		t.Fatalf("first call: got %p (warm %p), %d dials", x, warm, dialed.Load())
	}
	if x, _ := w.connect(context.Background()); x == warm || dialed.Load() != 1 {
		t.Fatalf("second call: got the warm executor again or did not dial (%d dials)", dialed.Load())
	}
	if closed.Load() != 0 {
		t.Fatalf("the executor handed out was closed")
	}

	late := &executor.Executor{Close: func() { closed.Add(1) }}
	w = newWarmConnector(late, dial, 10*time.Millisecond)
	deadline := time.Now().Add(10 * time.Second) // hang guard
	for closed.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if closed.Load() != 1 {
		t.Fatalf("an executor not taken in time was not closed")
	}
	if x, _ := w.connect(context.Background()); x == late {
		t.Fatalf("an expired executor was handed out")
	}
}

// TestCLIOnePassLogsInOnce: a one-pass run logs in to each server once: the first
// batch works on the sessions that proved the addresses and passwords at start.
func TestCLIOnePassLogsInOnce(t *testing.T) {
	c := newCLI(t, "delayed")
	m := c.p.Master
	m.CreateUser(t, "alice")
	m.Deliver(t, "alice", cyruspair.Message("seed", "body"))
	for i, args := range [][]string{{"sync", "--user", "alice"}, {"rolling", "--sync-log", m.SyncLogDir(c.p.Channel), "--once"}} {
		if i == 1 {
			m.Deliver(t, "alice", cyruspair.Message("one more", "body"))
		}
		code, out, errs := c.run(t, args...)
		if code != exitOK {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, errs, out)
		}
		got := csyncCounts(t, out)
		for _, end := range []string{"master", "replica"} {
			if n := got[end+" AUTHENTICATE"]; n != 1 {
				t.Errorf("%v: %s AUTHENTICATE %v times, want once (%v)", args, end, n, fmt.Sprint(got))
			}
		}
	}
	if ms, rs := m.Status(t, "alice", "INBOX"), c.p.Replica.Status(t, "alice", "INBOX"); ms != rs || rs.Messages != 2 {
		t.Errorf("INBOX: master %+v, replica %+v; want both with 2 messages", ms, rs)
	}
}
