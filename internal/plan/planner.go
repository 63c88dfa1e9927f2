package plan

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// Input is everything the planner looks at for one batch. It is plain data: the planner
// does no I/O and is deterministic for a given Input.
type Input struct {
	Pair     string
	Now      time.Time
	Users    []string // the users of the batch
	Master   Snapshot
	Replica  Snapshot
	Evidence Evidence
	// Diverged holds uniqueids whose replica copy the replica refused to bring to the
	// master's state (IMAP_SYNC_CHECKSUM) earlier in this batch, with why: seen by the
	// executor, it is evidence of a split-brain the counters alone may not show.
	Diverged map[string]string
	// HoldUnmarked: a delete resting on a tombstone or the ledger also needs the
	// folder's in-step mark (the ledger's LastInStep). Without one, whether the replica
	// took mail in the folder since is unknown, so it is kept (evidence no-mark).
	HoldUnmarked bool
}

// move is a pending rename of a replica folder; expect is set when the rename drops
// the folder's mail (into DELETED.*).
type move struct {
	uid, from, to string
	expect        *FolderMark
}

// planner holds the working state of one Plan call.
type planner struct {
	in      *Input
	out     Plan
	m, r    map[string]*Folder // by uniqueid
	inBatch map[string]bool
	moves   []move
	deletes []*Folder
	creates []*Folder
	updates []*Folder
	asides  []aside
	need    map[string]bool
	// occupied is the replica's name → uniqueid map as the plan proceeds.
	occupied map[string]string
}

// Compute plans one batch: the ordered actions that make the replica equal to the master
// for every live master folder, plus a decision record for every folder acted on or
// kept, and a mismatch record for every difference found. It never plans a delete
// without evidence from the master.
func Compute(in Input) Plan {
	p := &planner{in: &in, inBatch: map[string]bool{}, need: map[string]bool{}}
	for _, u := range in.Users {
		p.inBatch[u] = true
	}
	var dups []*Folder
	p.m, _ = ByUID(in.Master.Folders)
	p.r, dups = ByUID(in.Replica.Folders)
	for _, d := range dups {
		p.mismatch(report.MismatchUniqueIDCollision, d.UniqueID, "", d.Name, "uniqueid held twice on the replica; left alone")
	}
	p.matchMaster()
	blocked := p.replicaOnly()
	p.orderRenames()
	p.emitCreatesUpdates(blocked)
	p.meta()
	for u := range p.need {
		p.out.NeedUsers = append(p.out.NeedUsers, u)
	}
	sort.Strings(p.out.NeedUsers)
	return p.out
}

// matchMaster walks the master's folders and pairs them with the replica's by uniqueid.
func (p *planner) matchMaster() {
	for _, m := range sortedFolders(p.m) {
		r, ok := p.r[m.UniqueID]
		if !ok {
			p.masterOnly(m)
			continue
		}
		if p.keptFromDeletedNamespace(m, r) {
			continue
		}
		if r.Name != m.Name {
			p.renameTo(m, r)
		}
		if d := ContentDiff(m, r); d != "" {
			p.matchContent(m, r, d)
		}
	}
}

// masterOnly plans a master folder the replica snapshot lacks.
func (p *planner) masterOnly(m *Folder) {
	if name := p.in.Evidence.ReplicaLookup[m.UniqueID]; name != "" {
		// The replica holds it under a user outside the batch: that user must join.
		p.need[mboxname.UserOf(name)] = true
		p.mismatch(report.MismatchNameDiffers, m.UniqueID, m.Name, name, "held by another user on the replica; both users join the batch")
		return
	}
	p.creates = append(p.creates, m)
	p.mismatch(report.MismatchMissingOnReplica, m.UniqueID, m.Name, "", "")
}

// keptFromDeletedNamespace reports whether the replica's live copy of a folder the master
// deleted (delayed: moved to DELETED.*) is kept because the replica took mail in it
// meanwhile: sync_server would refuse the master's older state, and the new mail must
// not go.
func (p *planner) keptFromDeletedNamespace(m, r *Folder) bool {
	if !mboxname.IsDeletedName(m.Name) || mboxname.IsDeletedName(r.Name) || r.Intermediate() {
		return false
	}
	written := aheadOf(m, r)
	if written == "" {
		written = p.writtenSinceInStep(r)
	}
	if written == "" {
		return false
	}
	p.mismatch(report.MismatchContentDiffers, m.UniqueID, m.Name, r.Name, "written on the replica after the master deleted it: "+written)
	p.keepWritten(m, r, "the master moved the folder to its DELETED namespace", written)
	return true
}

// renameTo plans the rename of the replica's folder to the master's name; a rename into
// DELETED.* (a mirrored delayed delete) carries the folder's state for compare-and-delete.
func (p *planner) renameTo(m, r *Folder) {
	mv := move{uid: m.UniqueID, from: r.Name, to: m.Name}
	action, ev, reason := report.ActionRename, report.EvidenceNameHistory, p.renameReason(m, r)
	if mboxname.IsDeletedName(m.Name) && !mboxname.IsDeletedName(r.Name) {
		mv.expect = Mark(r)
		action, ev = report.ActionMirrorDelete, report.EvidenceDeletedNamespace
		reason = "master moved the folder to its DELETED namespace (delayed delete); " + reason
	}
	p.moves = append(p.moves, mv)
	p.mismatch(report.MismatchNameDiffers, m.UniqueID, m.Name, r.Name, "")
	p.decide(action, ev, m.UniqueID, m.Name, r.Name, reason)
}

// matchContent plans a folder both ends hold whose contents differ (d says how).
func (p *planner) matchContent(m, r *Folder, d string) {
	split := p.diverged(m, r)
	if split != "" {
		d = "split-brain: " + split + "; " + d
	}
	p.mismatch(report.MismatchContentDiffers, m.UniqueID, m.Name, r.Name, d)
	switch why := p.in.Diverged[m.UniqueID]; {
	case m.Intermediate() && !r.Intermediate() && m.Name == r.Name:
		p.masterIntermediate(m, r)
	case split != "":
		p.moveAside(m, r, split)
	case why != "" && mboxname.IsDeletedName(m.Name):
		// Deleted on the master, and the replica refuses its state: the copy was
		// written on the replica; nothing is rescued for a deleted folder.
		p.keepWritten(m, r, "the master moved the folder to its DELETED namespace", "the replica refused the master's state: "+why)
	default:
		p.updates = append(p.updates, m)
		p.decide(report.ActionUpdate, report.EvidenceNone, m.UniqueID, m.Name, r.Name, d)
	}
}

// masterIntermediate decides about a live replica folder whose uniqueid the master
// holds as an intermediate (the folder deleted, its name kept for its children). A 3.6
// replica does not turn a live folder into an intermediate through APPLY MAILBOX, so:
// delete (state re-checked), then create the intermediate; the master's own GET USER is
// the evidence. Unless the replica took mail in it since the two last matched, or its
// in-step mark is unknown while the state is new or lost (HoldUnmarked): kept.
func (p *planner) masterIntermediate(m, r *Folder) {
	if written := p.writtenSinceInStep(r); written != "" {
		p.keepWritten(m, r, "the master deleted the folder and holds its uniqueid as an intermediate", written)
		return
	}
	if p.in.HoldUnmarked && !p.marked(r) {
		// The replica folder keeps the name; the master's children still sync under it.
		p.out.Kept++
		p.decide(report.ActionKeep, report.EvidenceNoMark, m.UniqueID, m.Name, r.Name,
			"the master holds this uniqueid as an intermediate (folder deleted), but its in-step mark is unknown (state new or lost since), so mail written on the replica since cannot be ruled out; kept")
		return
	}
	p.deletes = append(p.deletes, r)
	p.creates = append(p.creates, m)
	p.decide(report.ActionDelete, report.EvidenceIntermediate, m.UniqueID, m.Name, r.Name,
		"the master holds this uniqueid as an intermediate (folder deleted, name kept for its children)")
}

// keepWritten keeps a replica folder the master deleted (how: deleted) because it was
// written on the replica since (written), and records the decision.
func (p *planner) keepWritten(m, r *Folder, deleted, written string) {
	p.out.Kept++
	p.decide(report.ActionKeep, report.EvidenceSplitBrain, m.UniqueID, m.Name, r.Name,
		deleted+", but it was written on the replica since ("+written+"); kept under its name (split-brain)")
}

func (p *planner) renameReason(m, r *Folder) string {
	hist := append(slices.Clone(m.History), p.in.Evidence.History[m.UniqueID]...)
	if slices.Contains(hist, r.Name) {
		return "same uniqueid; master name history has " + r.Name
	}
	return "same uniqueid under another name"
}

// replicaOnly decides about replica folders the master does not hold (by uniqueid), and
// about replica folders sitting on a name a master folder needs. It returns the master
// names that cannot be taken in this batch.
func (p *planner) replicaOnly() map[string]string {
	target := p.masterTargets()
	blocked := map[string]string{}
	for _, r := range sortedFolders(p.r) {
		if _, ok := p.m[r.UniqueID]; ok {
			continue
		}
		wanted, collide := target[r.Name]
		switch {
		case p.heldByOtherUser(r):
			if collide {
				blocked[r.Name] = wanted
			}
		case p.onDeletionEvidence(r, collide):
		case collide:
			p.freeNameFor(r, wanted, blocked)
		default:
			p.keepWithoutEvidence(r)
		}
	}
	return blocked
}

// masterTargets are the names master folders will hold on the replica after this plan
// (name → uniqueid).
func (p *planner) masterTargets() map[string]string {
	target := map[string]string{}
	for uid, m := range p.m {
		if _, ok := p.r[uid]; ok || p.in.Evidence.ReplicaLookup[uid] == "" {
			target[m.Name] = uid
		}
	}
	return target
}

// heldByOtherUser reports whether the master holds the replica folder's uniqueid under
// another user: that user joins the batch (a cross-user rename).
func (p *planner) heldByOtherUser(r *Folder) bool {
	name := p.in.Evidence.MasterLookup[r.UniqueID]
	if name == "" {
		return false
	}
	p.need[mboxname.UserOf(name)] = true
	p.mismatch(report.MismatchNameDiffers, r.UniqueID, name, r.Name, "held by another user on the master; both users join the batch")
	return true
}

// onDeletionEvidence decides about a replica-only folder by the evidence that the master
// deleted it: delete, or keep when the replica took mail in it since the two last matched
// or when its in-step mark is unknown (HoldUnmarked). It returns false when there is no
// such evidence, or, for a folder on a name a master folder needs (collide) whose mark is
// unknown, not enough to delete: that folder is moved aside instead, freeing the name.
func (p *planner) onDeletionEvidence(r *Folder, collide bool) bool {
	ev, why := p.in.Evidence.deletion(r.UniqueID)
	if ev == report.EvidenceNone {
		return false
	}
	unmarked := p.in.HoldUnmarked && !p.marked(r)
	switch written := p.writtenSinceInStep(r); {
	case written != "":
		// Deleting would lose the mail the replica took since: keep and say so.
		p.out.Kept++
		p.mismatch(report.MismatchReplicaOnly, r.UniqueID, "", r.Name, "written on the replica after it was last in step: "+written)
		p.decide(report.ActionKeep, report.EvidenceSplitBrain, r.UniqueID, "", r.Name,
			"the master deleted it ("+why+"), but it was written on the replica since it was last in step ("+written+"); kept (split-brain)")
	case unmarked && collide:
		return false
	case unmarked:
		p.out.Kept++
		p.mismatch(report.MismatchReplicaOnly, r.UniqueID, "", r.Name, "in-step mark unknown")
		p.decide(report.ActionKeep, report.EvidenceNoMark, r.UniqueID, "", r.Name,
			"the master deleted it ("+why+"), but its in-step mark is unknown (state new or lost since), so mail written on the replica since cannot be ruled out; kept")
	default:
		p.deletes = append(p.deletes, r)
		p.mismatch(report.MismatchReplicaOnly, r.UniqueID, "", r.Name, "")
		p.decide(report.ActionDelete, ev, r.UniqueID, "", r.Name, why)
	}
	return true
}

// freeNameFor frees the name of replica folder r, which the master's folder wanted
// needs, without evidence that the master deleted r: r is moved aside to a telling
// name, or, for a user's INBOX (which no folder rename can move), kept and the name
// blocked.
func (p *planner) freeNameFor(r *Folder, wanted string, blocked map[string]string) {
	p.mismatch(report.MismatchUniqueIDCollision, r.UniqueID, r.Name, r.Name,
		fmt.Sprintf("master holds %s at this name, replica holds %s", wanted, r.UniqueID))
	if mboxname.ParseName(r.Name).Rest == "" {
		blocked[r.Name] = wanted
		p.out.Kept++
		p.out.Blocked++
		p.decide(report.ActionKeep, report.EvidenceNone, r.UniqueID, r.Name, r.Name,
			"INBOX held by different uniqueids at the two ends and no evidence; kept, master's INBOX not replicated")
		return
	}
	aside := p.freeName(asideName(r.Name, r.UniqueID))
	p.moves = append(p.moves, move{uid: r.UniqueID, from: r.Name, to: aside})
	p.out.Kept++
	p.decide(report.ActionMoveAside, report.EvidenceNone, r.UniqueID, r.Name, aside,
		"name held by a different uniqueid on the master and no evidence the master deleted the replica's folder; moved aside to "+aside)
}

// keepWithoutEvidence keeps a replica-only folder nothing says the master deleted: a
// split-brain suspect.
func (p *planner) keepWithoutEvidence(r *Folder) {
	p.out.Kept++
	detail, reason := "no tombstone, no ledger entry", "replica-only, no tombstone: kept (split-brain suspect)"
	if why := p.in.Evidence.overruledLedger(r.UniqueID); why != "" {
		detail, reason = why, "replica-only: "+why+"; kept (split-brain suspect)"
	}
	p.mismatch(report.MismatchReplicaOnly, r.UniqueID, "", r.Name, detail)
	p.decide(report.ActionKeep, report.EvidenceNone, r.UniqueID, "", r.Name, reason)
}

// writtenSinceInStep tells how the replica folder moved past its state when it last
// matched the master's ("" when it did not, or when that state is not known).
func (p *planner) writtenSinceInStep(r *Folder) string {
	if p.in.Evidence.Ledger == nil || r.Intermediate() {
		return "" // an intermediate holds no mail: nothing written on it can be lost
	}
	mark, ok := p.in.Evidence.Ledger.LastInStep(r.UniqueID)
	if !ok || mark == MarkOf(r) {
		return ""
	}
	return fmt.Sprintf("last_uid %d → %d, highestmodseq %d → %d", mark.LastUID, r.LastUID, mark.HighestModSeq, r.HighestModSeq)
}

// marked reports whether the ledger knows the replica folder's in-step mark.
func (p *planner) marked(r *Folder) bool {
	if p.in.Evidence.Ledger == nil {
		return false
	}
	_, ok := p.in.Evidence.Ledger.LastInStep(r.UniqueID)
	return ok
}

// freeName returns name, or name with a numeric suffix, so that it is held by nothing
// at either end.
func (p *planner) freeName(name string) string {
	taken := func(n string) bool {
		for _, f := range p.in.Replica.Folders {
			if f.Name == n {
				return true
			}
		}
		for _, f := range p.in.Master.Folders {
			if f.Name == n {
				return true
			}
		}
		return false
	}
	cand := name
	for i := 2; taken(cand); i++ {
		cand = fmt.Sprintf("%s-%d", name, i)
	}
	return cand
}

// orderRenames emits deletes, then the pending renames in an order where each target
// is free when it is taken; cycles (a→b, b→a) go through a temporary name.
func (p *planner) orderRenames() {
	occupied := map[string]string{} // replica name → uid, as the plan proceeds
	p.occupied = occupied
	for i := range p.in.Replica.Folders {
		f := &p.in.Replica.Folders[i]
		occupied[f.Name] = f.UniqueID
	}
	p.emitDeletes(occupied)
	pending := slices.Clone(p.moves)
	sort.Slice(pending, func(i, j int) bool { return pending[i].to < pending[j].to })
	for len(pending) > 0 {
		var progress bool
		pending, progress = p.renameToFree(occupied, pending)
		if progress || len(pending) == 0 {
			continue
		}
		// Every target is held: go round a cycle, or the remaining moves are blocked.
		if !p.breakCycle(occupied, pending) {
			for _, mv := range pending {
				p.mismatch(report.MismatchNameDiffers, mv.uid, mv.to, mv.from, "rename blocked: target held by a folder that does not move")
				p.out.Blocked++
			}
			return
		}
	}
}

// emitDeletes adds the deletes, children before parents (a user's INBOX goes last), and
// frees their names.
func (p *planner) emitDeletes(occupied map[string]string) {
	sort.Slice(p.deletes, func(i, j int) bool { return p.deletes[i].Name > p.deletes[j].Name })
	for _, d := range p.deletes {
		p.out.Actions = append(p.out.Actions, Action{Op: OpDelete, User: d.User(), UniqueID: d.UniqueID, Name: d.Name, Expect: Mark(d)})
		delete(occupied, d.Name)
	}
}

// renameToFree emits every pending rename whose target is free, in order, and returns
// the moves still waiting and whether any went.
func (p *planner) renameToFree(occupied map[string]string, pending []move) (rest []move, progress bool) {
	rest = pending[:0]
	for _, mv := range pending {
		if _, busy := occupied[mv.to]; busy {
			rest = append(rest, mv)
			continue
		}
		p.rename(occupied, mv, false)
		progress = true
	}
	return rest, progress
}

// breakCycle sends the first holder of a pending target that is itself waiting to move
// through a temporary name (the move is updated to start there). It returns false when
// no holder of a target moves: the pending moves are blocked.
func (p *planner) breakCycle(occupied map[string]string, pending []move) bool {
	for _, mv := range pending {
		holder := occupied[mv.to]
		j := slices.IndexFunc(pending, func(o move) bool { return o.uid == holder })
		if j < 0 {
			continue
		}
		tmp := p.freeName(tempName(pending[j].from, holder))
		for _, busy := occupied[tmp]; busy; _, busy = occupied[tmp] {
			tmp += "-x"
		}
		p.rename(occupied, move{uid: holder, from: pending[j].from, to: tmp}, true)
		pending[j].from = tmp
		return true
	}
	return false
}

func (p *planner) rename(occupied map[string]string, mv move, transit bool) {
	p.out.Actions = append(p.out.Actions, Action{Op: OpRename, User: mboxname.UserOf(mv.to), UniqueID: mv.uid, Name: mv.from, NewName: mv.to, Transit: transit, Expect: mv.expect})
	delete(occupied, mv.from)
	occupied[mv.to] = mv.uid
}

// emitCreatesUpdates adds creates (parents first, by name) and updates, skipping names
// that are blocked in this batch.
func (p *planner) emitCreatesUpdates(blocked map[string]string) {
	for _, m := range p.creates {
		if _, b := blocked[m.Name]; b {
			continue
		}
		if holder, busy := p.occupied[m.Name]; busy {
			p.mismatch(report.MismatchUniqueIDCollision, m.UniqueID, m.Name, m.Name, "create blocked: name still held by "+holder)
			p.out.Blocked++
			continue
		}
		p.out.Actions = append(p.out.Actions, Action{Op: OpCreate, User: m.User(), UniqueID: m.UniqueID, Name: m.Name, Master: m})
		why := "live on the master only"
		if m.Intermediate() {
			why = "intermediate on the master (a name kept for its children)"
		}
		p.decide(report.ActionCreate, report.EvidenceNone, m.UniqueID, m.Name, "", why)
	}
	for _, m := range p.updates {
		if p.occupied[m.Name] != m.UniqueID {
			continue // its rename was blocked; reported there
		}
		p.out.Actions = append(p.out.Actions, Action{Op: OpUpdate, User: m.User(), UniqueID: m.UniqueID, Name: m.Name, Master: m})
	}
	p.emitAsides()
}

func (p *planner) decide(a report.Action, ev report.Evidence, uid, mname, rname, reason string) {
	user := mboxname.UserOf(mname)
	if user == "" {
		user = mboxname.UserOf(rname)
	}
	p.out.Decisions = append(p.out.Decisions, report.Decision{
		ID:   report.RecordID(p.in.Pair, user, uid, mname, rname, a, p.in.Now.UnixNano()),
		Time: p.in.Now, Pair: p.in.Pair, User: user, UniqueID: uid,
		MasterName: mname, ReplicaName: rname, Action: a, Evidence: ev, Reason: reason,
	})
}

func (p *planner) mismatch(k report.MismatchKind, uid, mname, rname, detail string) {
	user := mboxname.UserOf(mname)
	if user == "" {
		user = mboxname.UserOf(rname)
	}
	p.out.Mismatches = append(p.out.Mismatches, report.Mismatch{
		ID:   report.RecordID(p.in.Pair, user, uid, mname, rname, k, p.in.Now.UnixNano()),
		Time: p.in.Now, Pair: p.in.Pair, User: user, Kind: k, UniqueID: uid,
		MasterName: mname, ReplicaName: rname, Detail: detail,
	})
}

func sortedFolders(m map[string]*Folder) []*Folder {
	out := make([]*Folder, 0, len(m))
	for _, f := range m {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
