package csync_test

import (
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// TestObserveSeesEveryCommand: Options.Observe is told of each command, in order, with
// its error, including a GET FETCH (timed until its body is closed) and a NO reply.
func TestObserveSeesEveryCommand(t *testing.T) {
	p := cyruspair.Start(t, cyruspair.Options{})
	seedAlice(t, p.Master)
	ctx := ctxT(t)
	type seen struct {
		cmd string
		d   time.Duration
		err error
	}
	var mu sync.Mutex
	var got []seen
	o := opts(p)
	o.Observe = func(cmd string, d time.Duration, err error) {
		mu.Lock()
		got = append(got, seen{cmd, d, err})
		mu.Unlock()
	}
	m := dialMaster(t, p, o)
	mb, err := m.GetFullMailbox(ctx, "user.alice")
	if err != nil {
		t.Fatal(err)
	}
	rec := mb.Records[0]
	if _, err := m.FetchTo(ctx, csync.FetchRequest{MboxName: mb.Name, Partition: mb.Partition,
		UniqueID: mb.UniqueID, GUID: rec.GUID, UID: rec.UID}, io.Discard); err != nil {
		t.Fatal(err)
	}
	_, err = m.GetFullMailbox(ctx, "user.nobody")
	if !errors.Is(err, csync.ErrMailboxNonexistent) {
		t.Fatalf("GET FULLMAILBOX of a missing folder: %v", err)
	}
	if err := m.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var cmds []string
	for _, s := range got {
		cmds = append(cmds, s.cmd)
		if s.d <= 0 {
			t.Errorf("%s: duration %v, want > 0", s.cmd, s.d)
		}
	}
	want := []string{"banner", "AUTHENTICATE", "NOOP", "GET FULLMAILBOX", "GET FETCH", "GET FULLMAILBOX", "RESTART"}
	if !slices.Equal(cmds, want) {
		t.Fatalf("observed %q, want %q", cmds, want)
	}
	for i, s := range got {
		if wantErr := i == 5; (s.err != nil) != wantErr {
			t.Errorf("%s (#%d): err %v, want an error: %v", s.cmd, i, s.err, wantErr)
		}
	}
	if !errors.Is(got[5].err, csync.ErrMailboxNonexistent) {
		t.Errorf("the NO reply was observed as %v", got[5].err)
	}
}
