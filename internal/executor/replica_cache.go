package executor

import (
	"errors"

	"github.com/cyrusrepl/cyrusrepl/internal/plan"
	"github.com/cyrusrepl/cyrusrepl/internal/state"
)

// CacheEvent says how one mailbox-level batch went with the ledger's record of the
// replica (Executor.ReplicaCache): planned from it and applied (Reason ""), or why the
// round read the replica after all.
type CacheEvent struct {
	Reason  string // "" when the plan from the ledger was carried out
	Folders int    // folders planned from the ledger
}

// Reasons the ledger's record was not enough.
const (
	cacheNotOnlyUpdates = "not-only-updates" // the plan from it had more than updates (or nothing) to do
	cacheRefused        = "refused"          // the replica refused an update planned from it
)

// errReplicaUnread ends an Execute of a plan made from the ledger's record of the
// replica: an update needs the replica's real state (see ReplicaCache).
var errReplicaUnread = errors.New("update needs the replica's state read, not the ledger's record")

func (x *Executor) cacheEvent(ev CacheEvent) {
	if x.CacheStats != nil {
		x.CacheStats(ev)
	}
}

// replicaFromLedger is the replica's side of names as this replicator's last accepted
// APPLY MAILBOX of each left it, when every name has exactly one such record and the
// folders are the master's (same uniqueids under the same names); ok is false
// otherwise, and the round reads the replica.
func (x *Executor) replicaFromLedger(ledgers state.Ledgers, names []string, master []plan.Folder) ([]plan.Folder, bool) {
	if !x.ReplicaCache || x.MasterIndex == nil || ledgers == nil {
		return nil, false
	}
	byName := map[string]*plan.Folder{}
	count := map[string]int{}
	for _, l := range ledgers {
		for uid, e := range l.Entries {
			if a := e.Applied; a != nil && a.UniqueID == uid && a.Name == e.Name {
				byName[a.Name] = a
				count[a.Name]++
			}
		}
	}
	out := make([]plan.Folder, 0, len(names))
	for _, n := range names {
		f := byName[n]
		if f == nil || count[n] != 1 {
			return nil, false
		}
		out = append(out, *f)
	}
	return out, sameFolders(master, out)
}
