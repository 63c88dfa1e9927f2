package v1alpha1

// Condition types and reasons of both kinds, in one place.
//
// Ready, Reconciling and Stalled follow kstatus (sigs.k8s.io/cli-utils/pkg/kstatus):
// Reconciling=True while the manager or the workload is still converging, Stalled=True
// when it cannot converge without a change from a person; both are removed (not set to
// False) once they no longer apply, so kstatus computes Current for a healthy object.
// InSync and SplitBrainSuspected are the domain conditions of a ReplicationPair.

const (
	// ConditionReady (positive polarity): the object does what its spec asks.
	// Pair: the replicator Deployment is available and its last batch did not fail, or
	// the pair is suspended as asked (reason Suspended).
	// Resync: the resync finished successfully.
	ConditionReady = "Ready"

	// ConditionReconciling (abnormal-true): the manager or the workload is converging.
	ConditionReconciling = "Reconciling"

	// ConditionStalled (abnormal-true): progress needs a person (a rollout past its
	// deadline, a failed Job, a missing Secret or ConfigMap).
	ConditionStalled = "Stalled"

	// ConditionInSync (positive polarity, pairs only): the replicator's last report shows
	// no backlog, no failed users in the last batch and no error. Unknown until the first
	// report. Mismatches the replicator resolved do not make it False; split-brain shows
	// in SplitBrainSuspected.
	ConditionInSync = "InSync"

	// ConditionSplitBrainSuspected (abnormal-true, pairs only): the replicator kept
	// replica-only folders without evidence or found one name held by different
	// uniqueids at the two ends. Mail is kept; a person should look.
	ConditionSplitBrainSuspected = "SplitBrainSuspected"

	// ConditionPlaintextPassword (abnormal-true, pairs only): an endpoint's tls.mode is
	// None, so the replicator's password crosses the network in clear. Absent otherwise.
	ConditionPlaintextPassword = "PlaintextPassword"
)

// Reasons. Each is CamelCase and names the cause, not the symptom.
const (
	// ReasonAvailable: the replicator pod is available (Ready=True).
	ReasonAvailable = "Available"
	// ReasonSuspended: spec.suspend scaled the replicator to zero, as asked (Ready=True,
	// so kstatus reports Current; the Status column shows Suspended).
	ReasonSuspended = "Suspended"
	// ReasonProgressing: the Deployment is rolling out or its pod is not yet available
	// (Ready=False, Reconciling=True).
	ReasonProgressing = "Progressing"
	// ReasonReplicatorFailing: the replicator's last batch failed or it reported an error
	// (Ready=False).
	ReasonReplicatorFailing = "ReplicatorFailing"
	// ReasonRolloutStalled: the Deployment exceeded its progress deadline (Stalled=True).
	ReasonRolloutStalled = "RolloutStalled"
	// ReasonReconcileError: the manager failed to write an owned object; retried.
	ReasonReconcileError = "ReconcileError"
	// ReasonReferenceMissing: a Secret or ConfigMap (or a key of one) that the replicator
	// pods mount does not exist, so they cannot start (Stalled=True, Ready=False; a
	// resync waits instead of starting its Job). The message names each missing object
	// or key and the spec field that references it. Cleared by itself once they exist.
	ReasonReferenceMissing = "ReferenceMissing"

	// ReasonNoReport: no report from the replicator yet (InSync=Unknown).
	ReasonNoReport = "NoReport"
	// ReasonCaughtUp: backlog zero, last batch clean, no mismatch (InSync=True).
	ReasonCaughtUp = "CaughtUp"
	// ReasonBacklog: sync-log entries are waiting (InSync=False).
	ReasonBacklog = "Backlog"
	// ReasonUsersFailing: users of the last batch failed and are being retried (InSync=False).
	ReasonUsersFailing = "UsersFailing"
	// ReasonReplicatorError: the replicator reported an error (InSync=False).
	ReasonReplicatorError = "ReplicatorError"
	// ReasonReportInvalid: the report ConfigMap holds no valid report (InSync=Unknown).
	ReasonReportInvalid = "ReportInvalid"

	// ReasonReplicaOnlyKept: replica-only folders without evidence were kept
	// (SplitBrainSuspected=True).
	ReasonReplicaOnlyKept = "ReplicaOnlyKept"
	// ReasonUniqueIDCollision: one name held by different uniqueids (SplitBrainSuspected=True).
	ReasonUniqueIDCollision = "UniqueIDCollision"
	// ReasonNoEvidenceOfSplitBrain: nothing suggests split-brain (SplitBrainSuspected=False).
	ReasonNoEvidenceOfSplitBrain = "NoEvidence"

	// ReasonPlaintextRequested: an endpoint asks for tls.mode None (PlaintextPassword=True).
	ReasonPlaintextRequested = "PlaintextRequested"

	// ReasonWaitingForPair: the resync's pair does not exist yet (Pending).
	ReasonWaitingForPair = "WaitingForPair"
	// ReasonWaitingForTurn: an earlier resync of the same pair is pending or running (Pending).
	ReasonWaitingForTurn = "WaitingForTurn"
	// ReasonJobRunning: the resync's Job is running (Running).
	ReasonJobRunning = "JobRunning"
	// ReasonSucceeded: the Job completed and every user succeeded (Succeeded).
	ReasonSucceeded = "Succeeded"
	// ReasonUsersFailed: some users failed (Failed).
	ReasonUsersFailed = "UsersFailed"
	// ReasonDifferencesFound: verify found differences (Failed).
	ReasonDifferencesFound = "DifferencesFound"
	// ReasonJobFailed: the Job failed without a usable report (Failed).
	ReasonJobFailed = "JobFailed"
	// ReasonDeadlineExceeded: the Job ran past its activeDeadlineSeconds (Failed).
	ReasonDeadlineExceeded = "DeadlineExceeded"
	// ReasonJobLost: the Job disappeared before the manager saw it finish (Failed).
	ReasonJobLost = "JobLost"
)

// Event reasons, emitted on the pair or resync.
const (
	// EventTombstoneDecision: a decision resting on a master tombstone (one per record).
	EventTombstoneDecision = "TombstoneDecision"
	// EventMismatch: a new mismatch (one per record).
	EventMismatch = "Mismatch"
	// EventResyncStarted / EventResyncFinished: a resync's Job was created / finished.
	EventResyncStarted  = "ResyncStarted"
	EventResyncFinished = "ResyncFinished"
)
