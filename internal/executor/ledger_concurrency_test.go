package executor

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/plan"
	"github.com/cyrusrepl/cyrusrepl/internal/state"
)

// TestLedgerConcurrentExecutorsKeepEveryMark reproduces issue #10 item 10: executors
// writing the same user's ledger at once (a user joined into two batches by cross-user
// renames, or a resync beside the rolling replicator, each with its own Ledger as two
// processes would have) must not lose each other's in-step marks. Each executor notes
// one folder it brought to the master's state, the way execute does after APPLY
// MAILBOX, and one folder it found in step, the way gather does.
func TestLedgerConcurrentExecutorsKeepEveryMark(t *testing.T) {
	dir := t.TempDir()
	const executors = 8
	const rounds = 20
	now := time.Unix(1000, 0).UTC()
	var wg sync.WaitGroup
	errs := make(chan error, executors*rounds*2)
	for e := range executors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := state.OpenLedger(dir) // one Ledger per executor, as per process
			if err != nil {
				errs <- err
				return
			}
			x := &Executor{Ledger: l}
			for r := range rounds {
				applied := fmt.Sprintf("applied-%d-%d", e, r)
				x.applied = map[string]appliedMark{applied: {name: "user.bob." + applied, mark: plan.FolderMark{LastUID: uint32(r + 1), HighestModSeq: 7, SyncCRC: 9}}}
				if err := x.saveApplied(now); err != nil {
					errs <- err
				}
				seen := fmt.Sprintf("seen-%d-%d", e, r)
				f := plan.Folder{UniqueID: seen, Name: "user.bob." + seen, LastUID: 3, HighestModSeq: 4, SyncCRC: 5}
				lu, err := l.Load("bob")
				if err != nil {
					errs <- err
					continue
				}
				if err := x.noteInLedger(lu, []plan.Folder{f}, []plan.Folder{f}, now); err != nil {
					errs <- err
				}
				if err := x.noteSieve(lu, &plan.Meta{Sieve: []plan.SieveScript{{Name: seen + ".script", Digest: "d"}}}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	l, _ := state.OpenLedger(dir)
	u, err := l.Load("bob")
	if err != nil {
		t.Fatal(err)
	}
	var lost []string
	for e := range executors {
		for r := range rounds {
			for _, uid := range []string{fmt.Sprintf("applied-%d-%d", e, r), fmt.Sprintf("seen-%d-%d", e, r)} {
				if _, ok := u.LastInStep(uid); !ok {
					lost = append(lost, uid)
				}
			}
		}
	}
	for e := range executors {
		for r := range rounds {
			if name := fmt.Sprintf("seen-%d-%d.script", e, r); u.Sieve[name] != "d" {
				lost = append(lost, name)
			}
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d in-step marks lost by concurrent ledger writers, e.g. %v", len(lost), executors*rounds*3, lost[:min(len(lost), 5)])
	}
}
