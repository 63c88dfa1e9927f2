// Package plan is the pure planner: from one batch's two snapshots (master and
// replica, keyed by mailbox uniqueid) and the evidence about folders the two ends
// disagree on, Compute returns the ordered actions that make the replica equal to the
// master, with a decision record for every folder acted on or kept and a mismatch
// record for every difference. It does no I/O and is deterministic for a given Input;
// it never plans a delete without evidence from the master.
//
// Files: state.go (the model: Folder, Meta, Snapshot, FolderMark), evidence.go
// (Tombstone, LedgerView, Evidence), action.go (Action, Plan), planner.go (folders),
// moveaside.go (diverged folders), meta.go (quota, seen, subscriptions, sieve),
// escalate.go (when a mailbox-level batch needs a full user sync), plan_names.go.
package plan
