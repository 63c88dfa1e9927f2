package operator

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// PairObservation is what the manager saw for one pair in one reconcile.
type PairObservation struct {
	Deployment *appsv1.Deployment // nil when not created yet
	Report     *report.Summary    // nil when none (or invalid, see ReportErr)
	ReportErr  error              // why Report is nil, if the ConfigMap held something bad
	// MissingReferences names the Secrets, ConfigMaps and keys the pods mount that do
	// not exist (MissingReferences' sentences); empty when all are there.
	MissingReferences []string
	// DisallowedVolumes names the spec fields asking for volumes the manager may not
	// mount (DisallowedVolumes); the pair then has no Deployment.
	DisallowedVolumes []string
}

// PairStatus computes the whole status of a pair from an observation. It is a pure
// function of its inputs: the same observation gives the same status, so an unchanged
// world gives no status write (condition transition times are kept by SetStatusCondition).
func PairStatus(pair *v1.ReplicationPair, obs PairObservation) v1.ReplicationPairStatus {
	st := *pair.Status.DeepCopy()
	st.ObservedGeneration = pair.Generation
	c := conditionSetter{conds: &st.Conditions, gen: pair.Generation}

	st.Replicator = workload(pair, obs.Deployment)
	setWorkloadConditions(c, st.Replicator.State, obs)

	// Plaintext asked for: said for as long as the spec asks it.
	if msg := PlaintextMessage(pair); msg != "" {
		c.set(v1.ConditionPlaintextPassword, metav1.ConditionTrue, v1.ReasonPlaintextRequested, msg)
	} else {
		c.clear(v1.ConditionPlaintextPassword)
	}

	if obs.Report == nil {
		reason, msg := v1.ReasonNoReport, "the replicator has not published a report yet"
		if obs.ReportErr != nil {
			reason, msg = v1.ReasonReportInvalid, trunc(obs.ReportErr.Error(), maxText)
		}
		c.set(v1.ConditionInSync, metav1.ConditionUnknown, reason, msg)
		c.set(v1.ConditionSplitBrainSuspected, metav1.ConditionUnknown, reason, msg)
		return st
	}
	foldPairReport(&st, c, obs.Report)
	return st
}

// conditionSetter sets and removes conditions of one status, stamped with the
// generation observed.
type conditionSetter struct {
	conds *[]metav1.Condition
	gen   int64
}

func (c conditionSetter) set(t string, s metav1.ConditionStatus, reason, msg string) {
	apimeta.SetStatusCondition(c.conds, metav1.Condition{
		Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: c.gen,
	})
}

func (c conditionSetter) clear(t string) { apimeta.RemoveStatusCondition(c.conds, t) }

// setWorkloadConditions sets Ready, Reconciling and Stalled from the replicator's
// workload state and what stops it from running.
func setWorkloadConditions(c conditionSetter, state v1.WorkloadState, obs PairObservation) {
	// A missing Secret or ConfigMap is the cause whatever the rollout shows (a pod that
	// waits for its volumes, later a progress deadline), so it is named instead. A
	// suspended pair runs no pod; it is told when it resumes. (One switch, so each pass
	// sets the conditions in the same order: no status churn.)
	missing := len(obs.MissingReferences) > 0 && state != v1.WorkloadSuspended
	switch {
	case len(obs.DisallowedVolumes) > 0 && state != v1.WorkloadSuspended:
		msg := VolumeMessage(obs.DisallowedVolumes)
		c.clear(v1.ConditionReconciling)
		c.set(v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonVolumeNotAllowed, msg)
		c.set(v1.ConditionReady, metav1.ConditionFalse, v1.ReasonVolumeNotAllowed, msg)
	case missing:
		msg := ReferenceMessage(obs.MissingReferences)
		c.clear(v1.ConditionReconciling)
		c.set(v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonReferenceMissing, msg)
		c.set(v1.ConditionReady, metav1.ConditionFalse, v1.ReasonReferenceMissing, msg)
	case state != v1.WorkloadSuspended && SyncLogStall(obs.Report) != "":
		msg := SyncLogStall(obs.Report)
		c.clear(v1.ConditionReconciling)
		c.set(v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonSyncLogNotWritten, msg)
		c.set(v1.ConditionReady, metav1.ConditionFalse, v1.ReasonSyncLogNotWritten, msg)
	case state == v1.WorkloadSuspended:
		c.clear(v1.ConditionReconciling)
		c.clear(v1.ConditionStalled)
		// Ready: the pair is what its spec asks (kstatus Current), so a suspended pair
		// does not block `kubectl wait` or a GitOps health check forever.
		c.set(v1.ConditionReady, metav1.ConditionTrue, v1.ReasonSuspended, "suspended as spec.suspend asks: the replicator is scaled to zero")
	case state == v1.WorkloadProgressing:
		c.clear(v1.ConditionStalled)
		c.set(v1.ConditionReconciling, metav1.ConditionTrue, v1.ReasonProgressing, "the replicator Deployment is rolling out")
		c.set(v1.ConditionReady, metav1.ConditionFalse, v1.ReasonProgressing, "the replicator is not available yet")
	case state == v1.WorkloadUnavailable:
		c.clear(v1.ConditionReconciling)
		msg := "the replicator Deployment exceeded its progress deadline"
		if d := deployCondition(obs.Deployment, appsv1.DeploymentProgressing); d != nil && d.Message != "" {
			msg += ": " + d.Message
		}
		c.set(v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonRolloutStalled, msg)
		c.set(v1.ConditionReady, metav1.ConditionFalse, v1.ReasonRolloutStalled, msg)
	case state == v1.WorkloadRunning:
		c.clear(v1.ConditionReconciling)
		c.clear(v1.ConditionStalled)
		if obs.Report != nil && obs.Report.LastBatch != nil && LastBatch(obs.Report.LastBatch).Result == v1.BatchFailed {
			c.set(v1.ConditionReady, metav1.ConditionFalse, v1.ReasonReplicatorFailing,
				fmt.Sprintf("every user of the last batch failed (%d)", obs.Report.LastBatch.Failed))
		} else {
			c.set(v1.ConditionReady, metav1.ConditionTrue, v1.ReasonAvailable, "the replicator is running")
		}
	}
}

// foldPairReport folds the replicator's report into st: state, report, last batch,
// backlog and lag, and the InSync and SplitBrainSuspected conditions.
func foldPairReport(st *v1.ReplicationPairStatus, c conditionSetter, r *report.Summary) {
	if r.State != nil {
		var cs metav1.ConditionStatus
		var reason, msg string
		st.State, cs, reason, msg = foldState(st.State, r.State)
		c.set(v1.ConditionStateLost, cs, reason, msg)
	}
	st.Report = FoldReport(r)
	st.LastBatch = LastBatch(r.LastBatch)
	st.Backlog = nil
	if r.Backlog != nil {
		b := int64(*r.Backlog)
		st.Backlog = &b
	}
	st.PendingSince = nil
	if r.PendingSince != nil {
		t := metav1.NewTime(*r.PendingSince)
		st.PendingSince = &t
	}
	st.Progress = FoldProgress(r.Progress)
	setInSyncOrSeeding(c, r)
	setSeeding(c, r)
	setSplitBrainSuspected(c, r)
	setCheckConditions(c, r)
	setAgentCondition(c, r)
}

func setInSync(c conditionSetter, r *report.Summary) {
	switch {
	case r.Backlog != nil && *r.Backlog > 0:
		c.set(v1.ConditionInSync, metav1.ConditionFalse, v1.ReasonBacklog, fmt.Sprintf("%d sync-log entries wait", *r.Backlog))
	case r.LastBatch != nil && r.LastBatch.Failed > 0:
		c.set(v1.ConditionInSync, metav1.ConditionFalse, v1.ReasonUsersFailing,
			fmt.Sprintf("%d of %d users of the last batch failed; they are retried", r.LastBatch.Failed, r.LastBatch.Users))
	case r.LastError != "":
		c.set(v1.ConditionInSync, metav1.ConditionFalse, v1.ReasonReplicatorError, trunc(r.LastError, maxText))
	default:
		c.set(v1.ConditionInSync, metav1.ConditionTrue, v1.ReasonCaughtUp, "no backlog and the last batch succeeded")
	}
}

func setSplitBrainSuspected(c conditionSetter, r *report.Summary) {
	kept := splitBrainKept(r.DecisionCounts)
	collisions := r.MismatchCounts[string(report.MismatchUniqueIDCollision)]
	noMark := r.DecisionCounts[string(report.ActionKeep)+"/"+string(report.EvidenceNoMark)]
	switch {
	case kept > 0:
		c.set(v1.ConditionSplitBrainSuspected, metav1.ConditionTrue, v1.ReasonReplicaOnlyKept,
			fmt.Sprintf("%d replica-only folders without evidence were kept; see status.report and Events", kept))
	case noMark > 0:
		c.set(v1.ConditionSplitBrainSuspected, metav1.ConditionTrue, v1.ReasonNoMarkKept,
			fmt.Sprintf("%d folders the master deleted were kept: their in-step marks are unknown (the replicator's state is new or was lost), so mail written on the replica since cannot be ruled out; check them, then resync their users", noMark))
	case collisions > 0:
		c.set(v1.ConditionSplitBrainSuspected, metav1.ConditionTrue, v1.ReasonUniqueIDCollision,
			fmt.Sprintf("%d folder names are held by different uniqueids at the two ends", collisions))
	default:
		c.set(v1.ConditionSplitBrainSuspected, metav1.ConditionFalse, v1.ReasonNoEvidenceOfSplitBrain, "no replica-only folder kept, no uniqueid collision")
	}
}

// splitBrainKept counts decisions that kept (or moved aside) a replica folder for want
// of evidence.
func splitBrainKept(c map[string]int) int {
	n := 0
	for _, a := range []report.Action{report.ActionKeep, report.ActionMoveAside} {
		n += c[string(a)+"/"+string(report.EvidenceNone)]
	}
	return n
}

func workload(pair *v1.ReplicationPair, d *appsv1.Deployment) v1.ReplicatorStatus {
	ws := v1.ReplicatorStatus{DeploymentName: ReplicatorName(pair.Name), Mode: PairMode(pair)}
	if d != nil {
		ws.AvailableReplicas = d.Status.AvailableReplicas
	}
	switch {
	case pair.Spec.Suspend:
		ws.State = v1.WorkloadSuspended
	case d == nil || d.Status.ObservedGeneration < d.Generation:
		ws.State = v1.WorkloadProgressing
	case deployStalled(d):
		ws.State = v1.WorkloadUnavailable
	case d.Status.UpdatedReplicas >= 1 && d.Status.AvailableReplicas >= 1 && d.Status.Replicas == d.Status.UpdatedReplicas:
		ws.State = v1.WorkloadRunning
	default:
		ws.State = v1.WorkloadProgressing
	}
	return ws
}

func deployCondition(d *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	if d == nil {
		return nil
	}
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == t {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

func deployStalled(d *appsv1.Deployment) bool {
	c := deployCondition(d, appsv1.DeploymentProgressing)
	return c != nil && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded"
}

// PlaintextMessage names the endpoints whose tls.mode is None ("" when none is): their
// csync password crosses the network in clear.
func PlaintextMessage(pair *v1.ReplicationPair) string {
	var sides []string
	for _, e := range []struct {
		name string
		ep   v1.Endpoint
	}{{"master", pair.Spec.Master.Endpoint}, {"replica", pair.Spec.Replica}} {
		if e.ep.TLS != nil && e.ep.TLS.Mode == v1.TLSModeNone {
			sides = append(sides, e.name)
		}
	}
	switch len(sides) {
	case 0:
		return ""
	case 1:
		return fmt.Sprintf("spec.%s.tls.mode is None: the replicator's password for the %s crosses the network in clear", sides[0], sides[0])
	}
	return "spec.master.tls.mode and spec.replica.tls.mode are None: the replicator's passwords cross the network in clear"
}
