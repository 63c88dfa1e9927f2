package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ReplicaOnlyPolicy says what the replicator does with a folder that exists on the
// replica only, when the master has no evidence (tombstone, DELETED.*, name history)
// that it ever held it: the split-brain case.
// +kubebuilder:validation:Enum=Keep;Fail
type ReplicaOnlyPolicy string

const (
	// ReplicaOnlyKeep leaves the folder in place and reports it. The default.
	ReplicaOnlyKeep ReplicaOnlyPolicy = "Keep"
	// ReplicaOnlyFail also leaves the folder in place and reports it, and counts its
	// user as differing, so the pair is not InSync until a person decides.
	ReplicaOnlyFail ReplicaOnlyPolicy = "Fail"
)

// DefaultWorkers is the number of users replicated in parallel when spec.workers is unset.
const DefaultWorkers = 4

// DefaultAuditInterval is the pause between two audit passes when spec.auditInterval is unset.
const DefaultAuditInterval = "1h"

// ReplicationPairSpec is the desired replication from one master to one replica.
// +kubebuilder:validation:XValidation:rule="has(self.syncLog) || has(self.masterConfig) || has(self.master.agent) || (has(self.master.imapPort) && self.master.imapPort > 0)",message="without a syncLog or master.agent the pair runs periodic audits, which must list the master's users: set master.agent, masterConfig or master.imapPort"
// +kubebuilder:validation:XValidation:rule="!has(self.master.agent) || (!has(self.syncLog) && !has(self.masterConfig))",message="master.agent serves the master's sync log and mailboxes.db over the network: remove syncLog and masterConfig (the replicator mounts nothing of the master's with an agent)"
type ReplicationPairSpec struct {
	// master is the server replicated from. The replicator only reads it (csync GET),
	// and, with master.agent, reads its sync log and mailboxes.db through the agent.
	// +required
	Master MasterEndpoint `json:"master"`

	// replica is the server replicated to.
	// +required
	Replica Endpoint `json:"replica"`

	// syncLog is where the master's sync-log channel directory for cyrusrepl is found.
	// When set (or master.agent is) the replicator runs in rolling mode (follows the
	// log); when neither is set it runs in audit mode (walks every user every
	// auditInterval). Not with master.agent, which serves the log itself.
	// +optional
	SyncLog *SyncLogSource `json:"syncLog,omitempty"`

	// masterConfig mounts the master's imapd.conf and configdirectory read-only so the
	// replicator can read tombstones from mailboxes.db, the strongest evidence for deletes.
	// Not with master.agent, which serves mailboxes.db itself.
	// +optional
	MasterConfig *MasterConfigSource `json:"masterConfig,omitempty"`

	// workers is the number of users replicated in parallel. Defaults to 4.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=64
	Workers int32 `json:"workers,omitempty"`

	// auditInterval is the pause between two audit passes (audit mode only, i.e. without
	// syncLog and master.agent). A Go duration of at least one minute; defaults to 1h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m')",message="auditInterval must be at least 1m"
	AuditInterval *metav1.Duration `json:"auditInterval,omitempty"`

	// replicaOnlyPolicy is what to do with a replica-only folder the master has no
	// evidence for: Keep (the default; report it) or Fail (report it and count the user
	// as differing, so the pair stays out of sync until a person decides). Mail is never deleted
	// without evidence.
	// +optional
	ReplicaOnlyPolicy ReplicaOnlyPolicy `json:"replicaOnlyPolicy,omitempty"`

	// suspend, when true, scales the replicator to zero; the sync log accumulates on the
	// master and is consumed on resume.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// replicator tunes the replicator pods (image, resources, scheduling, user).
	// +optional
	Replicator ReplicatorPodSpec `json:"replicator,omitempty,omitzero"`

	// state is the replicator's durable state claim (size, storage class, what happens
	// to it when the pair is deleted).
	// +optional
	State StateSpec `json:"state,omitempty,omitzero"`

	// verify runs a read-only verify of named users (a UserResync in Verify mode) on a
	// schedule, and whenever the annotation replication.cyrusrepl.io/verifyRequestedAt
	// gets a new value. Changing it does not restart the replicator.
	// +optional
	Verify *ScheduledVerify `json:"verify,omitempty"`
}

// AnnotationVerifyRequestedAt asks for a verify of spec.verify.users now: set it to any
// new value (e.g. the current time, as `kubectl annotate` or Flux's requestedAt do); the
// manager creates one verify UserResync per new value and echoes the value into
// status.verify.lastHandledRequestAt.
const AnnotationVerifyRequestedAt = "replication.cyrusrepl.io/verifyRequestedAt"

// AnnotationAuditRequestedAt asks for an audit of every user of the master now: set it
// to any new value (e.g. the current time); the manager creates one UserResync in mode
// Audit per new value and echoes the value into status.audit.lastHandledRequestAt.
const AnnotationAuditRequestedAt = "replication.cyrusrepl.io/auditRequestedAt"

// AuditStatus is the state of a pair's requested audits.
type AuditStatus struct {
	// lastHandledRequestAt is the value of the auditRequestedAt annotation the manager
	// last acted on.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	LastHandledRequestAt string `json:"lastHandledRequestAt,omitempty"`

	// lastResync is the Audit UserResync the most recent request created.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	LastResync string `json:"lastResync,omitempty"`

	// message says why the last request did not create an audit (yet).
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Message string `json:"message,omitempty"`
}

// ScheduledVerify is a recurring read-only check of some users of a pair.
type ScheduledVerify struct {
	// schedule is a cron expression with five fields (minute hour day-of-month month
	// day-of-week, in UTC), or a descriptor such as @daily. Unset: verify on request only.
	// A run is skipped while the previous scheduled or requested verify has not finished;
	// missed runs (manager down) are not caught up, only the latest one is started.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Schedule string `json:"schedule,omitempty"`

	// users are the Cyrus users to verify (1 to 1000, unique): for example a few canary
	// users whose mail changes every day.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=1000
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=255
	// +kubebuilder:validation:items:Pattern=`^[^\s/\-][^\s/]*$`
	Users []string `json:"users"`
}

// VerifyStatus is the state of a pair's scheduled and requested verifies.
type VerifyStatus struct {
	// lastScheduleTime is the schedule time of the most recent scheduled verify run.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`

	// lastHandledRequestAt is the value of the verifyRequestedAt annotation the manager
	// last acted on.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	LastHandledRequestAt string `json:"lastHandledRequestAt,omitempty"`

	// lastResync is the UserResync the most recent verify created.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	LastResync string `json:"lastResync,omitempty"`

	// message says why the last scheduled run was skipped or the schedule is not used
	// (e.g. an invalid cron expression).
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Message string `json:"message,omitempty"`
}

// WorkloadState summarises the replicator Deployment.
// +kubebuilder:validation:Enum=Running;Progressing;Unavailable;Suspended
type WorkloadState string

const (
	WorkloadRunning     WorkloadState = "Running"     // the replicator pod is available
	WorkloadProgressing WorkloadState = "Progressing" // a rollout is under way
	WorkloadUnavailable WorkloadState = "Unavailable" // no available pod and no rollout progressing
	WorkloadSuspended   WorkloadState = "Suspended"   // spec.suspend scaled it to zero
)

// ReplicatorStatus is the state of the pair's replicator Deployment.
type ReplicatorStatus struct {
	// deploymentName is the name of the Deployment running the replicator.
	// +optional
	DeploymentName string `json:"deploymentName,omitempty"`
	// mode is the replicator mode the Deployment runs: rolling (it follows the master's
	// sync log, from spec.syncLog or through spec.master.agent) or audit (it walks every
	// user every spec.auditInterval).
	// +optional
	Mode string `json:"mode,omitempty"`
	// state summarises the Deployment.
	// +optional
	State WorkloadState `json:"state,omitempty"`
	// availableReplicas is the Deployment's available replica count (0 or 1).
	// +optional
	AvailableReplicas int32 `json:"availableReplicas,omitempty"`
}

// BatchResult is the outcome of a batch.
// +kubebuilder:validation:Enum=Succeeded;PartiallyFailed;Failed
type BatchResult string

const (
	BatchSucceeded       BatchResult = "Succeeded"
	BatchPartiallyFailed BatchResult = "PartiallyFailed"
	BatchFailed          BatchResult = "Failed"
)

// LastBatch describes the replicator's most recent batch.
type LastBatch struct {
	// time is when the batch finished.
	// +required
	Time metav1.Time `json:"time"`
	// users is the number of users in the batch.
	// +required
	Users int32 `json:"users"`
	// failedUsers is the number of users of the batch that failed (they are retried).
	// +optional
	FailedUsers int32 `json:"failedUsers,omitempty"`
	// durationMillis is how long the batch took.
	// +optional
	DurationMillis int64 `json:"durationMillis,omitempty"`
	// result is Succeeded, PartiallyFailed or Failed.
	// +required
	Result BatchResult `json:"result"`
}

// ReplicationPairStatus is the observed state of a ReplicationPair. The manager is its
// only writer; the replicator reports through its ConfigMap (see controllers docs).
type ReplicationPairStatus struct {
	// observedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Reconciling, Stalled, InSync, SplitBrainSuspected, and the
	// others of conditions.go.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// replicator is the state of the replicator Deployment.
	// +optional
	Replicator ReplicatorStatus `json:"replicator,omitempty,omitzero"`

	// backlog is the number of sync-log entries (lines of the channel's log and log-run)
	// not yet replicated (rolling mode, whether the log is mounted or read through the
	// agent).
	// +optional
	Backlog *int64 `json:"backlog,omitempty"`

	// pendingSince is when the oldest of those entries was first seen (rolling mode;
	// unset when none waits). Its age is the replication lag, shown in the Lag column;
	// docs/operations.md says how an entry is dated (Cyrus writes no timestamps).
	// +optional
	PendingSince *metav1.Time `json:"pendingSince,omitempty"`

	// lastBatch is the replicator's most recent batch.
	// +optional
	LastBatch *LastBatch `json:"lastBatch,omitempty"`

	// report holds the decision and mismatch counts and the most recent records.
	// +optional
	Report ReportStatus `json:"report,omitempty,omitzero"`

	// state identifies the replicator state the pair runs on.
	// +optional
	State *StateStatus `json:"state,omitempty"`

	// verify is the state of the verifies spec.verify asks for.
	// +optional
	Verify *VerifyStatus `json:"verify,omitempty"`

	// audit is the state of the audits the auditRequestedAt annotation asks for.
	// +optional
	Audit *AuditStatus `json:"audit,omitempty"`

	// progress is how far the replicator's long pass over users has come: the seeding
	// pass of a rolling pair (see the Seeding condition), or the current audit pass of
	// a pair in audit mode.
	// +optional
	Progress *ProgressStatus `json:"progress,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rp;rpair,categories=cyrusrepl
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 48",message="metadata.name must be at most 48 characters: it prefixes the replicator's Deployment, ConfigMap and Role names"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="In-Sync",type=string,JSONPath=`.status.conditions[?(@.type=="InSync")].status`
// +kubebuilder:printcolumn:name="Split-Brain",type=string,JSONPath=`.status.conditions[?(@.type=="SplitBrainSuspected")].status`
// +kubebuilder:printcolumn:name="Progress",type=integer,JSONPath=`.status.progress.percent`,description="percent of the users done in the replicator's long pass (seeding, or the current audit pass)"
// +kubebuilder:printcolumn:name="Backlog",type=integer,JSONPath=`.status.backlog`
// +kubebuilder:printcolumn:name="Lag",type=date,JSONPath=`.status.pendingSince`
// +kubebuilder:printcolumn:name="Last-Batch",type=date,JSONPath=`.status.lastBatch.time`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Master",type=string,JSONPath=`.spec.master.host`,priority=1
// +kubebuilder:printcolumn:name="Replica",type=string,JSONPath=`.spec.replica.host`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ReplicationPair keeps one Cyrus replica in step with its master through a long-running
// replicator Deployment.
type ReplicationPair struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty,omitzero"`

	// spec is the desired replication.
	// +required
	Spec ReplicationPairSpec `json:"spec"`

	// status is the observed state, written by the manager only.
	// +optional
	Status ReplicationPairStatus `json:"status,omitempty,omitzero"`
}

// +kubebuilder:object:root=true

// ReplicationPairList is a list of ReplicationPairs.
type ReplicationPairList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the ReplicationPairs.
	Items []ReplicationPair `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ReplicationPair{}, &ReplicationPairList{})
}
