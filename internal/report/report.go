// Package report holds the records the replicator produces and the operator consumes:
// decisions, mismatches, per-user results and the bounded summary of a run. It is the
// only contract between the two halves of the product, so it has no dependencies on
// either of them.
package report

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Action is what the replicator did, or chose not to do, about one folder.
type Action string

const (
	ActionCreate       Action = "create"        // folder created on the replica
	ActionUpdate       Action = "update"        // contents brought up to date
	ActionRename       Action = "rename"        // replica folder renamed to the master's name
	ActionDelete       Action = "delete"        // replica folder deleted (evidence required)
	ActionMirrorDelete Action = "mirror-delete" // master's delayed delete (DELETED.*) mirrored
	ActionKeep         Action = "keep"          // replica folder kept although the master lacks it
	ActionMoveAside    Action = "move-aside"    // replica folder moved out of the way of the master's
	ActionNone         Action = "none"          // compared, nothing to do
)

// Evidence names where the answer to "did this folder exist on the master?" came from,
// strongest first.
type Evidence string

const (
	EvidenceTombstone        Evidence = "tombstone"         // master mailboxes.db tombstone for the uniqueid
	EvidenceDeletedNamespace Evidence = "deleted-namespace" // master holds the uniqueid under DELETED.*
	EvidenceNameHistory      Evidence = "name-history"      // master's name history or uniqueid match
	EvidenceLedger           Evidence = "ledger"            // the replicator's own ledger of master uniqueids
	EvidenceNone             Evidence = "none"
	// EvidenceSplitBrain: both ends hold the uniqueid and the replica's copy is ahead of
	// the master's (written on the replica while it served as the master).
	EvidenceSplitBrain Evidence = "split-brain"
)

// MismatchKind classifies a difference between master and replica.
type MismatchKind string

const (
	MismatchMissingOnReplica  MismatchKind = "missing-on-replica"
	MismatchReplicaOnly       MismatchKind = "replica-only"
	MismatchNameDiffers       MismatchKind = "name-differs"
	MismatchUniqueIDCollision MismatchKind = "uniqueid-collision"
	MismatchContentDiffers    MismatchKind = "content-differs"
)

// Decision is the record of one decision about one folder of one user.
type Decision struct {
	ID          string    `json:"id"`
	Time        time.Time `json:"time"`
	Pair        string    `json:"pair,omitempty"`
	User        string    `json:"user"`
	UniqueID    string    `json:"uniqueid,omitempty"`
	MasterName  string    `json:"masterName,omitempty"`
	ReplicaName string    `json:"replicaName,omitempty"`
	Action      Action    `json:"action"`
	Evidence    Evidence  `json:"evidence"`
	Reason      string    `json:"reason"`
}

// Mismatch is the record of one difference found between master and replica.
type Mismatch struct {
	ID          string       `json:"id"`
	Time        time.Time    `json:"time"`
	Pair        string       `json:"pair,omitempty"`
	User        string       `json:"user"`
	Kind        MismatchKind `json:"kind"`
	UniqueID    string       `json:"uniqueid,omitempty"`
	MasterName  string       `json:"masterName,omitempty"`
	ReplicaName string       `json:"replicaName,omitempty"`
	Detail      string       `json:"detail,omitempty"`
}

// UserOutcome is how one user ended in a run.
type UserOutcome string

const (
	OutcomeSynced  UserOutcome = "synced"  // changes applied, replica now equal
	OutcomeEqual   UserOutcome = "equal"   // nothing to do
	OutcomeDiffers UserOutcome = "differs" // verify found differences (or kept folders remain)
	OutcomeFailed  UserOutcome = "failed"
)

// UserResult is the result of one user in one run.
type UserResult struct {
	User       string      `json:"user"`
	Outcome    UserOutcome `json:"outcome"`
	Error      string      `json:"error,omitempty"`
	Attempts   int         `json:"attempts,omitempty"`
	Actions    int         `json:"actions"`
	Decisions  int         `json:"decisions"`
	Mismatches int         `json:"mismatches"`
	BodiesSent int         `json:"bodiesSent"`
	DurationMS int64       `json:"durationMs"`
}

// Batch describes the most recent batch of a rolling or audit run.
type Batch struct {
	Time       time.Time `json:"time"`
	Users      int       `json:"users"`
	Failed     int       `json:"failed"`
	DurationMS int64     `json:"durationMs"`
}

// Summary is the bounded summary of a run (or, for long-running modes, of the run so far).
// Counts are totals; the lists hold at most the most recent MaxRecent entries each.
type Summary struct {
	Kind           string         `json:"kind"` // always SummaryKind
	Mode           string         `json:"mode"` // sync, verify, rolling, audit
	Pair           string         `json:"pair,omitempty"`
	Started        time.Time      `json:"started"`
	Updated        time.Time      `json:"updated"`
	Finished       *time.Time     `json:"finished,omitempty"`
	Users          []UserResult   `json:"users,omitempty"`
	UsersTotal     int            `json:"usersTotal"`
	UsersFailed    int            `json:"usersFailed"`
	ActionCounts   map[string]int `json:"actionCounts,omitempty"`   // by Action
	DecisionCounts map[string]int `json:"decisionCounts,omitempty"` // by "action/evidence"
	MismatchCounts map[string]int `json:"mismatchCounts,omitempty"` // by MismatchKind
	Decisions      []Decision     `json:"decisions,omitempty"`
	Mismatches     []Mismatch     `json:"mismatches,omitempty"`
	Backlog        *int           `json:"backlog,omitempty"` // sync-log entries (lines) not yet replicated
	// PendingSince is when the oldest of those entries was first seen (rolling mode;
	// nil when none waits): the replication lag is its age.
	PendingSince *time.Time `json:"pendingSince,omitempty"`
	LastBatch    *Batch     `json:"lastBatch,omitempty"`
	LastError    string     `json:"lastError,omitempty"`
	// BadLogLines counts malformed sync-log lines that were recorded and skipped.
	BadLogLines int `json:"badLogLines,omitempty"`
	// State identifies the replicator's state directory (ledger, retry queue), so the
	// operator can tell a state carried over from one that began empty.
	State *State `json:"state,omitempty"`
	// Progress is the current (or last) pass over users: sync, verify, an audit pass,
	// or the seeding pass of a rolling replicator.
	Progress *Progress `json:"progress,omitempty"`
	// Seed is where seeding stands (rolling mode only).
	Seed *Seed `json:"seed,omitempty"`
	// Checks are the latest results of the set-up checks (checks.go), one per name.
	Checks []Check `json:"checks,omitempty"`
}

// State identifies a replicator state directory: a random id and the time it was
// created, both written once when the directory was found empty.
type State struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	// New: this process found the directory without a state and began it.
	New bool `json:"new,omitempty"`
}

// EvidenceNoMark: the master deleted the folder (tombstone or ledger), but its in-step
// mark is unknown (the replicator's state is new or was lost since), so whether the
// replica took mail in it since is unknown: the folder is kept, not deleted.
const EvidenceNoMark Evidence = "no-mark"

// SummaryKind versions the Summary format.
const SummaryKind = "cyrusrepl.io/report/v1"

// MaxRecent bounds the recent lists (Users, Decisions, Mismatches) of a Summary.
const MaxRecent = 50

// RecordID gives a record a stable identifier from the fields that make it unique,
// so that a consumer can tell a new record from one it has already seen.
func RecordID(parts ...any) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%v\x00", p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// EvidenceIntermediate: the master itself reports the uniqueid as an intermediate (its
// mailbox was deleted and only the name remains, for its children).
const EvidenceIntermediate Evidence = "master-intermediate"

// Progress is how far a pass over users has come (sync, verify, an audit pass, seeding):
// users done of the users to do, how many of those failed, and the message bodies and
// their bytes uploaded to the replica so far. The replicator prints it as a "progress"
// JSON line while it runs and once at the end, and puts the latest into the summary.
type Progress struct {
	Started time.Time `json:"started"`
	Done    int       `json:"done"`
	Total   int       `json:"total"`
	Failed  int       `json:"failed"`
	Bodies  int64     `json:"bodies"`
	Bytes   int64     `json:"bytes"`
	// ElapsedMS is the time since Started; ETAMS the estimated time left (from the
	// users done so far; -1 while none is done, 0 once all are).
	ElapsedMS int64 `json:"elapsedMs"`
	ETAMS     int64 `json:"etaMs"`
	// Finished: the pass ended (every user done, or cut short).
	Finished bool `json:"finished,omitempty"`
}

// Seed states: where the first full pass over every master user (seeding a new or
// empty replica, before rolling replication) stands.
const (
	SeedRunning     = "running"     // the pass runs; Summary.Progress says how far
	SeedComplete    = "complete"    // the pass ended; rolling replication goes on
	SeedNotNeeded   = "not-needed"  // the replica already held the master's users and the state was kept
	SeedUnavailable = "unavailable" // the master's users cannot be listed (no --master-config, no --master-imap)
)

// Seed is the seeding pass of a rolling replicator, as recorded in its state directory.
type Seed struct {
	State     string     `json:"state"`
	Reason    string     `json:"reason,omitempty"` // why it runs, or why it did not
	Started   *time.Time `json:"started,omitempty"`
	Completed *time.Time `json:"completed,omitempty"`
	Users     int        `json:"users,omitempty"`  // master users of the pass
	Failed    int        `json:"failed,omitempty"` // of those, failed (handed to the retry queue)
}
