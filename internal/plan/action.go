package plan

import (
	"fmt"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// Op is one step the executor performs on the replica.
type Op string

// The operations. Every one is addressed by name on the wire; the executor re-checks
// the uniqueid at Name immediately before a delete or rename, and for a destructive
// action also the folder's state the plan saw (Action.Expect).
const (
	OpDelete          Op = "delete"           // APPLY UNMAILBOX Name
	OpRename          Op = "rename"           // APPLY RENAME Name → NewName
	OpCreate          Op = "create"           // APPLY MAILBOX (full) at Name
	OpUpdate          Op = "update"           // APPLY MAILBOX (incremental) at Name
	OpMoveAside       Op = "move-aside"       // rescue the replica's extra messages to NewName, then recreate Name from the master
	OpQuota           Op = "quota"            // APPLY QUOTA
	OpUnquota         Op = "unquota"          // APPLY UNQUOTA
	OpSeen            Op = "seen"             // APPLY SEEN
	OpSub             Op = "sub"              // APPLY SUB
	OpUnsub           Op = "unsub"            // APPLY UNSUB
	OpSieve           Op = "sieve"            // APPLY SIEVE (+ ACTIVATE_SIEVE when active)
	OpUnsieve         Op = "unsieve"          // APPLY UNSIEVE
	OpUnactivateSieve Op = "unactivate-sieve" // APPLY UNACTIVATE_SIEVE
)

// Action is one ordered step of a plan.
type Action struct {
	Op       Op
	User     string
	UniqueID string // the folder acted on (folder ops)
	Name     string // replica name acted on: delete/update/create target, rename source
	NewName  string // rename target
	// Master is the master folder a create/update copies (nil otherwise).
	Master *Folder
	Quota  *Quota
	Seen   *Seen
	Sieve  *SieveScript
	Sub    string // subscription name for OpSub/OpUnsub
	// Rescue lists existing rescue folders of Name (OpMoveAside) that the executor reuses
	// when one already holds every message to rescue.
	Rescue []string
	// Transit marks a rename to or from a temporary name used to break a cycle.
	Transit bool
	// Expect is the replica folder's state the plan saw, for an action that drops its
	// mail (a delete, a rename into DELETED.*): the executor goes ahead only if the
	// folder still has it, else the batch plans again (compare-and-delete).
	Expect *FolderMark
}

// Mark is a folder's mark, by pointer (an Action's Expect).
func Mark(f *Folder) *FolderMark {
	m := MarkOf(f)
	return &m
}

func (a Action) String() string {
	switch a.Op {
	case OpRename:
		return fmt.Sprintf("rename %s -> %s (%s)", a.Name, a.NewName, a.UniqueID)
	case OpMoveAside:
		return fmt.Sprintf("move-aside %s -> %s (%s)", a.Name, a.NewName, a.UniqueID)
	case OpDelete, OpCreate, OpUpdate:
		return fmt.Sprintf("%s %s (%s)", a.Op, a.Name, a.UniqueID)
	case OpSub, OpUnsub:
		return fmt.Sprintf("%s %s %s", a.Op, a.User, a.Sub)
	case OpQuota, OpUnquota:
		if a.Quota != nil {
			return fmt.Sprintf("%s %s", a.Op, a.Quota.Root)
		}
	case OpSeen:
		if a.Seen != nil {
			return fmt.Sprintf("seen %s %s", a.User, a.Seen.UniqueID)
		}
	case OpSieve, OpUnsieve:
		if a.Sieve != nil {
			return fmt.Sprintf("%s %s %s", a.Op, a.User, a.Sieve.Name)
		}
	}
	return fmt.Sprintf("%s %s", a.Op, a.User)
}

// Plan is the planner's answer for one batch of users.
type Plan struct {
	Actions    []Action
	Decisions  []report.Decision
	Mismatches []report.Mismatch
	// NeedUsers are users outside the batch that hold folders this batch needs (a
	// cross-user rename); the caller adds them and plans again.
	NeedUsers []string
	// Kept counts replica-only folders kept for lack of evidence (split-brain suspects).
	Kept int
	// Blocked counts master folders this plan cannot bring over (their name is held on
	// the replica by a folder that is kept): the replica is not equal to the master.
	Blocked int
}

// Empty reports whether the plan changes nothing on the replica.
func (p *Plan) Empty() bool { return len(p.Actions) == 0 }
