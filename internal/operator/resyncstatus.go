package operator

import (
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// SetResyncPhase sets phase and the conditions that go with it: Pending and Running are
// Reconciling, Succeeded is Ready, Failed is Stalled (a person must look; the resync is
// never retried by itself).
func SetResyncPhase(rs *v1.UserResync, phase v1.ResyncPhase, reason, msg string) {
	st := &rs.Status
	st.Phase = phase
	st.ObservedGeneration = rs.Generation
	gen := rs.Generation
	set := func(t string, s metav1.ConditionStatus) {
		apimeta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen,
		})
	}
	switch phase {
	case v1.ResyncPending, v1.ResyncRunning:
		apimeta.RemoveStatusCondition(&st.Conditions, v1.ConditionStalled)
		set(v1.ConditionReconciling, metav1.ConditionTrue)
		set(v1.ConditionReady, metav1.ConditionFalse)
	case v1.ResyncSucceeded:
		apimeta.RemoveStatusCondition(&st.Conditions, v1.ConditionStalled)
		apimeta.RemoveStatusCondition(&st.Conditions, v1.ConditionReconciling)
		set(v1.ConditionReady, metav1.ConditionTrue)
	case v1.ResyncFailed:
		apimeta.RemoveStatusCondition(&st.Conditions, v1.ConditionReconciling)
		set(v1.ConditionStalled, metav1.ConditionTrue)
		set(v1.ConditionReady, metav1.ConditionFalse)
	}
}

// SetResyncStalled keeps a Pending or Running resync in its phase but marks it Stalled:
// it cannot go on until a person fixes something outside it (a missing Secret). The
// next SetResyncPhase of a Pending or Running phase clears Stalled again.
func SetResyncStalled(rs *v1.UserResync, phase v1.ResyncPhase, reason, msg string) {
	st := &rs.Status
	st.Phase = phase
	st.ObservedGeneration = rs.Generation
	set := func(t string, s metav1.ConditionStatus) {
		apimeta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: rs.Generation,
		})
	}
	apimeta.RemoveStatusCondition(&st.Conditions, v1.ConditionReconciling)
	set(v1.ConditionStalled, metav1.ConditionTrue)
	set(v1.ConditionReady, metav1.ConditionFalse)
}

// JobPodRunning reports whether a pod of the Job is running (ready: no replicator pod
// has a readiness probe). Its Secret and ConfigMap volumes were mounted, so a reference
// missing now does not stop it.
func JobPodRunning(job *batchv1.Job) bool {
	return job.Status.Ready != nil && *job.Status.Ready > 0
}

// JobFinished reports whether the Job reached Complete or Failed, and which.
func JobFinished(job *batchv1.Job) (finished, succeeded bool, cond *batchv1.JobCondition) {
	for i := range job.Status.Conditions {
		c := &job.Status.Conditions[i]
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return true, true, c
		case batchv1.JobFailed:
			return true, false, c
		}
	}
	return false, false, nil
}

// ResyncOutcome decides the terminal phase of a resync whose Job finished (job != nil)
// or vanished (job == nil), using the replicator's report when there is one. ok is false
// when the resync is not finished yet.
func ResyncOutcome(rs *v1.UserResync, job *batchv1.Job, r *report.Summary) (phase v1.ResyncPhase, reason, msg string, ok bool) {
	if job != nil {
		finished, succeeded, c := JobFinished(job)
		if !finished {
			return "", "", "", false
		}
		if succeeded {
			return v1.ResyncSucceeded, v1.ReasonSucceeded, resultMessage(rs, r, "the Job completed"), true
		}
		if c.Reason == batchv1.JobReasonDeadlineExceeded {
			return v1.ResyncFailed, v1.ReasonDeadlineExceeded, "the Job ran past its activeDeadlineSeconds: " + c.Message, true
		}
		if reason, msg, ok := reportFailure(rs, r); ok {
			return v1.ResyncFailed, reason, msg, true
		}
		return v1.ResyncFailed, v1.ReasonJobFailed, trunc(fmt.Sprintf("the Job failed (%s): %s", c.Reason, c.Message), maxText), true
	}
	// The Job is gone: trust a finished report, else the run is lost.
	if r != nil && r.Finished != nil {
		if reason, msg, ok := reportFailure(rs, r); ok {
			return v1.ResyncFailed, reason, msg, true
		}
		return v1.ResyncSucceeded, v1.ReasonSucceeded, resultMessage(rs, r, "the replicator finished"), true
	}
	return v1.ResyncFailed, v1.ReasonJobLost, "the Job disappeared before it finished; create a new UserResync to run again", true
}

func reportFailure(rs *v1.UserResync, r *report.Summary) (reason, msg string, ok bool) {
	if r == nil {
		return "", "", false
	}
	if r.UsersFailed > 0 {
		return v1.ReasonUsersFailed, fmt.Sprintf("%d of %d users failed", r.UsersFailed, r.UsersTotal), true
	}
	if rs.Spec.Mode == v1.ResyncVerify {
		differ := 0
		for _, u := range r.Users {
			if u.Outcome == report.OutcomeDiffers {
				differ++
			}
		}
		if differ > 0 || len(r.MismatchCounts) > 0 {
			return v1.ReasonDifferencesFound, fmt.Sprintf("verify found differences (%d users differ)", differ), true
		}
	}
	if r.LastError != "" {
		return v1.ReasonJobFailed, trunc(r.LastError, maxText), true
	}
	return "", "", false
}

func resultMessage(rs *v1.UserResync, r *report.Summary, prefix string) string {
	if r == nil {
		return prefix
	}
	return fmt.Sprintf("%s: %d users, %d failed", prefix, r.UsersTotal, r.UsersFailed)
}

// FoldResyncReport copies a resync's report into its status, bounded.
func FoldResyncReport(st *v1.UserResyncStatus, r *report.Summary) {
	st.UsersTotal = int32(r.UsersTotal)
	st.UsersFailed = int32(r.UsersFailed)
	st.Users = UserResults(r.Users)
	st.Report = FoldReport(r)
	st.Progress = FoldProgress(r.Progress)
	FitStatus(st, &st.Report, &st.Users, StatusBudget)
}
