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

	// ReasonVolumeNotAllowed: the pair asks for a hostPath or nfs volume and the manager
	// runs without --allow-host-path, so it creates no pod for it (Stalled=True,
	// Ready=False; a resync of the pair waits in Pending). The message names the field.
	ReasonVolumeNotAllowed = "VolumeNotAllowed"

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
	// ReasonPodCannotStart: the Job's pod cannot start and will not without a person: its
	// image cannot be pulled, it stays unschedulable, or the API server refuses to create
	// it (Pod Security admission, a quota). The message carries the kubelet's, the
	// scheduler's or the API server's words. The resync fails (its Job is deleted, which
	// frees the pair for its next resync); create a new one once the cause is fixed.
	ReasonPodCannotStart = "PodCannotStart"
)

// Event reasons, emitted on the pair or resync.
const (
	// EventRecordsResolved (Normal): a summary of new records the replicator resolved by
	// itself (mismatches it fixed, deletes on tombstone evidence), at most one a minute.
	EventRecordsResolved = "RecordsResolved"
	// EventNeedsAttention (Warning): a summary of new records that need a person
	// (replica-only folders kept, uniqueid collisions, folders moved aside), at most one
	// a minute.
	EventNeedsAttention = "NeedsAttention"
	// EventResyncStarted / EventResyncFinished: a resync's Job was created / finished.
	EventResyncStarted  = "ResyncStarted"
	EventResyncFinished = "ResyncFinished"
)

// The replicator's durable state (spec.state, status.state).
const (
	// ConditionStateLost (abnormal-true, pairs only): the replicator runs on a state
	// that began empty although the pair had one before (status.state.replacedID): the
	// retry queue and the in-step marks of the earlier state are gone. It stays True
	// for as long as the pair runs on that state, as the record that its history
	// starts at status.state.created. Unset until the replicator first reports.
	ConditionStateLost = "StateLost"

	// ReasonStateNew: the pair's first state, begun by the running replicator (StateLost=False).
	ReasonStateNew = "StateNew"
	// ReasonStateKept: the replicator runs on the state the pair has had (StateLost=False).
	ReasonStateKept = "StateKept"
	// ReasonStateLost: the state was replaced by an empty one (StateLost=True).
	ReasonStateLost = "StateLost"
	// ReasonNoMarkKept: folders the master deleted were kept because their in-step
	// marks are unknown (SplitBrainSuspected=True).
	ReasonNoMarkKept = "NoMarkKept"
)

// Set-up checks (the replicator's report.Checks): mistakes in how the two Cyrus servers
// are set up, named before they cost mail. Each condition is abnormal-true, set only
// once the replicator has reported the check, and False again when a later report finds
// it fixed.
const (
	// ReasonSyncLogNotWritten (Stalled=True, Ready=False): the master never writes the
	// channel the replicator is told to consume (sync_log off, or the channel not in
	// sync_log_channels: upstream cyrus-imapd #2248), or the replicator cannot take its
	// files; the replicator refuses to start. The message names the setting.
	ReasonSyncLogNotWritten = "SyncLogNotWritten"

	// ConditionVersionSkew (abnormal-true, pairs): master and replica run different Cyrus
	// releases (beyond the patch level), which Cyrus supports only for the length of an
	// upgrade. The message names both versions, as their banners do.
	ConditionVersionSkew = "VersionSkew"
	// ReasonVersionSkew: the versions differ beyond the patch level (VersionSkew=True).
	ReasonVersionSkew = "VersionSkew"
	// ReasonSameRelease: both run the same release (VersionSkew=False).
	ReasonSameRelease = "SameRelease"
	// ReasonVersionUnknown: a banner names no version (VersionSkew=Unknown).
	ReasonVersionUnknown = "VersionUnknown"

	// ConditionPartitionMissing (abnormal-true, pairs): users fail because the master
	// keeps folders on a partition the replica lacks; their folders there are not
	// replicated (nothing is deleted for it). The message names the partitions and users.
	ConditionPartitionMissing = "PartitionMissing"
	// ReasonPartitionMissing: PartitionMissing=True.
	ReasonPartitionMissing = "PartitionMissing"
	// ReasonPartitionsPresent: no user fails for a missing partition any more
	// (PartitionMissing=False).
	ReasonPartitionsPresent = "PartitionsPresent"

	// ConditionChannelSilent (abnormal-true, rolling pairs): the master keeps changing
	// its mailboxes while the sync-log channel stays unwritten for longer than the
	// replicator's --channel-silence: its changes are probably not logged.
	ConditionChannelSilent = "ChannelSilent"
	// ReasonChannelSilent: ChannelSilent=True.
	ReasonChannelSilent = "ChannelSilent"
	// ReasonChannelWritten: the channel is written as the master changes (ChannelSilent=False).
	ReasonChannelWritten = "ChannelWritten"

	// ConditionAgentUnavailable (abnormal-true, pairs with spec.master.agent): the
	// replicator cannot get the sync log from the master's agent: it cannot reach it, or
	// the agent refuses it. The replicator keeps running, takes nothing meanwhile and
	// asks again with a backoff (1 s doubling to 30 s); the message is its last error
	// (the URL and the agent's words, never the token). False once the agent answers
	// again; absent until the replicator reported on the agent.
	ConditionAgentUnavailable = "AgentUnavailable"
	// ReasonAgentUnreachable: no connection to the agent's URL (refused, timed out, no
	// route, no such name).
	ReasonAgentUnreachable = "Unreachable"
	// ReasonAgentUnauthorized: the agent refused the bearer token (401/403), or the
	// replicator has no token to send (tokenSecretRef: a wrong or rotated token).
	ReasonAgentUnauthorized = "Unauthorized"
	// ReasonAgentTLSFailed: the TLS handshake failed: the agent's certificate is not
	// trusted by caSecretRef/caConfigMapRef or does not name the URL's host, or the
	// agent (started with --client-ca) refused the replicator's client certificate or
	// its absence (clientCertSecretRef).
	ReasonAgentTLSFailed = "TLSFailed"
	// ReasonAgentChannelHeld: another consumer holds the agent's channel (409): a second
	// pair, or a replicator outside the cluster, on the same channel.
	ReasonAgentChannelHeld = "ChannelHeld"
	// ReasonAgentError: the agent answered with another error (e.g. 500: it cannot read
	// the master's files; its message says which).
	ReasonAgentError = "AgentError"
	// ReasonAgentAnswering: the agent serves the replicator (AgentUnavailable=False).
	ReasonAgentAnswering = "Answering"
)
