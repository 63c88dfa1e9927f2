package state

import (
	"fmt"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/plan"
)

// BenchmarkLedgerMarkInStep: the cost, per batch, of recording a user's in-step folder
// states (load, mark, atomic save with fsync) — what every rolling batch now pays.
func BenchmarkLedgerMarkInStep(b *testing.B) {
	l, err := OpenLedger(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	var master, replica []plan.Folder
	for i := range 21 {
		f := plan.Folder{UniqueID: fmt.Sprintf("uid%02d", i), Name: fmt.Sprintf("user.alice.f%02d", i), UIDValidity: 1, LastUID: 3, HighestModSeq: 3}
		master, replica = append(master, f), append(replica, f)
	}
	now := time.Now()
	b.ResetTimer()
	for i := range b.N {
		for j := range master {
			master[j].HighestModSeq, replica[j].HighestModSeq = uint64(i+4), uint64(i+4)
		}
		u, err := l.Load("alice")
		if err != nil {
			b.Fatal(err)
		}
		u.Record(master, now)
		if !u.MarkInStep(master, replica) {
			b.Fatal("nothing marked")
		}
		if err := l.Save(u); err != nil {
			b.Fatal(err)
		}
	}
}
