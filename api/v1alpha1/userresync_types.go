package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ResyncMode is what a UserResync does.
// +kubebuilder:validation:Enum=Sync;Verify;Audit
type ResyncMode string

const (
	// ResyncSync fully syncs the users from master to replica.
	ResyncSync ResyncMode = "Sync"
	// ResyncVerify compares the users and reports differences; it changes nothing.
	ResyncVerify ResyncMode = "Verify"
	// ResyncAudit walks every user of the master once and syncs it (the replicator's
	// audit mode, one pass); it names no users. The manager creates it for the pair's
	// auditRequestedAt annotation.
	ResyncAudit ResyncMode = "Audit"
)

// MaxResyncUsers bounds spec.users of a UserResync.
const MaxResyncUsers = 1000

// UserResyncSpec names the users to sync or verify (or, in mode Audit, none: every user
// of the master). It is immutable: to run again, create a new UserResync (re-applying a
// finished one from Git does nothing).
// +kubebuilder:validation:XValidation:rule="self.mode == 'Audit' || has(self.users)",message="users is required for mode Sync and Verify"
// +kubebuilder:validation:XValidation:rule="self.mode != 'Audit' || !has(self.users)",message="mode Audit walks every user of the master: remove users"
// +kubebuilder:validation:XValidation:rule="self.mode != 'Audit' || !has(self.deleteUnmarked) || !self.deleteUnmarked",message="deleteUnmarked is for Sync and Verify of named users; an Audit keeps folders whose in-step state is unknown"
type UserResyncSpec struct {
	// pairName is the ReplicationPair (same namespace) whose endpoints and settings are used.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=48
	PairName string `json:"pairName"`

	// users are the Cyrus user names (e.g. "alice", "bob@example.org"), 1 to 1000, unique.
	// Required for modes Sync and Verify, forbidden for Audit.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=1000
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=255
	// +kubebuilder:validation:items:Pattern=`^[^\s/\-][^\s/]*$`
	Users []string `json:"users,omitempty"`

	// mode is Sync (full sync of each user), Verify (compare and report only) or Audit
	// (one pass of the replicator's audit over every user of the master).
	// +required
	Mode ResyncMode `json:"mode"`

	// deleteUnmarked, when true, lets the master's tombstone (or the replicator's
	// ledger) alone decide about replica folders whose in-step state is unknown (the
	// replicator's state is new or was lost): they are deleted instead of kept (decision
	// keep, evidence no-mark). Mail written on the replica in such a folder since it was
	// last in step is then lost; run a Verify with it first to see what would go.
	// +optional
	DeleteUnmarked bool `json:"deleteUnmarked,omitempty"`

	// ttlSecondsAfterFinished is how long the resync is kept once it finished (Succeeded
	// or Failed); then the manager deletes it, and with it everything it owns (its report
	// ConfigMap, ServiceAccount, Role and RoleBinding). Unset means 604800 (7 days); 0
	// deletes it as soon as it finished. No default is written, so a manifest without it
	// shows no drift.
	// +optional
	// +kubebuilder:validation:Minimum=0
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
}

// DefaultResyncTTLSeconds is the ttlSecondsAfterFinished of a resync that leaves it unset.
const DefaultResyncTTLSeconds int32 = 7 * 24 * 60 * 60

// ResyncPhase is where a UserResync is in its life.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed
type ResyncPhase string

const (
	// ResyncPending: waiting for the pair, or for an earlier resync of the pair to finish.
	ResyncPending ResyncPhase = "Pending"
	// ResyncRunning: the Job is running.
	ResyncRunning ResyncPhase = "Running"
	// ResyncSucceeded: the Job completed (terminal).
	ResyncSucceeded ResyncPhase = "Succeeded"
	// ResyncFailed: the Job failed, or verify found differences (terminal).
	ResyncFailed ResyncPhase = "Failed"
)

// Terminal reports whether the phase is final.
func (p ResyncPhase) Terminal() bool { return p == ResyncSucceeded || p == ResyncFailed }

// MaxUserResults bounds status.users of a UserResync.
const MaxUserResults = 50

// UserResultRecord is the result of one user of a resync.
type UserResultRecord struct {
	// user is the Cyrus user.
	// +required
	// +kubebuilder:validation:MaxLength=256
	User string `json:"user"`
	// outcome is synced, equal, differs or failed.
	// +required
	// +kubebuilder:validation:MaxLength=32
	Outcome string `json:"outcome"`
	// error is the user's error, if it failed (truncated to 256 characters).
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Error string `json:"error,omitempty"`
	// actions is the number of changes applied to the replica for the user.
	// +optional
	Actions int32 `json:"actions,omitempty"`
	// decisions is the number of decisions recorded for the user.
	// +optional
	Decisions int32 `json:"decisions,omitempty"`
	// mismatches is the number of differences found for the user.
	// +optional
	Mismatches int32 `json:"mismatches,omitempty"`
}

// UserResyncStatus is the observed state of a UserResync, written by the manager only.
type UserResyncStatus struct {
	// observedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase is Pending, Running, Succeeded or Failed.
	// +optional
	Phase ResyncPhase `json:"phase,omitempty"`

	// conditions: Ready, Reconciling, Stalled (see conditions.go).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// jobName is the Job that runs (or ran) the resync. The Job is deleted once its result
	// is folded here.
	// +optional
	JobName string `json:"jobName,omitempty"`

	// startTime is when the Job was created.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// completionTime is when the resync reached a terminal phase.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// usersTotal is the number of users the replicator reported on.
	// +optional
	UsersTotal int32 `json:"usersTotal,omitempty"`

	// usersFailed is the number of users that failed.
	// +optional
	UsersFailed int32 `json:"usersFailed,omitempty"`

	// users are per-user results, failed users first (at most 50; counts cover all).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=50
	Users []UserResultRecord `json:"users,omitempty"`

	// report holds the decision and mismatch counts and the most recent records.
	// +optional
	Report ReportStatus `json:"report,omitempty,omitzero"`

	// progress is how far the run has come (users done of the users to do, bodies and
	// bytes uploaded), updated while the Job runs.
	// +optional
	Progress *ProgressStatus `json:"progress,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ur;uresync,categories=cyrusrepl
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 52",message="metadata.name must be at most 52 characters: it names the resync's Job"
// +kubebuilder:printcolumn:name="Pair",type=string,JSONPath=`.spec.pairName`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Progress",type=integer,JSONPath=`.status.progress.percent`,description="percent of the users done"
// +kubebuilder:printcolumn:name="Users",type=integer,JSONPath=`.status.usersTotal`
// +kubebuilder:printcolumn:name="Failed",type=integer,JSONPath=`.status.usersFailed`
// +kubebuilder:printcolumn:name="Completed",type=date,JSONPath=`.status.completionTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// UserResync runs one sync or verify of named users of a pair, as a Job, once.
type UserResync struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty,omitzero"`

	// spec names the pair, the users and the mode. Immutable.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable; create a new UserResync to run again"
	Spec UserResyncSpec `json:"spec"`

	// status is the observed state, written by the manager only.
	// +optional
	Status UserResyncStatus `json:"status,omitempty,omitzero"`
}

// +kubebuilder:object:root=true

// UserResyncList is a list of UserResyncs.
type UserResyncList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the UserResyncs.
	Items []UserResync `json:"items"`
}

func init() {
	SchemeBuilder.Register(&UserResync{}, &UserResyncList{})
}
