package plan

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// RescueMarker is the name component that marks a rescue folder: the replica's messages
// the master lacks, kept when a diverged replica folder is recreated from the master.
const RescueMarker = "cyrusrepl-conflict-"

// aside is a planned move-aside of a diverged replica folder.
type aside struct {
	m, r   *Folder
	rescue string
}

// diverged says why the replica's copy of a folder both ends hold cannot be brought to
// the master's state by an update (it was written on the replica: its counters are
// ahead, or the replica refused the master's state earlier in this batch), or "".
func (p *planner) diverged(m, r *Folder) string {
	if m.Intermediate() || r.Intermediate() || m.Type != r.Type || mboxname.IsDeletedName(m.Name) {
		return "" // nothing to rescue, or not a live folder on the master
	}
	if ahead := aheadOf(m, r); ahead != "" {
		return ahead
	}
	if why := p.in.Diverged[m.UniqueID]; why != "" {
		return "replica refused the master's state: " + why
	}
	return ""
}

// aheadOf describes how the replica's copy r got past the master's m ("" if it did
// not): only writes on the replica itself do that.
func aheadOf(m, r *Folder) string {
	var ahead []string
	if r.LastUID > m.LastUID {
		ahead = append(ahead, fmt.Sprintf("last_uid %d > %d", r.LastUID, m.LastUID))
	}
	if r.HighestModSeq > m.HighestModSeq {
		ahead = append(ahead, fmt.Sprintf("highestmodseq %d > %d", r.HighestModSeq, m.HighestModSeq))
	}
	if r.UIDValidity > m.UIDValidity {
		ahead = append(ahead, fmt.Sprintf("uidvalidity %d > %d", r.UIDValidity, m.UIDValidity))
	}
	if len(ahead) > 0 {
		return "replica ahead of the master (" + strings.Join(ahead, ", ") + ")"
	}
	return ""
}

// moveAside plans the convergence of a diverged folder: the replica's messages the master
// lacks go to a new rescue folder, then the replica's copy is replaced by the master's.
func (p *planner) moveAside(m, r *Folder, why string) {
	rescue := p.freeName(m.Name + "." + RescueMarker + p.in.Now.UTC().Format("20060102T150405"))
	p.asides = append(p.asides, aside{m: m, r: r, rescue: rescue})
	p.out.Kept++ // the rescue folder is replica-only: a split-brain the policy judges
	p.decide(report.ActionMoveAside, report.EvidenceSplitBrain, m.UniqueID, m.Name, rescue,
		fmt.Sprintf("%s; replica's %s (last_uid %d, highestmodseq %d) vs master's (last_uid %d, highestmodseq %d): messages the master lacks moved to %s (or a rescue folder already holding them), then the folder is recreated from the master: flags and annotations changed on the replica for messages both ends hold, and the folder's own annotations, become the master's",
			why, r.Name, r.LastUID, r.HighestModSeq, m.LastUID, m.HighestModSeq, rescue))
}

// emitAsides adds the move-aside actions, after renames (the folder is at the master's
// name by then) and updates.
func (p *planner) emitAsides() {
	for _, a := range p.asides {
		if p.occupied[a.m.Name] != a.m.UniqueID {
			continue // its rename was blocked; reported there
		}
		p.out.Actions = append(p.out.Actions, Action{Op: OpMoveAside, User: a.m.User(), UniqueID: a.m.UniqueID,
			Name: a.m.Name, NewName: a.rescue, Master: a.m, Rescue: p.rescueFolders(a.m.Name, a.r.Name)})
		p.occupied[a.rescue] = ""
	}
}

// rescueFolders lists the replica's existing rescue folders of a folder (under either
// of its names), oldest first.
func (p *planner) rescueFolders(names ...string) []string {
	var out []string
	for _, f := range p.in.Replica.Folders {
		for _, n := range names {
			rest, ok := strings.CutPrefix(f.Name, n+"."+RescueMarker)
			if ok && rest != "" && !strings.Contains(rest, ".") {
				out = append(out, f.Name)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}
