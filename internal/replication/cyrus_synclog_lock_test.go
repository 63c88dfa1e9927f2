package replication

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// TestCyrusLMTPDeliveriesRaceTightCycles: real lmtpd deliveries (each one appends to the
// channel log under Cyrus's POSIX lock) race consume cycles that take the log as fast as
// they can. Every delivery's APPEND line must be read by some cycle (none unlinked with
// a log-run), and every delivered message must reach the replica.
func TestCyrusLMTPDeliveriesRaceTightCycles(t *testing.T) {
	e := startEnv(t, "delayed", false)
	m := e.p.Master
	users := []string{"ann", "ben", "cat", "dan"}
	for _, u := range users {
		m.CreateUser(t, u)
	}
	e.sync(t, users...)
	logDir := m.SyncLogDir(e.p.Channel)
	drainLog(t, logDir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // hang guard
	defer cancel()

	const perUser = 40
	var wg sync.WaitGroup
	errs := make(chan error, len(users))
	for _, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perUser {
				if err := m.DeliverLMTP([]string{u}, cyruspair.Message(fmt.Sprintf("%s %d", u, i), "x")); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	delivering := make(chan struct{})
	go func() { wg.Wait(); close(delivering) }()

	appends := map[string]int{}
	cycles := 0
	gr := synclog.NewGrouper()
	replicate := func() error {
		for _, b := range gr.Batches().Batches {
			if _, err := e.x.SyncWork(ctx, b.Users); err != nil {
				return err
			}
		}
		gr = synclog.NewGrouper()
		return nil
	}
	cycle := func() error {
		err := synclog.NewDir(logDir).ConsumeOnce(func(sc *synclog.Scanner, _ bool) error {
			entries, bad := synclog.ScanAll(sc)
			if len(bad) > 0 {
				return fmt.Errorf("lines Cyrus wrote do not parse: %+v", bad)
			}
			for _, en := range entries {
				if en.Type == "APPEND" {
					appends[mboxname.UserOf(en.Args[0])]++
				}
			}
			// Replicate every fourth cycle; in between, take the log as fast as possible.
			for _, en := range entries {
				gr.Add(en)
			}
			if cycles%4 != 0 {
				return nil
			}
			return replicate()
		})
		if err == nil || !errors.Is(err, synclog.ErrNoLog) {
			cycles++
		}
		return err
	}
	for done := false; !done; {
		select {
		case <-delivering:
			done = true
		default:
		}
		if err := cycle(); err != nil && !errors.Is(err, synclog.ErrNoLog) {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatal("hang guard: deliveries did not end")
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for {
		if err := cycle(); errors.Is(err, synclog.ErrNoLog) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if err := replicate(); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if appends[u] != perUser {
			t.Fatalf("%s: %d APPEND lines read for %d deliveries (a line appended across our rename was lost)", u, appends[u], perUser)
		}
		if st := e.p.Replica.Status(t, u, "INBOX"); st.Messages != perUser {
			t.Fatalf("%s INBOX on the replica: %d messages, want %d", u, st.Messages, perUser)
		}
	}
	t.Logf("%d cycles raced %d deliveries; every line read, every message replicated", cycles, perUser*len(users))
}
