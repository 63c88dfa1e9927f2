package plan

import (
	"strings"

	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
)

// NeedsFullSync decides whether a mailbox-level sync must escalate to a full user sync:
// it must when a named folder exists at one end only and its uniqueid is not found at
// the other end under another of the batch's names, or when a name is held by different
// uniqueids. A uniqueid under different names at the two ends is a rename the planner
// can make: both names were fetched, so the target name is known to be free or held by
// the same folder. master and replica are the GET MAILBOXES answers for the batch's
// names (plus name history) at each end. absentOnReplica holds the master uniqueids the
// replica was asked for by uniqueid (GET UNIQUEIDS) and does not hold under any name: a
// folder new on the master, created at mailbox level when its parent is the user's
// INBOX or a folder both ends hold (otherwise the full sync creates the parents too).
func NeedsFullSync(names []string, master, replica []Folder, absentOnReplica map[string]bool) (bool, string) {
	mByName, rByName := map[string]*Folder{}, map[string]*Folder{}
	for i := range master {
		mByName[master[i].Name] = &master[i]
	}
	for i := range replica {
		rByName[replica[i].Name] = &replica[i]
	}
	mUID, mDups := ByUID(master)
	rUID, rDups := ByUID(replica)
	if len(mDups) > 0 || len(rDups) > 0 {
		return true, "a uniqueid is held twice"
	}
	for _, n := range names {
		m, r := mByName[n], rByName[n]
		switch {
		case m == nil && r == nil:
			// Gone at both ends (e.g. a deleted folder already handled): nothing here.
		case m == nil:
			if _, ok := mUID[r.UniqueID]; !ok || r.UniqueID == "" {
				return true, n + " exists on the replica only"
			}
		case r == nil:
			if _, ok := rUID[m.UniqueID]; ok && m.UniqueID != "" {
				break // renamed: the replica holds it under another of the names
			}
			if m.UniqueID == "" || !absentOnReplica[m.UniqueID] {
				return true, n + " exists on the master only"
			}
			parent := parentName(n)
			if pm, pr := mByName[parent], rByName[parent]; parent != mboxname.UserRoot(mboxname.UserOf(n)) &&
				(pm == nil || pr == nil || pm.UniqueID != pr.UniqueID) {
				return true, n + " is new on the master under a parent the batch does not hold at both ends"
			}
		case m.UniqueID != r.UniqueID:
			return true, n + " is held by different uniqueids"
		}
	}
	return false, ""
}

// parentName is the internal name one level up ("" for a top-level name).
func parentName(name string) string {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return ""
	}
	return name[:i]
}
