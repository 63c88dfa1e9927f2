package executor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/cyrusindex"
	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
	"github.com/cyrusrepl/cyrusrepl/internal/plan"
)

// IndexEvent says how one folder update went with the master's index: sent as a delta
// (Reason ""), or fallen back to GET FULLMAILBOX and why.
type IndexEvent struct {
	Reason   string        // "" for a delta; else why the update fell back
	Whole    bool          // a folder new to the replica: every record, read from the index
	Records  int           // records the delta carried
	Scanned  int           // index records looked at
	Duration time.Duration // from the master's MAILBOX line to the decision (the index read included)
}

// Fallback reasons beyond cyrusindex.Reason's.
const (
	fallbackChecksum     = "sync-checksum"  // the replica's SYNC_CRC check refused the delta
	fallbackChanged      = "sync-changed"   // the replica moved since its state was read
	fallbackMismatch     = "index-mismatch" // another mailbox, name or uidvalidity than the server's or the replica's
	fallbackBehind       = "index-behind"   // the index is older than what the server said
	fallbackReplicaAhead = "replica-ahead"  // the replica is past the master: the full path decides
	fallbackPurged       = "purged-since"   // expunged records were purged after the replica's modseq
	fallbackNotMailbox   = "not-a-mailbox"  // tombstone, intermediate, or gone on the master
	fallbackMoved        = "replica-moved"  // planned from the ledger, the replica's folder moved
)

func (x *Executor) indexEvent(ev IndexEvent) {
	if x.IndexStats != nil {
		x.IndexStats(ev)
	}
}

// deltaOutcome is how syncDelta ended.
type deltaOutcome int

const (
	deltaDone    deltaOutcome = iota // applied (or failed for good: see the error)
	deltaNotSent                     // nothing sent: update from GET FULLMAILBOX
	deltaRefused                     // the replica refused it (and may have taken part): re-read it, then update in full
)

// syncDelta updates a folder from the master's index, as sync_client does from its own:
// the header fields and only the records changed since the replica's highestmodseq
// (or above its last UID), with SINCE_* and the master's SYNC_CRCs, which the replica
// checks over all its records. With read nil (a folder new to the replica) it sends
// every record the index holds, expunged ones included, as GET FULLMAILBOX would have
// listed them, and no SINCE_*. Unless the outcome is deltaDone, the caller updates
// from GET FULLMAILBOX (the reason is counted).
func (x *Executor) syncDelta(ctx context.Context, a plan.Action, replicaFolders []plan.Folder, read *plan.Folder) (int, deltaOutcome, error) {
	start := time.Now()
	master, reason, err := x.masterHeader(ctx, a)
	if err != nil {
		return 0, deltaDone, err
	}
	if reason != "" {
		x.indexEvent(IndexEvent{Reason: reason, Duration: time.Since(start)})
		return 0, deltaNotSent, nil
	}
	var want cyrusindex.Want
	var cur *csync.Mailbox // the replica's state the records are sent against (nil: none)
	if read != nil {
		want = cyrusindex.Want{SinceModSeq: read.HighestModSeq, AfterUID: read.LastUID}
		cur = &csync.Mailbox{Name: read.Name, UniqueID: read.UniqueID, LastUID: read.LastUID, HighestModSeq: read.HighestModSeq}
	}
	idx, err := x.MasterIndex.ReadIndex(ctx, cyrusindex.Folder{Name: master.Name, UniqueID: master.UniqueID, Partition: master.Partition, Owner: mboxname.UserOf(master.Name)}, want)
	took := time.Since(start)
	ev := IndexEvent{Whole: read == nil, Duration: took}
	if err != nil {
		ev.Reason = cyrusindex.Reason(err)
		x.indexEvent(ev)
		return 0, deltaNotSent, nil
	}
	ev.Scanned = idx.Scanned
	if ev.Reason = deltaDoubt(master, idx, read); ev.Reason != "" {
		x.indexEvent(ev)
		return 0, deltaNotSent, nil
	}
	out := deltaMailbox(master, idx, read)
	if read != nil && newBodyBytes(out, read.LastUID) <= reserveWorthBytes {
		// APPLY RESERVE makes the replica scan every record of the named folders for
		// the GUIDs: for a few small new messages (the usual delivery) uploading them
		// costs less than that scan of a large folder. A copy the replica already holds
		// is then sent again; nothing else changes.
		replicaFolders = nil
	}
	n, err := x.upload(ctx, out, cur, replicaFolders)
	if err != nil {
		return n, deltaDone, err
	}
	ev.Records = len(out.Records)
	switch err := x.Replica.ApplyMailbox(ctx, out); {
	case err == nil:
		x.noteApplied(out)
		x.indexEvent(ev)
		return n, deltaDone, nil
	case errors.Is(err, csync.ErrSyncChecksum):
		ev.Reason = fallbackChecksum
	case errors.Is(err, csync.ErrSyncChanged):
		ev.Reason = fallbackChanged
	case x.replicaCached && errors.Is(err, csync.ErrMailboxMoved):
		// Planned from the ledger: the replica holds this uniqueid under another name
		// now (or another folder at this name); Cyrus refused before writing.
		ev.Reason = fallbackMoved
	default:
		return n, deltaDone, fmt.Errorf("APPLY MAILBOX (delta from the master's index): %w", err)
	}
	x.indexEvent(ev)
	return n, deltaRefused, nil
}

// reserveWorthBytes: below this many bytes of new bodies, a delta uploads them without
// asking the replica which it holds (APPLY RESERVE).
const reserveWorthBytes = 256 << 10

// newBodyBytes sums the sizes of the records above lastUID (the bodies an update may
// need to upload), expunged ones left out.
func newBodyBytes(m *csync.Mailbox, lastUID uint32) uint64 {
	var n uint64
	for _, r := range m.Records {
		if r.UID > lastUID && !r.Expunged() {
			n += uint64(r.Size)
		}
	}
	return n
}

// masterHeader is the master's MAILBOX line (no records): the fields the index does
// not hold (partition, ACL, mailbox annotations, foldermodseq). It is the line this
// round's plan was made from when the round read it (GET MAILBOXES or GET USER, the
// same line): asking again would only open the folder on the master once more, and
// the index, read after it, must be at least as new (deltaDoubt), so a change since
// the read is either in the delta's counters and records or sends the update to the
// full path. Otherwise it is read now. A reason means: leave it to the full path,
// which knows what to do with a folder that changed.
func (x *Executor) masterHeader(ctx context.Context, a plan.Action) (*csync.Mailbox, string, error) {
	if m := x.masterLines[a.Name]; m != nil && m.UniqueID == a.UniqueID {
		if m.IsTombstoneOrIntermediate() {
			return nil, fallbackNotMailbox, nil
		}
		return m, "", nil
	}
	ms, err := x.Master.GetMailboxes(ctx, []string{a.Name})
	if err != nil {
		return nil, "", fmt.Errorf("master GET MAILBOXES: %w", err)
	}
	for i := range ms {
		m := &ms[i]
		if m.Name == a.Name && m.UniqueID == a.UniqueID && !m.IsTombstoneOrIntermediate() {
			return m, "", nil
		}
	}
	return nil, fallbackNotMailbox, nil
}

// deltaDoubt names a reason not to trust the index read for this update (read nil: a
// folder new to the replica), or "".
func deltaDoubt(master *csync.Mailbox, idx *cyrusindex.Index, read *plan.Folder) string {
	h := &idx.Header
	switch {
	case idx.Mailbox.UniqueID != master.UniqueID || h.UIDValidity != master.UIDValidity || idx.Mailbox.Name != master.Name:
		return fallbackMismatch
	case h.HighestModSeq < master.HighestModSeq || h.LastUID < master.LastUID:
		return fallbackBehind
	case read == nil:
		return ""
	case read.UIDValidity != h.UIDValidity:
		return fallbackMismatch
	case read.HighestModSeq > h.HighestModSeq || read.LastUID > h.LastUID:
		return fallbackReplicaAhead
	case read.HighestModSeq < h.DeletedModSeq:
		// Records expunged after the replica's state may be gone from the index: a
		// delta could not tell the replica about them (sync_client's IMAP_AGAIN).
		return fallbackPurged
	}
	return ""
}

// deltaMailbox is the APPLY MAILBOX of a delta: master's line with the index header's
// counters and CRCs (read under the same lock as the records), the changed records, and
// the replica's state as SINCE_* (read nil: none, the folder is new to the replica).
func deltaMailbox(master *csync.Mailbox, idx *cyrusindex.Index, read *plan.Folder) *csync.Mailbox {
	out := *master
	out.Raw = csync.Value{}
	h := &idx.Header
	out.LastUID, out.HighestModSeq, out.UIDValidity = h.LastUID, h.HighestModSeq, h.UIDValidity
	out.RecentUID, out.RecentTime = h.RecentUID, int64(h.RecentTime)
	out.LastAppendDate, out.POP3LastLogin, out.POP3ShowAfter = int64(h.LastAppendDate), int64(h.POP3LastLogin), int64(h.POP3ShowAfter)
	out.SyncCRC, out.SyncCRCAnnot = h.SyncCRC, h.SyncCRCAnnot
	out.Options = h.SyncOptions()
	if h.CreatedModSeq != 0 {
		out.CreatedModSeq = h.CreatedModSeq
	}
	if read != nil {
		out.Since = &csync.Since{ModSeq: read.HighestModSeq, CRC: read.SyncCRC, CRCAnnot: read.SyncCRCAnnot}
	}
	out.Records = IndexRecords(idx.Records)
	out.HasRecords = true
	return &out
}

// IndexRecords renders index records as csync RECORD entries.
func IndexRecords(recs []cyrusindex.Record) []csync.Record {
	out := make([]csync.Record, len(recs))
	for i := range recs {
		r := &recs[i]
		cr := csync.Record{UID: r.UID, ModSeq: r.ModSeq, LastUpdated: int64(r.LastUpdated), Flags: r.Flags,
			InternalDate: int64(r.InternalDate), Size: r.Size, GUID: r.GUIDHex()}
		if cr.Flags == nil {
			cr.Flags = []string{}
		}
		for _, an := range r.Annotations {
			cr.Annotations = append(cr.Annotations, csync.Annotation{Entry: an.Entry, UserID: an.UserID, ModSeq: an.ModSeq, Value: an.Value})
		}
		out[i] = cr
	}
	return out
}
