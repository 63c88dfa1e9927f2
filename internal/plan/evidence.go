package plan

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
	// MailboxesDBRead: the master's mailboxes.db was read for this batch. Its silence
	// about a uniqueid then outweighs the ledger: a master restored from a backup taken
	// before a folder was created lacks the folder and any tombstone of it.
	MailboxesDBRead bool
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
	if name := e.goneFromMaster(uid); name != "" && !e.MailboxesDBRead {
		return report.EvidenceLedger, "seen on the master at " + name + ", now absent there by uniqueid"
	}
	return report.EvidenceNone, ""
}

// goneFromMaster returns the name the ledger saw uid at on the master when the master
// no longer holds it by uniqueid ("" otherwise).
func (e *Evidence) goneFromMaster(uid string) string {
	if e.Ledger == nil {
		return ""
	}
	name, ok := e.Ledger.SeenOnMaster(uid)
	if cur, looked := e.MasterLookup[uid]; !ok || !looked || cur != "" {
		return ""
	}
	return name
}

// overruledLedger says why the ledger's "seen on the master, now gone" did not count
// for uid ("" when it says nothing): the master's mailboxes.db has no tombstone for it.
func (e *Evidence) overruledLedger(uid string) string {
	if name := e.goneFromMaster(uid); name != "" && e.MailboxesDBRead {
		return "seen on the master at " + name + " and now absent there, but the master's mailboxes.db has no tombstone for it (a master restored from a backup looks like this)"
	}
	return ""
}

// sieveLedger is the optional part of a LedgerView that knows the master's scripts.
type sieveLedger interface {
	// SieveOnMaster returns the digest of user's script name when last seen on the master.
	SieveOnMaster(user, name string) (digest string, ok bool)
}

// sieveOnMaster asks the batch's ledger for the master's digest of a script.
func (e *Evidence) sieveOnMaster(user, name string) (string, bool) {
	if sl, ok := e.Ledger.(sieveLedger); ok {
		return sl.SieveOnMaster(user, name)
	}
	return "", false
}
