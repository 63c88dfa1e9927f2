package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
	"github.com/cyrusrepl/cyrusrepl/internal/plan"
	"github.com/cyrusrepl/cyrusrepl/internal/state"
)

// Execute carries out a plan's actions in order. It returns the number of message
// bodies uploaded.
func (x *Executor) Execute(ctx context.Context, p *plan.Plan, in plan.Input) (sent int, err error) {
	// Every folder brought to the master's state is, right then, in step: note it even
	// if a later action fails, so the ledger's marks never lag our own writes.
	x.applied = map[string]appliedMark{}
	defer func() {
		if lerr := x.saveApplied(in.Now); lerr != nil {
			err = errors.Join(err, lerr)
		}
	}()
	// known: the replica folders RESERVE may link bodies from. Folders created earlier in
	// this batch join it, so a body copied into many new folders is uploaded once.
	known := slices.Clone(in.Replica.Folders)
	var folderErrs []error
	for _, a := range p.Actions {
		n, err := x.runAction(ctx, a, in, &known)
		sent += n
		if errors.Is(err, errNoted) {
			continue
		}
		err = x.notePartition(a, in.Replica.Folders, err)
		if err != nil {
			err = fmt.Errorf("%s: %w", a, err)
			if (a.Op == plan.OpCreate || a.Op == plan.OpUpdate) && folderConflict(err) {
				// The replica refused this folder's state (the session is fine): the
				// other folders of the user still go through; the batch fails at the end.
				folderErrs = append(folderErrs, err)
				continue
			}
			return sent, errors.Join(append(folderErrs, err)...)
		}
		x.progress()
	}
	return sent, errors.Join(folderErrs...)
}

// errNoted: the action's failure is noted for the next round (a split-brain to move
// aside) and does not fail the batch.
var errNoted = errors.New("noted for the next round")

// runAction carries out one action of a plan made from in. It returns the number of
// bodies uploaded; known (see Execute) grows by the folder a creation made.
func (x *Executor) runAction(ctx context.Context, a plan.Action, in plan.Input, known *[]plan.Folder) (int, error) {
	switch a.Op {
	case plan.OpDelete:
		if err := x.expectAt(ctx, a.Name, a.UniqueID, a.Expect); err != nil {
			return 0, err
		}
		if err := x.Replica.ApplyUnmailbox(ctx, a.Name, false); err != nil && !errors.Is(err, csync.ErrMailboxNonexistent) {
			return 0, err
		}
		return 0, nil
	case plan.OpRename:
		if err := x.expectAt(ctx, a.Name, a.UniqueID, a.Expect); err != nil {
			return 0, err
		}
		r := csync.Rename{Old: a.Name, New: a.NewName}
		if f := replicaByUID(in.Replica.Folders, a.UniqueID); f != nil {
			r.Partition, r.UIDValidity = f.Partition, f.UIDValidity
		}
		return 0, x.Replica.ApplyRename(ctx, r, false)
	case plan.OpCreate, plan.OpUpdate:
		n, err := x.syncMailbox(ctx, a, *known, replicaByUID(in.Replica.Folders, a.UniqueID))
		if err == nil && a.Op == plan.OpCreate {
			*known = append(*known, plan.Folder{Name: a.Name})
		}
		if a.Op == plan.OpUpdate && errors.Is(err, csync.ErrSyncChecksum) && in.Diverged[a.UniqueID] == "" {
			// The replica refused the master's state for a folder whose counters
			// did not show it ahead (e.g. the same UID holds other mail): evidence
			// of a split-brain; the batch plans again and moves the copy aside.
			x.noteDiverged(a.UniqueID, err)
			return n, errNoted
		}
		return n, err
	case plan.OpMoveAside:
		n, rescue, rescued, err := x.moveAside(ctx, a, in.Replica.Folders)
		if rescue != "" {
			x.emit(rescueLine{Type: "rescue", User: a.User, UniqueID: a.UniqueID, Name: a.Name, Rescue: rescue, Messages: rescued, Done: err == nil})
		}
		return n, err
	default:
		return 0, x.applyMeta(ctx, a)
	}
}

// folderConflict reports whether err is the replica refusing one folder's state
// (a NO reply that leaves the session usable), not a broken connection.
func folderConflict(err error) bool {
	if errors.Is(err, ErrChangedUnderUs) {
		return false
	}
	return errors.Is(err, csync.ErrSyncChecksum) || errors.Is(err, csync.ErrMailboxMoved)
}

func replicaByUID(fs []plan.Folder, uid string) *plan.Folder {
	for i := range fs {
		if fs[i].UniqueID == uid {
			return &fs[i]
		}
	}
	return nil
}

// syncMailbox creates or updates one folder from the master's full state: it uploads
// only the bodies APPLY RESERVE reports missing, streaming each from GET FETCH on the
// master into APPLY MESSAGE on the replica, then sends APPLY MAILBOX with a SINCE_*
// compare-and-set (retried when the replica moved on). The master's SYNC_CRCs make the
// replica verify the result end to end. read is the replica's folder as the plan saw
// it (nil: unknown): the first attempt of an update trusts it rather than reading the
// folder again, since the compare-and-set refuses the apply if the replica moved since.
func (x *Executor) syncMailbox(ctx context.Context, a plan.Action, replicaFolders []plan.Folder, read *plan.Folder) (int, error) {
	sent := 0
	fromIndex := a.Op == plan.OpUpdate && read != nil && read.UniqueID == a.UniqueID ||
		a.Op == plan.OpCreate && read == nil
	if fromIndex && x.MasterIndex != nil {
		n, outcome, err := x.syncDelta(ctx, a, replicaFolders, read)
		sent += n
		switch {
		case outcome == deltaDone:
			return sent, err
		case outcome == deltaRefused && x.replicaCached:
			// read came from the ledger and the replica refused it: the round reads
			// the replica and plans again. (An index doubt, deltaNotSent, goes on to
			// GET FULLMAILBOX below, whose apply carries read's SINCE_* too.)
			return sent, errReplicaUnread
		case outcome == deltaRefused:
			read = nil // the replica may have taken part of it: read it again
		}
	}
	master, err := x.Master.GetFullMailbox(ctx, a.Name)
	if errors.Is(err, csync.ErrMailboxNonexistent) {
		// Renamed or deleted on the master since we read it: plan again.
		return sent, fmt.Errorf("%w: master GET FULLMAILBOX %s: %w", ErrChangedUnderUs, a.Name, err)
	}
	if err != nil {
		return sent, fmt.Errorf("master GET FULLMAILBOX: %w", err)
	}
	if master.UniqueID != a.UniqueID {
		return sent, fmt.Errorf("%w: master %s now holds %s", ErrChangedUnderUs, a.Name, master.UniqueID)
	}
	if master.IsTombstoneOrIntermediate() {
		return sent, x.applyEmptied(ctx, a, master, read)
	}
	n, err := x.applyFull(ctx, a, master, read, replicaFolders)
	return sent + n, err
}

// applyEmptied brings the replica's folder to the master's tombstone or intermediate.
func (x *Executor) applyEmptied(ctx context.Context, a plan.Action, master *csync.Mailbox, read *plan.Folder) error {
	if a.Op == plan.OpUpdate {
		// This drops the replica folder's messages: re-check first, like a delete,
		// against the state the plan saw (the folder went so after the plan).
		var want *plan.FolderMark
		if read != nil {
			want = plan.Mark(read)
		}
		if err := x.expectAt(ctx, a.Name, a.UniqueID, want); err != nil {
			return err
		}
	}
	return x.Replica.ApplyMailbox(ctx, master)
}

// applyFull creates or updates the folder from the master's full state: the bodies the
// replica lacks, then APPLY MAILBOX with SINCE_* and the records changed since the
// replica's state (read, trusted on the first try; re-read after IMAP_SYNC_CHANGED).
func (x *Executor) applyFull(ctx context.Context, a plan.Action, master *csync.Mailbox, read *plan.Folder, replicaFolders []plan.Folder) (int, error) {
	const attempts = 3
	sent := 0
	for try := 1; ; try++ {
		cur, err := x.replicaStateFor(ctx, a, try, read)
		if err != nil {
			return sent, err
		}
		n, err := x.upload(ctx, master, cur, replicaFolders)
		sent += n
		if err != nil {
			return sent, err
		}
		err = x.Replica.ApplyMailbox(ctx, sinceReplica(master, cur))
		switch {
		case err == nil:
			x.noteApplied(master)
			return sent, nil
		case errors.Is(err, csync.ErrSyncChanged) && try < attempts:
			continue // the replica moved between our read and the apply: re-read, retry
		case errors.Is(err, csync.ErrSyncChecksum) && cur != nil:
			return sent, x.applyWhole(ctx, master, cur)
		default:
			return sent, fmt.Errorf("APPLY MAILBOX: %w", err)
		}
	}
}

// replicaStateFor is the replica's state an update of a.Name is sent against: the
// plan's on the first try, else read now (nil: a creation, or the folder is gone).
func (x *Executor) replicaStateFor(ctx context.Context, a plan.Action, try int, read *plan.Folder) (*csync.Mailbox, error) {
	switch {
	case a.Op == plan.OpUpdate && try == 1 && read != nil:
		return &csync.Mailbox{Name: a.Name, UniqueID: read.UniqueID, LastUID: read.LastUID,
			HighestModSeq: read.HighestModSeq, SyncCRC: read.SyncCRC, SyncCRCAnnot: read.SyncCRCAnnot}, nil
	case a.Op != plan.OpUpdate:
		return nil, nil
	}
	ms, err := x.Replica.GetMailboxes(ctx, []string{a.Name})
	if err != nil {
		return nil, fmt.Errorf("replica GET MAILBOXES: %w", err)
	}
	var cur *csync.Mailbox
	for i := range ms {
		if ms[i].Name == a.Name {
			cur = &ms[i]
		}
	}
	if cur != nil && cur.UniqueID != a.UniqueID {
		return nil, fmt.Errorf("%w: replica %s holds %s", ErrChangedUnderUs, a.Name, cur.UniqueID)
	}
	return cur, nil
}

// sinceReplica is the APPLY MAILBOX of master against the replica's state cur: SINCE_*
// and only the records changed since, like sync_client sends (cur nil: everything).
func sinceReplica(master, cur *csync.Mailbox) *csync.Mailbox {
	out := *master
	out.Raw = csync.Value{}
	if cur == nil {
		return &out
	}
	out.Since = &csync.Since{ModSeq: cur.HighestModSeq, CRC: cur.SyncCRC, CRCAnnot: cur.SyncCRCAnnot}
	out.Records = nil
	for _, r := range master.Records {
		if r.ModSeq > cur.HighestModSeq || r.UID > cur.LastUID {
			out.Records = append(out.Records, r)
		}
	}
	return &out
}

// applyWhole is sync_client's first retry after a checksum failure: the whole record
// list, no SINCE_*.
func (x *Executor) applyWhole(ctx context.Context, master, cur *csync.Mailbox) error {
	full := *master
	full.Raw = csync.Value{}
	if err := x.Replica.ApplyMailbox(ctx, &full); err != nil {
		if cur.LastUID > master.LastUID || cur.HighestModSeq > master.HighestModSeq {
			// Only writes on the replica itself get it past the master; sync_server
			// refuses to go back, and we never overwrite them.
			return fmt.Errorf("replica is ahead of the master (last_uid %d vs %d, highestmodseq %d vs %d): written on the replica, split-brain; left as it is: %w",
				cur.LastUID, master.LastUID, cur.HighestModSeq, master.HighestModSeq, err)
		}
		return fmt.Errorf("APPLY MAILBOX (full, after checksum failure): %w", err)
	}
	x.noteApplied(master)
	return nil
}

// upload stages on the replica every body the new records need: RESERVE first (the
// replica links copies it already holds, e.g. after a rename or COPY), then APPLY
// MESSAGE for the missing ones only.
func (x *Executor) upload(ctx context.Context, master, cur *csync.Mailbox, replicaFolders []plan.Folder) (int, error) {
	var lastUID uint32
	if cur != nil {
		lastUID = cur.LastUID
	}
	byGUID := map[string]csync.Record{}
	var guids []string
	for _, r := range master.Records {
		if r.UID <= lastUID || r.Expunged() {
			continue
		}
		if _, dup := byGUID[r.GUID]; !dup {
			byGUID[r.GUID] = r
			guids = append(guids, r.GUID)
		}
	}
	if len(guids) == 0 {
		return 0, nil
	}
	var names []string
	for _, f := range replicaFolders {
		if f.Partition == master.Partition || f.Partition == "" {
			names = append(names, f.Name)
		}
	}
	missing := guids
	if len(names) > 0 {
		var all []string
		for start := 0; start < len(guids); start += 8192 {
			chunk := guids[start:min(start+8192, len(guids))]
			m, err := x.Replica.ApplyReserve(ctx, master.Partition, names, chunk)
			if err != nil {
				return 0, fmt.Errorf("APPLY RESERVE: %w", err)
			}
			all = append(all, m...)
		}
		missing = all
	}
	if len(missing) == 0 {
		return 0, nil
	}
	sent := 0
	for start := 0; start < len(missing); start += 1024 {
		chunk := missing[start:min(start+1024, len(missing))]
		n, err := x.Replica.ApplyMessage(ctx, x.fetchBodies(ctx, master, chunk, byGUID))
		sent += n
		if err != nil {
			return sent, fmt.Errorf("APPLY MESSAGE: %w", err)
		}
	}
	return sent, nil
}

// fetchBodies streams bodies from the master one at a time: each GET FETCH body is read
// straight into the replica connection and closed before the next is opened.
func (x *Executor) fetchBodies(ctx context.Context, master *csync.Mailbox, guids []string, byGUID map[string]csync.Record) iter.Seq2[csync.Message, error] {
	return func(yield func(csync.Message, error) bool) {
		for _, g := range guids {
			r, ok := byGUID[g]
			if !ok {
				yield(csync.Message{}, fmt.Errorf("replica reported unknown GUID %s missing", g))
				return
			}
			body, err := x.Master.Fetch(ctx, csync.FetchRequest{MboxName: master.Name, Partition: master.Partition, UniqueID: master.UniqueID, GUID: g, UID: r.UID})
			if err != nil {
				yield(csync.Message{}, fmt.Errorf("master GET FETCH %s uid %d: %w", master.Name, r.UID, err))
				return
			}
			more := yield(csync.Message{Partition: master.Partition, GUID: g, Size: int64(body.Size), Body: progressReader{body, x.movedBytes}}, nil)
			if err := body.Close(); err != nil && more {
				yield(csync.Message{}, fmt.Errorf("master GET FETCH %s uid %d: %w", master.Name, r.UID, err))
				return
			}
			if !more {
				return
			}
			x.moved(1, 0) // streamed whole into APPLY MESSAGE
		}
	}
}

// applyMeta carries out quota, seen, subscription and sieve actions.
func (x *Executor) applyMeta(ctx context.Context, a plan.Action) error {
	switch a.Op {
	case plan.OpQuota:
		return x.Replica.ApplyQuota(ctx, &csync.Quota{Root: a.Quota.Root, Resources: a.Quota.Limits})
	case plan.OpUnquota:
		return x.Replica.ApplyUnquota(ctx, a.Quota.Root)
	case plan.OpSeen:
		s := a.Seen
		return x.Replica.ApplySeen(ctx, a.User, &csync.Seen{UniqueID: s.UniqueID, LastRead: s.LastRead, LastUID: s.LastUID, LastChange: s.LastChange, SeenUIDs: s.SeenUIDs})
	case plan.OpSub:
		return x.Replica.ApplySub(ctx, a.User, a.Sub)
	case plan.OpUnsub:
		return x.Replica.ApplyUnsub(ctx, a.User, a.Sub)
	case plan.OpSieve:
		s, err := x.Master.FetchSieve(ctx, a.User, a.Sieve.Name)
		if err != nil {
			return fmt.Errorf("master GET FETCH_SIEVE: %w", err)
		}
		s.UserID, s.LastUpdate = a.User, a.Sieve.LastUpdate
		if err := x.Replica.ApplySieve(ctx, s); err != nil {
			return err
		}
		if a.Sieve.Active {
			// The compiled script is what Cyrus marks active (NAME.bc).
			return x.Replica.ApplyActivateSieve(ctx, a.User, strings.TrimSuffix(a.Sieve.Name, ".script")+".bc")
		}
		return nil
	case plan.OpUnsieve:
		return x.Replica.ApplyUnsieve(ctx, a.User, a.Sieve.Name)
	case plan.OpUnactivateSieve:
		return x.Replica.ApplyUnactivateSieve(ctx, a.User)
	}
	return fmt.Errorf("unknown action %q", a.Op)
}

// rescueLine is the JSON line that names the rescue folder a move-aside used.
type rescueLine struct {
	Type     string `json:"type"`
	User     string `json:"user"`
	UniqueID string `json:"uniqueid"`
	Name     string `json:"mboxname"`
	Rescue   string `json:"rescue"`
	Messages int    `json:"messages"` // replica messages the master lacks, held by the rescue folder
	Done     bool   `json:"done"`     // the diverged folder was replaced by the master's
}

// noteDiverged records a folder the replica refused to bring to the master's state.
func (x *Executor) noteDiverged(uid string, err error) {
	if x.diverged == nil {
		x.diverged = map[string]string{}
	}
	if x.diverged[uid] == "" {
		x.newDiverged++
	}
	x.diverged[uid] = err.Error()
}

// appliedMark is a folder the batch brought to the master's state, and that state.
type appliedMark struct {
	name   string
	mark   plan.FolderMark
	folder plan.Folder
}

// noteApplied records that the replica's copy of m now equals it (APPLY MAILBOX carried
// m's SYNC_CRC, which the replica verified).
func (x *Executor) noteApplied(m *csync.Mailbox) {
	if x.applied != nil && m.UniqueID != "" {
		f := FolderFromMailbox(m)
		// The replica's partition is its own (it may map the master's): unknown here.
		f.Partition, f.Records = "", 0
		x.applied[m.UniqueID] = appliedMark{name: m.Name, mark: plan.MarkOf(&f), folder: f}
	}
}

// saveApplied writes the noted marks to the ledgers of their users.
func (x *Executor) saveApplied(now time.Time) error {
	applied := x.applied
	x.applied = nil
	if x.Ledger == nil || len(applied) == 0 {
		return nil
	}
	byUser := map[string][]string{}
	for uid, a := range applied {
		if u := mboxname.UserOf(a.name); u != "" {
			byUser[u] = append(byUser[u], uid)
		}
	}
	for u, uids := range byUser {
		_, err := x.Ledger.Update(u, func(l *state.UserLedger) bool {
			for _, uid := range uids {
				a := applied[uid]
				e, ok := l.Entries[uid]
				if !ok {
					e.FirstSeen = now
				}
				mark, folder := a.mark, a.folder
				e.Name, e.LastSeen, e.InStep, e.Applied = a.name, now, &mark, &folder
				l.Entries[uid] = e
			}
			return true
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// progressReader reports every read that moved bytes (the stall guard's ticks).
type progressReader struct {
	r    io.Reader
	tick func(n int)
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.tick(n)
	}
	return n, err
}
