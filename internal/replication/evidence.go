package replication

import "github.com/cyrusrepl/cyrusrepl/internal/report"

// Tombstone is what the master's mailboxes.db says about a uniqueid that is no longer a
// live folder: an N record of type "…d" (a real tombstone), or an orphaned I record
// whose name no longer exists (a purged DELETED.* folder, Cyrus 3.6.1 §6.2).
type Tombstone struct {
	UniqueID string
	Name     string // internal name the tombstone or orphan record is at
	Orphan   bool   // true: I record without a live N record; false: an N tombstone
	MTime    int64
}

// LedgerView answers whether the replicator has ever seen a uniqueid live on the master.
type LedgerView interface {
	SeenOnMaster(uniqueid string) (name string, ok bool)
	// LastInStep is the replica folder's state when it last matched the master's.
	LastInStep(uniqueid string) (FolderMark, bool)
}

// Evidence is everything the planner may use to decide about folders the two ends
// disagree on, strongest first. Every field may be nil: missing evidence never leads to
// a delete.
type Evidence struct {
	// Tombstones by uniqueid, from the master's mailboxes.db (nil: not read).
	Tombstones map[string]Tombstone
	// History by uniqueid: former names from the master's I records.
	History map[string][]string
	// MasterLookup: replica-only uniqueids looked up on the master by uniqueid
	// (GET UNIQUEIDS): uid → current master name, "" when the master has no live folder
	// with it. A uid missing from the map was not looked up.
	MasterLookup map[string]string
	// ReplicaLookup: master uniqueids absent from the replica snapshot, looked up on the
	// replica by uniqueid: uid → replica name, "" when absent.
	ReplicaLookup map[string]string
	// Ledger of uniqueids seen on the master (nil: none kept).
	Ledger LedgerView
}

// deletion returns the evidence that the master deleted uniqueid uid, strongest first.
// It never consults the DELETED.* namespace: a uid the master holds under DELETED.* is
// live on the master and is matched by uniqueid (a mirrored delayed delete).
func (e *Evidence) deletion(uid string) (report.Evidence, string) {
	if t, ok := e.Tombstones[uid]; ok {
		if t.Orphan {
			return report.EvidenceTombstone, "master mailboxes.db: I record for " + t.Name + " whose folder was purged"
		}
		return report.EvidenceTombstone, "master mailboxes.db: tombstone at " + t.Name
	}
	if e.Ledger != nil {
		if name, ok := e.Ledger.SeenOnMaster(uid); ok {
			if cur, looked := e.MasterLookup[uid]; looked && cur == "" {
				return report.EvidenceLedger, "seen on the master at " + name + ", now absent there by uniqueid"
			}
		}
	}
	return report.EvidenceNone, ""
}
