package replication

import (
	"context"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// ledgerRecordsWork starts an env with the replica cache on, where alice's Work was
// synced and then updated by one pass planned from the ledger (checked), so the ledger
// holds the replica's Work as that pass left it.
func ledgerRecordsWork(t *testing.T) (*observedEnv, context.Context) {
	t.Helper()
	o := startObservedEnv(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	m := o.p.Master
	m.CreateUser(t, "alice")
	m.CreateFolder(t, "alice", "Work")
	m.Append(t, "alice", "Work", cyruspair.Message("seed", "w"))
	o.sync(t, "alice")
	m.Append(t, "alice", "Work", cyruspair.Message("m0", "master zero"))
	o.pass(ctx, t, "alice", "user.alice.Work")
	if got := o.cache.take(); got[""] != 1 {
		t.Fatalf("the first pass was not planned from the ledger: %v", got)
	}
	return o, ctx
}

// TestCyrusReplicaCacheWrittenOnReplica: a folder planned from the ledger's record of
// the replica, after the replica took mail of its own (a split-brain), must not be
// updated over it: the update's SINCE_* makes the replica refuse, the batch reads the
// replica and plans again, and the replica's message is moved aside, not lost.
func TestCyrusReplicaCacheWrittenOnReplica(t *testing.T) {
	o, ctx := ledgerRecordsWork(t)
	m, r := o.p.Master, o.p.Replica

	r.Append(t, "alice", "Work", cyruspair.Message("r1", "written on the replica"))
	m.Append(t, "alice", "Work", cyruspair.Message("m1", "master one"))
	before := liveGUIDs(t, o.p, r, "alice")
	res, _, _ := o.pass(ctx, t, "alice", "user.alice.Work")
	if got := o.cache.take(); got["refused"] != 1 || got[""] != 0 {
		t.Errorf("replica-cache events %v, want one refused and none carried out", got)
	}
	if !hasDecision(res, report.ActionMoveAside, report.EvidenceSplitBrain, "user.alice.Work") {
		t.Fatalf("no move-aside decision for the split-brained Work: %v", decisionsOf(res))
	}
	assertKept(t, o.p, "alice", before)
}

// TestCyrusReplicaCacheRenamedOnReplica: the folder the ledger records was renamed on
// the replica. Planned from the ledger, the update names the old place; Cyrus refuses
// it (the uniqueid lives under another name) before writing, the batch reads the
// replica, and the full path brings the folder back under the master's name with its
// mail (nothing uploaded twice, nothing lost).
func TestCyrusReplicaCacheRenamedOnReplica(t *testing.T) {
	o, ctx := ledgerRecordsWork(t)
	m, r := o.p.Master, o.p.Replica

	r.Rename(t, "alice", "Work", "Play")
	m.Append(t, "alice", "Work", cyruspair.Message("m1", "master one"))
	o.pass(ctx, t, "alice", "user.alice.Work")
	if got := o.cache.take(); got["refused"] != 1 || got[""] != 0 {
		t.Errorf("replica-cache events %v, want one refused and none carried out", got)
	}
	assertEqual(t, o.p, o.p.Replica, "alice")
}

// TestCyrusReplicaCacheFlagOnReplica: the replica changed only a flag of a folder the
// ledger records (no new UID), and the master took a message. Planned from the ledger,
// the update carries only the master's new record, which the replica could add on top
// of its own change: only SINCE_* stops it before anything is written. The batch then
// reads the replica and decides as it would have without the ledger.
func TestCyrusReplicaCacheFlagOnReplica(t *testing.T) {
	o, ctx := ledgerRecordsWork(t)
	m, r := o.p.Master, o.p.Replica

	r.Store(t, "alice", "Work", "1", "+FLAGS", `\Flagged`)
	m.Append(t, "alice", "Work", cyruspair.Message("m1", "master one"))
	res, _, rn := o.pass(ctx, t, "alice", "user.alice.Work")
	t.Logf("replica commands %v; decisions %v; records %v", rn, decisionsOf(res), o.records)
	if got := o.cache.take(); got["refused"] != 1 || got[""] != 0 {
		t.Errorf("replica-cache events %v, want one refused and none carried out", got)
	}
	if deltas, fallbacks := o.index.take(); fallbacks["sync-changed"] != 1 {
		t.Errorf("index events: %d deltas, fallbacks %v; want the ledger's delta refused as sync-changed", deltas, fallbacks)
	}
}
