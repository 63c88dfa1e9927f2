package executor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/cyrusrepl/cyrusrepl/internal/plan"
	"github.com/cyrusrepl/cyrusrepl/internal/state"
	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
)

// EscalationRecord is the JSON line written when a mailbox-level batch becomes a full
// user sync.
type EscalationRecord struct {
	Type   string   `json:"type"`
	Users  []string `json:"users"`
	Reason string   `json:"reason"`
}

// SyncWork runs a log batch. When every user of the batch only has MAILBOX/APPEND-level
// work, it compares just the named folders (plus their name history); if a folder then
// exists at one end only, a name is held by different uniqueids, or a uniqueid has
// different names, it escalates to a full user sync, as does any user-level entry.
func (x *Executor) SyncWork(ctx context.Context, work []synclog.UserWork) (*BatchResult, error) {
	users := make([]string, len(work))
	var names []string
	full := false
	for i, w := range work {
		users[i] = w.User
		full = full || w.Full || w.Meta || len(w.Mailboxes) == 0
		names = append(names, w.Mailboxes...)
	}
	if full {
		return x.Sync(ctx, users, false)
	}
	x.diverged, x.newDiverged, x.masterLines = nil, 0, nil
	defer x.releaseWriters()
	if err := x.holdWriters(ctx, users); err != nil {
		return nil, err
	}
	res, escalate, err := x.syncMailboxes(ctx, users, names)
	if err != nil || escalate == "" {
		return res, err
	}
	x.emit(EscalationRecord{Type: "escalation", Users: users, Reason: escalate})
	// What the mailbox-level pass did (actions, bodies, records) stays in the result.
	return x.sync(ctx, users, false, res)
}

// syncMailboxes is the mailbox-level path. It returns a non-empty reason when the batch
// must escalate to a full user sync instead.
func (x *Executor) syncMailboxes(ctx context.Context, users, names []string) (*BatchResult, string, error) {
	start := x.now()
	res := &BatchResult{Actions: map[string]int{}, MailboxLevel: true}
	sort.Strings(names)
	b := &mailboxBatch{users: users, names: slices.Compact(names), tryLedger: x.ReplicaCache}
rounds:
	for round := 0; round < maxRounds; round++ {
		p, why, err := x.planMailboxes(ctx, b)
		switch {
		case err != nil || why != "":
			return res, why, err
		case p == nil:
			round-- // read again (former names, or the replica after all); not a round
			continue
		}
		next, why, err := x.runMailboxPlan(ctx, res, b, p, round)
		switch {
		case err != nil || why != "":
			return res, why, err
		case next == roundAgain:
			round--
		case next == roundsDone:
			break rounds
		}
	}
	res.DurationMS = x.now().Sub(start).Milliseconds()
	x.userResults(res, users)
	return res, "", nil
}

// mailboxBatch is what the rounds of one mailbox-level batch carry over.
type mailboxBatch struct {
	users, names []string
	applied      bool // a round's plan has run
	widened      bool // the names include the former names from mailboxes.db
	tryLedger    bool // the next read may take the replica's side from the ledger
	// the current round
	in         plan.Input
	fromLedger bool
}

// roundOutcome is what runMailboxPlan leaves to the loop.
type roundOutcome int

const (
	nextRound  roundOutcome = iota // plan again: a new round
	roundAgain                     // plan again, not counting a round (the plan from the ledger gave way)
	roundsDone                     // finished
)

// planMailboxes reads the batch's folders at both ends and plans. A nil plan (no
// reason, no error) asks for another read without counting a round: the names grew by
// former names, or a plan from the ledger had more than updates to do.
func (x *Executor) planMailboxes(ctx context.Context, b *mailboxBatch) (*plan.Plan, string, error) {
	in, fromLedger, err := x.readRound(ctx, b.users, b.names, b.tryLedger)
	if err != nil {
		return nil, "", err
	}
	b.tryLedger, b.in, b.fromLedger = false, in, fromLedger
	if x.MailboxesDB != nil && !b.widened && !sameFolders(in.Master.Folders, in.Replica.Folders) {
		// Something was renamed, created or deleted: the names this batch touches
		// include every former name of its folders, from the master's mailboxes.db.
		b.widened = true
		var more bool
		if b.names, more, err = x.widen(ctx, b.users, b.names, in.Master.Folders); err != nil || more {
			return nil, "", err
		}
	}
	// A folder on the master only: ask the replica for its uniqueid under any name.
	absent, err := x.lookupMasterOnly(ctx, &b.in)
	if err != nil {
		return nil, "", err
	}
	if esc, why := plan.NeedsFullSync(b.names, in.Master.Folders, in.Replica.Folders, absent); esc {
		return nil, why, nil
	}
	p := plan.Compute(b.in)
	if fromLedger && !onlyUpdates(&p) {
		x.cacheEvent(CacheEvent{Reason: cacheNotOnlyUpdates, Folders: len(in.Replica.Folders)})
		return nil, "", nil
	}
	if slices.ContainsFunc(p.Actions, func(a plan.Action) bool { return a.Op == plan.OpMoveAside }) {
		// A split-brain: the rescue folder is a new folder of the user.
		return nil, "split-brain: a replica folder is ahead of the master's", nil
	}
	return &p, "", nil
}

// runMailboxPlan records and carries out a round's plan, and says what comes next.
func (x *Executor) runMailboxPlan(ctx context.Context, res *BatchResult, b *mailboxBatch, p *plan.Plan, round int) (roundOutcome, string, error) {
	in := b.in
	if !b.fromLedger && (!b.applied || p.Empty() || round < maxRounds-1) {
		// The first plan, and a later one about to run or only confirming and
		// keeping (recordPlan skips repeats). A plan from the ledger is recorded
		// once it ran: until then it may give way to one from the replica's state.
		x.recordPlan(res, p)
	}
	if p.Empty() {
		res.Equal = p.Blocked == 0
		return roundsDone, "", x.markInStep(b.users, in.Master.Folders, in.Replica.Folders)
	}
	if round == maxRounds-1 {
		return roundsDone, "", nil
	}
	x.replicaCached = b.fromLedger
	n, err := x.Execute(ctx, p, in)
	x.replicaCached = false
	res.BodiesSent += n
	b.applied = true
	if b.fromLedger {
		if errors.Is(err, errReplicaUnread) {
			x.cacheEvent(CacheEvent{Reason: cacheRefused, Folders: len(in.Replica.Folders)})
			return roundAgain, "", nil // read the replica and plan again
		}
		if err == nil {
			x.recordPlan(res, p)
			x.cacheEvent(CacheEvent{Folders: len(in.Replica.Folders)})
		}
	}
	if errors.Is(err, ErrChangedUnderUs) {
		return roundsDone, err.Error(), nil
	}
	if err != nil {
		return roundsDone, "", err
	}
	if err := x.Replica.Restart(ctx); err != nil {
		return roundsDone, "", fmt.Errorf("replica RESTART: %w", err)
	}
	if x.newDiverged > 0 {
		x.newDiverged = 0
		return roundsDone, "split-brain: the replica refused the master's state for a folder", nil
	}
	if checkedByUpdates(p) {
		// Every folder the plan touched ended with an update the replica accepted,
		// checked against the master's SYNC_CRCs (a renamed folder too): the replica
		// now holds what the plan read from the master, so reading both ends again
		// would only confirm it (a change since is in the sync log for the next
		// pass). The folders the plan left alone were in step as read; the updated
		// ones were noted by Execute.
		res.Equal = p.Blocked == 0
		return roundsDone, "", x.markInStep(b.users, in.Master.Folders, in.Replica.Folders)
	}
	return nextRound, "", nil
}

// readRound reads the named folders at both ends for a round's plan: the master's with
// GET MAILBOXES, the replica's likewise or, when tryLedger and the ledger records them
// all (replicaFromLedger), from the ledger (fromLedger).
func (x *Executor) readRound(ctx context.Context, users, names []string, tryLedger bool) (in plan.Input, fromLedger bool, err error) {
	ms, err := x.Master.GetMailboxes(ctx, names)
	if err != nil {
		return in, false, fmt.Errorf("master GET MAILBOXES: %w", err)
	}
	x.masterLines = nil
	x.noteMasterLines(ms)
	in = plan.Input{Pair: x.Pair, Now: x.now(), Users: users, HoldUnmarked: x.HoldUnmarked}
	// The in-step marks, as in the full path: a folder written on the replica since
	// it was last in step is never renamed into DELETED.* or deleted.
	ledgers, err := x.ledgers(users)
	if err != nil {
		return in, false, err
	}
	if ledgers != nil {
		in.Evidence.Ledger = ledgers
	}
	for i := range ms {
		in.Master.Folders = append(in.Master.Folders, FolderFromMailbox(&ms[i]))
	}
	if tryLedger {
		if in.Replica.Folders, fromLedger = x.replicaFromLedger(ledgers, names, in.Master.Folders); fromLedger {
			return in, true, nil
		}
	}
	rs, err := x.Replica.GetMailboxes(ctx, names)
	if err != nil {
		return in, false, fmt.Errorf("replica GET MAILBOXES: %w", err)
	}
	in.Replica.Folders = nil
	for i := range rs {
		in.Replica.Folders = append(in.Replica.Folders, FolderFromMailbox(&rs[i]))
	}
	return in, false, nil
}

// widen adds to names every former name of the master's folders, from the master's
// mailboxes.db; more reports whether that added any.
func (x *Executor) widen(ctx context.Context, users, names []string, master []plan.Folder) ([]string, bool, error) {
	var uids []string
	for _, f := range master {
		uids = append(uids, f.UniqueID)
	}
	db, err := x.MailboxesDB(ctx, users, uids)
	if err != nil {
		return names, false, fmt.Errorf("master mailboxes.db: %w", err)
	}
	before := len(names)
	for _, uid := range uids {
		names = append(names, db.History[uid]...)
	}
	sort.Strings(names)
	names = slices.Compact(names)
	return names, len(names) > before, nil
}

// lookupMasterOnly asks the replica where the uniqueids of the folders only the master
// holds (by name) are, for the plan's evidence; absent[uid] is true where nowhere.
func (x *Executor) lookupMasterOnly(ctx context.Context, in *plan.Input) (map[string]bool, error) {
	masterOnly := missingFrom(in.Master.Folders, in.Replica.Folders)
	absent := map[string]bool{}
	if len(masterOnly) == 0 {
		return absent, nil
	}
	found, err := lookupUIDs(ctx, x.Replica.GetUniqueIDs, masterOnly)
	if err != nil {
		return nil, fmt.Errorf("replica GET UNIQUEIDS: %w", err)
	}
	for uid, name := range found {
		absent[uid] = name == ""
	}
	in.Evidence.ReplicaLookup = found
	return absent, nil
}

// onlyUpdates reports whether every action of p updates an existing folder (no create,
// rename, delete or move aside): the plans whose success leaves nothing to re-check.
func onlyUpdates(p *plan.Plan) bool {
	for _, a := range p.Actions {
		if a.Op != plan.OpUpdate {
			return false
		}
	}
	return len(p.Actions) > 0
}

// checkedByUpdates reports whether every action of p is an update, or a rename of a
// folder that p then also updates: once they all succeeded, each folder's final state
// was checked by the replica against the master's SYNC_CRCs.
func checkedByUpdates(p *plan.Plan) bool { return checkedBy(p, plan.OpUpdate) }

// checkedByReplica is checkedByUpdates with folders created too (their APPLY MAILBOX
// carries the master's SYNC_CRCs as well), and user metadata (subscriptions, seen
// state, quota, sieve) sent by APPLYs the replica accepted as sent. A delete, a rename
// alone and a move-aside are not: they are confirmed by reading both ends again.
func checkedByReplica(p *plan.Plan) bool {
	return checkedBy(p, plan.OpCreate, plan.OpUpdate, plan.OpQuota, plan.OpUnquota, plan.OpSeen,
		plan.OpSub, plan.OpUnsub, plan.OpSieve, plan.OpUnsieve, plan.OpUnactivateSieve)
}

// checkedBy reports whether p has actions and each is of one of ops, or a rename of a
// folder p then also updates.
func checkedBy(p *plan.Plan, ops ...plan.Op) bool {
	updated := map[string]bool{}
	for _, a := range p.Actions {
		if a.Op == plan.OpUpdate {
			updated[a.UniqueID] = true
		}
	}
	for _, a := range p.Actions {
		if !slices.Contains(ops, a.Op) && (a.Op != plan.OpRename || !updated[a.UniqueID]) {
			return false
		}
	}
	return len(p.Actions) > 0
}

// sameFolders reports whether both ends hold the same uniqueids under the same names:
// then nothing was renamed, created or deleted, and mailboxes.db has nothing to add.
func sameFolders(master, replica []plan.Folder) bool {
	if len(master) != len(replica) {
		return false
	}
	at := make(map[string]string, len(master))
	for _, f := range master {
		at[f.UniqueID] = f.Name
	}
	for _, f := range replica {
		if name, ok := at[f.UniqueID]; !ok || name != f.Name || f.UniqueID == "" {
			return false
		}
	}
	return true
}

// markInStep records in the users' ledgers the state of the folders found in step
// (see LedgerEntry.InStep), so that a later delete can tell whether the replica was
// written since.
func (x *Executor) markInStep(users []string, master, replica []plan.Folder) error {
	if x.Ledger == nil {
		return nil
	}
	for _, u := range users {
		l, err := x.Ledger.Load(u)
		if err != nil {
			return err
		}
		if err := x.noteInLedger(l, master, replica, x.now()); err != nil {
			return err
		}
	}
	return nil
}

// ledgers is the batch users' part of the ledger (nil without a ledger).
func (x *Executor) ledgers(users []string) (state.Ledgers, error) {
	if x.Ledger == nil {
		return nil, nil
	}
	var ls state.Ledgers
	for _, u := range users {
		l, err := x.Ledger.Load(u)
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}
