package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// ProgressStatus is how far a long pass over users has come, as the replicator reports
// it: a pair's seeding pass (or its current audit pass, in audit mode), a resync's run.
type ProgressStatus struct {
	// usersDone is the number of users done (synced, compared or failed) of usersTotal.
	// A pass resumed after a restart counts the users done before it.
	// +required
	// +kubebuilder:validation:Minimum=0
	UsersDone int32 `json:"usersDone"`
	// usersTotal is the number of users the pass has to do.
	// +required
	// +kubebuilder:validation:Minimum=0
	UsersTotal int32 `json:"usersTotal"`
	// usersFailed is how many of the users done failed (they are retried).
	// +optional
	UsersFailed int32 `json:"usersFailed,omitempty"`
	// percent is usersDone of usersTotal, 0 to 100 (the Progress column).
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percent int32 `json:"percent"`
	// bodies is the number of message bodies uploaded to the replica so far (by this
	// run of the replicator).
	// +optional
	Bodies int64 `json:"bodies,omitempty"`
	// bytes is the size of those bodies.
	// +optional
	Bytes int64 `json:"bytes,omitempty"`
	// started is when this run of the pass began.
	// +optional
	Started *metav1.Time `json:"started,omitempty"`
	// updated is when the replicator took these figures (started plus the time the
	// pass has run).
	// +optional
	Updated *metav1.Time `json:"updated,omitempty"`
	// eta is when the pass is estimated to end, from its pace so far; unset while no
	// user is done yet and once the pass ended.
	// +optional
	ETA *metav1.Time `json:"eta,omitempty"`
	// finished is true once the pass ended.
	// +optional
	Finished bool `json:"finished,omitempty"`
}

// Seeding: the first full pass over every master user that fills a new or empty
// replica before a rolling pair follows the sync log.
const (
	// ConditionSeeding (abnormal-true, rolling pairs only): True while the seeding pass
	// runs (status.progress says how far); False once it completed, or with the reason
	// it did not run. InSync stays False while it is True. Unset until the replicator
	// reports, and for pairs in audit mode (every audit pass is a full pass).
	ConditionSeeding = "Seeding"

	// ReasonSeedingInProgress: the seeding pass runs (Seeding=True; InSync=False with
	// reason Seeding).
	ReasonSeedingInProgress = "SeedingInProgress"
	// ReasonSeeded: the seeding pass completed (Seeding=False); users that failed in it
	// are retried by the rolling replicator.
	ReasonSeeded = "Seeded"
	// ReasonSeedNotNeeded: the replicator's state was kept and the replica holds the
	// master's users, so no pass ran (Seeding=False).
	ReasonSeedNotNeeded = "SeedNotNeeded"
	// ReasonSeedUnavailable: the master's users cannot be listed (neither masterConfig
	// nor master.imapPort), so no pass can run; the replica gets only the users the
	// sync log names (Seeding=False).
	ReasonSeedUnavailable = "SeedUnavailable"
	// ReasonSeeding: InSync=False while the seeding pass runs.
	ReasonSeeding = "Seeding"
)
