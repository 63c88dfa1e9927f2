package state

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/plan"
)

// TestStateIDNewOnceAndShared: the first opener of an empty state directory begins it
// (New); every later or concurrent opener gets the same identity, not new.
func TestStateIDNewOnceAndShared(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1_700_000_000, 0)
	const openers = 8
	ids := make([]string, openers)
	news := make([]bool, openers)
	var wg sync.WaitGroup
	for i := range openers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := OpenStateID(dir, now)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i], news[i] = st.ID, st.New
		}()
	}
	wg.Wait()
	nNew := 0
	for i := range openers {
		if ids[i] != ids[0] || ids[i] == "" {
			t.Fatalf("openers disagree on the state id: %v", ids)
		}
		if news[i] {
			nNew++
		}
	}
	if nNew != 1 {
		t.Fatalf("%d openers saw a new state, want exactly 1", nNew)
	}
	again, err := OpenStateID(dir, now.Add(time.Hour))
	if err != nil || again.ID != ids[0] || again.New || !again.Created.Equal(now) {
		t.Fatalf("reopen: %+v %v", again, err)
	}
	// Lost: the directory emptied (a new volume) gives a new identity.
	os.Remove(filepath.Join(dir, stateFile))
	lost, err := OpenStateID(dir, now.Add(2*time.Hour))
	if err != nil || !lost.New || lost.ID == ids[0] {
		t.Fatalf("after loss: %+v %v", lost, err)
	}
	// A directory with a ledger from before state ids is carried over, not new.
	old := t.TempDir()
	l, _ := OpenLedger(old)
	u, _ := l.Load("bob")
	u.Record([]plan.Folder{fo("u1", "user.bob", 1)}, now)
	l.Save(u)
	if st, err := OpenStateID(old, now); err != nil || st.New {
		t.Fatalf("pre-existing ledger: %+v %v", st, err)
	}
	// A corrupt identity is an error, not a silent new state.
	os.WriteFile(filepath.Join(old, stateFile), []byte("{"), 0o600)
	if _, err := OpenStateID(old, now); err == nil {
		t.Fatal("corrupt state.json accepted")
	}
}
