package executor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/cyrusindex"
	"github.com/cyrusrepl/cyrusrepl/internal/mboxdb"
	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
	"github.com/cyrusrepl/cyrusrepl/internal/plan"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/state"
)

// Executor carries out plans for batches of users over one master and one replica
// connection. It is not safe for concurrent use; run one per worker.
type Executor struct {
	Pair    string
	Master  MasterReader
	Replica ReplicaWriter
	// MailboxesDB reads the master's mailboxes.db records of the users' folders and of
	// the uniqueids uids (nil: not available). Called once per batch, so tombstones are
	// current.
	MailboxesDB func(ctx context.Context, users, uids []string) (*mboxdb.DB, error)
	Ledger      *state.Ledger // nil: no ledger
	Now         func() time.Time
	// Emit receives every decision and mismatch as it is made (e.g. JSON lines on stdout).
	Emit func(rec any)
	// Close releases the connections (nil: nothing to release).
	Close func()
	// Progress, when set, is called whenever the batch moves: message body bytes read
	// from the master, an action completed (the Runner's stall guard).
	Progress func()
	// Moved, when set, counts message bodies and bytes uploaded to the replica as they
	// stream (the replicator's progress records).
	Moved func(bodies int, bytes int64)

	// Writers, when set, keep one writer per user on the replica: a batch that writes
	// holds its users' locks from its first read to its last write.
	Writers *state.UserLocks
	// MasterIndex, when set, reads the master's mailbox indexes: an update then sends
	// the records changed since the replica's state instead of reading every record
	// with GET FULLMAILBOX (which stays the fallback). IndexStats hears how each went.
	MasterIndex cyrusindex.Source
	IndexStats  func(IndexEvent)
	// ReplicaCache lets the mailbox-level path (with MasterIndex and Ledger) plan the
	// updates of folders this replicator wrote last from the ledger's record of them
	// (LedgerEntry.Applied) instead of reading them on the replica, which makes the
	// replica scan every record of each: the update's SINCE_* is the check that the
	// folder is still as recorded. A plan with more than updates, or a refusal, and
	// the round reads the replica and plans again. CacheStats hears how each went.
	ReplicaCache bool
	CacheStats   func(CacheEvent)
	// HoldUnmarked keeps, instead of deleting on a tombstone or the ledger alone, a
	// replica folder whose in-step mark is unknown (Input.HoldUnmarked).
	HoldUnmarked bool
	// BeforeRecheck, when set (tests only), runs right before the replica folder at name
	// is re-read ahead of a destructive action: the seam where a test injects a write.
	BeforeRecheck func(name string)
	// ReplicaPartitions are the partitions the replica is known to have, shared by the
	// process's executors (nil: learn per batch only); see PartitionError.
	ReplicaPartitions *PartitionSet

	// diverged: folders the replica refused the master's state for in this batch (by
	// uniqueid); newDiverged counts the ones found since the last plan.
	diverged    map[string]string
	newDiverged int
	// applied: folders brought to the master's state by the current execute, by uniqueid.
	applied map[string]appliedMark
	// masterLines: the master's MAILBOX lines (no records) read by the current round,
	// by name; an update from the master's index takes its header fields from here
	// instead of asking the master again (see masterHeader).
	masterLines map[string]*csync.Mailbox
	// replicaCached: the current Execute runs a plan made from the ledger's record of
	// the replica (see ReplicaCache); a delta the replica refuses ends it with
	// errReplicaUnread.
	replicaCached bool
	// writersHeld: the users whose writer locks this executor holds.
	writersHeld    []string
	writersRelease func()
}

// BatchResult is the outcome of one batch.
type BatchResult struct {
	Users      []report.UserResult
	Decisions  []report.Decision
	Mismatches []report.Mismatch
	Actions    map[string]int // by report.Action, plus meta ops by Op
	BodiesSent int
	Kept       int  // replica-only folders kept for lack of evidence
	Equal      bool // after the batch, the replica equals the master (keeps aside)
	// MailboxLevel: only the logged folders were compared (no escalation was needed).
	MailboxLevel bool
	DurationMS   int64

	recorded map[string]bool // decisions and mismatches already in the result
}

// maxRounds bounds re-planning (after a concurrent change, and the verification pass).
// Rounds that only join more users do not count: they are bounded by maxJoins.
const (
	maxRounds = 4
	maxJoins  = 64
)

func (x *Executor) now() time.Time {
	if x.Now != nil {
		return x.Now()
	}
	return time.Now().UTC()
}

func (x *Executor) progress() {
	if x.Progress != nil {
		x.Progress()
	}
}

func (x *Executor) emit(rec any) {
	if x.Emit != nil {
		x.Emit(rec)
	}
}

// Sync brings the named users (and any user a cross-user rename joins) up to date, then
// re-reads both ends to confirm, unless the replica itself checked every change (see
// checkedByReplica). With verify it only compares and reports.
func (x *Executor) Sync(ctx context.Context, users []string, verify bool) (*BatchResult, error) {
	x.diverged, x.newDiverged, x.masterLines = nil, 0, nil
	defer x.releaseWriters()
	return x.sync(ctx, users, verify, nil)
}

// sync is Sync continuing res, the result of work already done in this batch (nil: none),
// e.g. a mailbox-level pass that escalated: its records and bodies stay in the result.
func (x *Executor) sync(ctx context.Context, users []string, verify bool, res *BatchResult) (*BatchResult, error) {
	start := x.now()
	if res == nil {
		res = &BatchResult{Actions: map[string]int{}}
	}
	res.MailboxLevel = false
	users = slices.Clone(users)
	sort.Strings(users)
	var lastPlan plan.Plan
	planned, checked := false, false
	for round, joins := 0, 0; round < maxRounds; round++ {
		if !verify {
			if err := x.holdWriters(ctx, users); err != nil {
				return res, err
			}
		}
		in, err := x.Gather(ctx, users)
		if err != nil {
			return res, err
		}
		p := plan.Compute(in)
		if len(p.NeedUsers) > 0 {
			// Folders moved to or from users outside the batch: they join, and the
			// round is planned again with them (not counted as a round).
			if joins++; joins > maxJoins {
				return res, fmt.Errorf("batch keeps asking for more users after %d joins (now %d users); not run", maxJoins, len(users))
			}
			users = slices.Compact(slices.Sorted(slices.Values(append(users, p.NeedUsers...))))
			round--
			continue
		}
		lastPlan, planned = p, true
		last := verify || p.Empty() || round == maxRounds-1
		if round == 0 || !last || p.Empty() {
			// The first plan is the record of what was found and decided; a later plan
			// (after a concurrent change or a refusal) adds the decisions it makes anew:
			// of the actions it is about to run, or a keep. A plan left unrun (no round
			// left) records nothing it did not do.
			x.recordPlan(res, &p)
		}
		if last {
			break
		}
		if checked, err = x.runUserPlan(ctx, res, &p, in, users, round); err != nil {
			return res, err
		}
		if checked {
			break
		}
	}
	res.Kept = lastPlan.Kept
	// Equal only from a plan that found nothing left to do, or whose every change the
	// replica checked.
	res.Equal = planned && (checked || lastPlan.Empty()) && len(lastPlan.NeedUsers) == 0 && lastPlan.Blocked == 0
	res.DurationMS += x.now().Sub(start).Milliseconds()
	res.Users = nil
	x.userResults(res, users)
	return res, nil
}

// runUserPlan carries out a user-level round's plan p, made from in. It reports checked
// when the batch needs no further round: the replica checked every change of p itself
// (see checkedByReplica), so it holds what the plan read from the master, and the
// master still holds that too. A confirming round would then only read the replica's
// folders again (GET USER opens every one of them) to find what was just applied.
func (x *Executor) runUserPlan(ctx context.Context, res *BatchResult, p *plan.Plan, in plan.Input, users []string, round int) (checked bool, err error) {
	n, err := x.Execute(ctx, p, in)
	res.BodiesSent += n
	if errors.Is(err, ErrChangedUnderUs) && round < maxRounds-1 {
		// Someone changed a folder between our read and our write (a rename on the
		// master, a write on the replica): read both ends again and re-plan.
		res.Actions["replan"]++
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := x.Replica.Restart(ctx); err != nil {
		return false, fmt.Errorf("replica RESTART: %w", err)
	}
	if x.newDiverged > 0 {
		if round >= maxRounds-2 {
			return false, fmt.Errorf("replica refused the master's state for %d folder(s) (split-brain) and no round is left to move them aside", x.newDiverged)
		}
		x.newDiverged = 0
		res.Actions["replan"]++
		return false, nil
	}
	if !checkedByReplica(p) {
		return false, nil
	}
	// The ledger needs nothing more: Gather marked the folders found in step as read,
	// and Execute noted the ones it applied.
	return x.masterUnchanged(ctx, users, in.Master)
}

// masterUnchanged reports whether the master still holds, for the users, exactly the
// folders (names, uniqueids, counters, CRCs, ACLs, annotations) and user metadata of
// read, the snapshot a plan was made from.
func (x *Executor) masterUnchanged(ctx context.Context, users []string, read plan.Snapshot) (bool, error) {
	var now []plan.Folder
	for _, u := range users {
		mu, err := x.Master.GetUser(ctx, u)
		if err != nil {
			return false, fmt.Errorf("master GET USER %s: %w", u, err)
		}
		side := sideFromUserState(mu)
		if !reflect.DeepEqual(side.meta, read.Meta[u]) {
			return false, nil
		}
		now = append(now, side.folders...)
	}
	return sameFolderStates(read.Folders, now), nil
}

// sameFolderStates reports whether a and b hold the same folders in the same state,
// in any order (History and Records, which GET USER does not give, left out).
func sameFolderStates(a, b []plan.Folder) bool {
	if len(a) != len(b) {
		return false
	}
	bare := func(f plan.Folder) plan.Folder { f.History, f.Records = nil, 0; return f }
	byKey := make(map[string]plan.Folder, len(a))
	for _, f := range a {
		byKey[f.UniqueID+"\x00"+f.Name] = bare(f)
	}
	for _, f := range b {
		g, ok := byKey[f.UniqueID+"\x00"+f.Name]
		if !ok || !reflect.DeepEqual(g, bare(f)) {
			return false
		}
	}
	return true
}

// recordPlan adds a plan's decisions and mismatches to the batch result and emits them,
// once each: a decision or mismatch already in the result (same uniqueid, names, action
// or kind) is not repeated by a later plan.
func (x *Executor) recordPlan(res *BatchResult, p *plan.Plan) {
	if res.recorded == nil {
		res.recorded = map[string]bool{}
	}
	for _, d := range p.Decisions {
		rname := d.ReplicaName
		if d.Action == report.ActionMoveAside {
			rname = "" // the rescue name carries the plan's time
		}
		key := "d|" + d.UniqueID + "|" + d.MasterName + "|" + rname + "|" + string(d.Action) + "|" + string(d.Evidence)
		if res.recorded[key] {
			continue
		}
		res.recorded[key] = true
		res.Decisions = append(res.Decisions, d)
		res.Actions[string(d.Action)]++
		x.emit(DecisionLine{Type: "decision", Decision: d})
	}
	for _, m := range p.Mismatches {
		key := "m|" + m.UniqueID + "|" + m.MasterName + "|" + m.ReplicaName + "|" + string(m.Kind)
		if res.recorded[key] {
			continue
		}
		res.recorded[key] = true
		res.Mismatches = append(res.Mismatches, m)
		x.emit(mismatchLine{Type: "mismatch", Mismatch: m})
	}
}

// userResults fills one UserResult per user of the batch.
func (x *Executor) userResults(res *BatchResult, users []string) {
	dur := res.DurationMS
	for _, u := range users {
		ur := report.UserResult{User: u, DurationMS: dur, BodiesSent: res.BodiesSent, Attempts: 1}
		for _, d := range res.Decisions {
			if d.User == u {
				ur.Decisions++
				if d.Action != report.ActionKeep {
					ur.Actions++
				}
			}
		}
		for _, m := range res.Mismatches {
			if m.User == u {
				ur.Mismatches++
			}
		}
		switch {
		case !res.Equal:
			ur.Outcome = report.OutcomeDiffers
		case ur.Actions > 0 || ur.Mismatches > 0:
			ur.Outcome = report.OutcomeSynced
		default:
			ur.Outcome = report.OutcomeEqual
		}
		res.Users = append(res.Users, ur)
	}
}

// DecisionLine is the JSON line of a decision (Executor.Emit).
type DecisionLine struct {
	Type string `json:"type"`
	report.Decision
}

type mismatchLine struct {
	Type string `json:"type"`
	report.Mismatch
}

// Gather reads both ends for the users and collects the evidence.
func (x *Executor) Gather(ctx context.Context, users []string) (plan.Input, error) {
	in := plan.Input{Pair: x.Pair, Now: x.now(), Users: users,
		Master:  plan.Snapshot{Meta: map[string]*plan.Meta{}},
		Replica: plan.Snapshot{Meta: map[string]*plan.Meta{}}}
	var ledgers state.Ledgers
	x.masterLines = map[string]*csync.Mailbox{}
	for _, u := range users {
		l, err := x.gatherUser(ctx, u, &in)
		if err != nil {
			return in, err
		}
		if l != nil {
			ledgers = append(ledgers, l)
		}
	}
	if x.Ledger != nil {
		in.Evidence.Ledger = ledgers
	}
	in.HoldUnmarked = x.HoldUnmarked
	if x.MailboxesDB != nil && !sameFolders(in.Master.Folders, in.Replica.Folders) {
		// Evidence is only needed where the ends disagree: an audit of users in step
		// reads nothing.
		var uids []string
		for _, fs := range [][]plan.Folder{in.Master.Folders, in.Replica.Folders} {
			for _, f := range fs {
				uids = append(uids, f.UniqueID)
			}
		}
		db, err := x.MailboxesDB(ctx, users, uids)
		if err != nil {
			return in, fmt.Errorf("master mailboxes.db: %w", err)
		}
		evidenceFromDB(db, &in.Evidence)
		for i := range in.Master.Folders {
			f := &in.Master.Folders[i]
			f.History = db.History[f.UniqueID]
		}
	}
	if len(x.diverged) > 0 {
		in.Diverged = maps.Clone(x.diverged)
	}
	// Look up one-end-only uniqueids at the other end, by uniqueid.
	var err error
	if in.Evidence.MasterLookup, err = lookupUIDs(ctx, x.Master.GetUniqueIDs, missingFrom(in.Replica.Folders, in.Master.Folders)); err != nil {
		return in, fmt.Errorf("master GET UNIQUEIDS: %w", err)
	}
	if in.Evidence.ReplicaLookup, err = lookupUIDs(ctx, x.Replica.GetUniqueIDs, missingFrom(in.Master.Folders, in.Replica.Folders)); err != nil {
		return in, fmt.Errorf("replica GET UNIQUEIDS: %w", err)
	}
	return in, nil
}

// gatherUser reads one user at both ends into in and notes what it found in the user's
// ledger, which it returns (nil without a ledger).
func (x *Executor) gatherUser(ctx context.Context, u string, in *plan.Input) (*state.UserLedger, error) {
	mu, err := x.Master.GetUser(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("master GET USER %s: %w", u, err)
	}
	x.noteMasterLines(mu.Mailboxes)
	if err := mboxname.CheckOwnNames(u, mailboxNames(mu)); err != nil {
		return nil, err
	}
	ru, err := x.Replica.GetUser(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("replica GET USER %s: %w", u, err)
	}
	ms, rs := sideFromUserState(mu), sideFromUserState(ru)
	in.Master.Folders = append(in.Master.Folders, ms.folders...)
	in.Replica.Folders = append(in.Replica.Folders, rs.folders...)
	if ms.meta != nil {
		in.Master.Meta[u] = ms.meta
	}
	if rs.meta != nil {
		in.Replica.Meta[u] = rs.meta
	}
	if x.Ledger == nil {
		return nil, nil
	}
	l, err := x.Ledger.Load(u)
	if err != nil {
		return nil, err
	}
	if err := x.noteInLedger(l, ms.folders, rs.folders, in.Now); err != nil {
		return nil, err
	}
	if err := x.noteSieve(l, ms.meta); err != nil {
		return nil, err
	}
	return l, nil
}

// noteMasterLines keeps the master's MAILBOX lines of this round (see masterLines).
func (x *Executor) noteMasterLines(ms []csync.Mailbox) {
	if x.masterLines == nil {
		x.masterLines = map[string]*csync.Mailbox{}
	}
	for i := range ms {
		x.masterLines[ms[i].Name] = &ms[i]
	}
}

// missingFrom lists the uniqueids of fs that no folder of other holds.
func missingFrom(fs, other []plan.Folder) []string {
	held, _ := plan.ByUID(other)
	var out []string
	for _, f := range fs {
		if _, ok := held[f.UniqueID]; !ok && f.UniqueID != "" && !slices.Contains(out, f.UniqueID) {
			out = append(out, f.UniqueID)
		}
	}
	return out
}

// noteInLedger records the user's live master folders and the in-step state of the
// replica's (see LedgerEntry.InStep) in the ledger of l's user, under its lock, and
// leaves l as written (with what other writers noted meanwhile).
func (x *Executor) noteInLedger(l *state.UserLedger, master, replica []plan.Folder, now time.Time) error {
	fresh, err := x.Ledger.Update(l.User, func(u *state.UserLedger) bool {
		recorded := u.Record(master, now)
		return u.MarkInStep(master, replica) || recorded
	})
	if err != nil {
		return err
	}
	*l = *fresh
	return nil
}

func lookupUIDs(ctx context.Context, get func(context.Context, []string) ([]csync.Mailbox, error), uids []string) (map[string]string, error) {
	out := map[string]string{}
	if len(uids) == 0 {
		return out, nil
	}
	sort.Strings(uids)
	for _, u := range uids {
		out[u] = ""
	}
	ms, err := get(ctx, uids)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if _, asked := out[m.UniqueID]; asked {
			out[m.UniqueID] = m.Name
		}
	}
	return out, nil
}

// ErrChangedUnderUs means the replica no longer holds the expected uniqueid at a name,
// or the folder's state moved on, right before a delete or rename: another writer is
// active. The batch plans again.
var ErrChangedUnderUs = errors.New("replica changed under us")

// expectAt re-reads the replica folder at name immediately before a delete or rename
// is sent, and goes ahead only if it still holds uid and, when want is set, still has
// that state (last_uid, highestmodseq, sync_crc): mail that reached the folder after the
// plan read it is never dropped on the plan's stale view.
func (x *Executor) expectAt(ctx context.Context, name, uid string, want *plan.FolderMark) error {
	if x.BeforeRecheck != nil {
		x.BeforeRecheck(name)
	}
	ms, err := x.Replica.GetMailboxes(ctx, []string{name})
	if err != nil {
		return fmt.Errorf("replica GET MAILBOXES %s: %w", name, err)
	}
	for i := range ms {
		m := &ms[i]
		if m.Name != name {
			continue
		}
		if m.UniqueID != uid {
			return fmt.Errorf("%w: %s holds %s, expected %s", ErrChangedUnderUs, name, m.UniqueID, uid)
		}
		got := plan.FolderMark{LastUID: m.LastUID, HighestModSeq: m.HighestModSeq, SyncCRC: m.SyncCRC}
		if want != nil && got != *want {
			return fmt.Errorf("%w: %s moved on since the plan (last_uid %d → %d, highestmodseq %d → %d, sync_crc %d → %d)",
				ErrChangedUnderUs, name, want.LastUID, got.LastUID, want.HighestModSeq, got.HighestModSeq, want.SyncCRC, got.SyncCRC)
		}
		return nil
	}
	return fmt.Errorf("%w: %s is gone, expected %s", ErrChangedUnderUs, name, uid)
}

// evidenceFromDB merges what the master's mailboxes.db says into the planner's evidence.
func evidenceFromDB(db *mboxdb.DB, e *plan.Evidence) {
	if db == nil {
		return
	}
	if db.Tombstones != nil {
		e.Tombstones = make(map[string]plan.Tombstone, len(db.Tombstones))
		for uid, t := range db.Tombstones {
			e.Tombstones[uid] = plan.Tombstone(t)
		}
	}
	e.History = db.History
	e.MailboxesDBRead = true
}
