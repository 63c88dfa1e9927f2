package controllers

import (
	"fmt"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
)

// TestResyncReferenceMissing: a resync of a pair whose Secrets are missing waits Pending
// (Stalled, ReferenceMissing, a Warning Event) and creates no Job; it starts by itself
// once they exist. A Secret deleted before the Job's pod started makes the running
// resync say so, and recreating it clears that.
func TestResyncReferenceMissing(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	if err := k8s.Create(ctx, newPair(ns, "p")); err != nil {
		t.Fatal(err)
	}
	rs := &v1.UserResync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "r"},
		Spec: v1.UserResyncSpec{PairName: "p", Users: []string{"alice"}, Mode: v1.ResyncSync}}
	if err := k8s.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	const pending = `ReplicationPair "p": Secret "cyrus-creds" not found (spec.master.passwordSecretRef, spec.replica.passwordSecretRef); ` +
		`Secret "cyrus-ca" not found (spec.master.tls.caSecretRef); the Job starts once they exist`
	eventually(t, "resync waits for the Secrets", func() error {
		got, err := getResync(ctx, ns, "r")
		if err != nil {
			return err
		}
		if got.Status.Phase != v1.ResyncPending {
			return fmt.Errorf("phase %q", got.Status.Phase)
		}
		return wantReferenceMissing(got.Status.Conditions, pending)
	})
	if _, err := getJob(ctx, ns, "r"); !apierrors.IsNotFound(err) {
		t.Fatalf("job created while Secrets are missing: err = %v", err)
	}
	eventually(t, "one warning event on the resync", func() error {
		notes, err := referenceEvents(ctx, ns, rs.UID)
		if err != nil {
			return err
		}
		if len(notes) != 1 || notes[0] != pending {
			return fmt.Errorf("events %q", notes)
		}
		return nil
	})

	createPairSecrets(t, ctx, ns)
	got := waitPhase(t, ctx, ns, "r", v1.ResyncRunning)
	if c := cond(got.Status.Conditions, v1.ConditionStalled); c.Type != "" {
		t.Fatalf("running resync still Stalled: %s %q", c.Reason, c.Message)
	}
	if _, err := getJob(ctx, ns, "r"); err != nil {
		t.Fatalf("no job once the Secrets exist: %v", err)
	}

	// The CA Secret goes before the Job's pod started (envtest runs no pods).
	if err := k8s.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cyrus-ca"}}); err != nil {
		t.Fatal(err)
	}
	const running = `the pod of job r cannot start: Secret "cyrus-ca" not found (spec.master.tls.caSecretRef)`
	eventually(t, "running resync names the missing Secret", func() error {
		got, err := getResync(ctx, ns, "r")
		if err != nil {
			return err
		}
		if got.Status.Phase != v1.ResyncRunning {
			return fmt.Errorf("phase %q", got.Status.Phase)
		}
		return wantReferenceMissing(got.Status.Conditions, running)
	})
	createPairSecrets(t, ctx, ns)
	eventually(t, "running resync recovers", func() error {
		got, err := getResync(ctx, ns, "r")
		if err != nil {
			return err
		}
		if c := cond(got.Status.Conditions, v1.ConditionReady); got.Status.Phase != v1.ResyncRunning || c.Reason != v1.ReasonJobRunning {
			return fmt.Errorf("phase %q, Ready reason %q", got.Status.Phase, c.Reason)
		}
		if c := cond(got.Status.Conditions, v1.ConditionStalled); c.Type != "" {
			return fmt.Errorf("Stalled still %s %q", c.Reason, c.Message)
		}
		return nil
	})

	// A Job whose pod runs already is not held up by a Secret deleted now: the kubelet
	// mounted it when the pod started.
	var job batchv1.Job
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "r"}, &job); err != nil {
		t.Fatal(err)
	}
	one := int32(1)
	job.Status.Ready, job.Status.Active = &one, 1
	now := metav1.Now()
	job.Status.StartTime = &now
	if err := k8s.Status().Update(ctx, &job); err != nil {
		t.Fatal(err)
	}
	// The manager reconciles on the deletion too; let its cache see the running pod
	// first, so it cannot judge by the Job as it was.
	eventually(t, "manager sees the running pod", func() error {
		var cached batchv1.Job
		if err := mgrClient.Get(ctx, client.ObjectKeyFromObject(&job), &cached); err != nil {
			return err
		}
		if !operator.JobPodRunning(&cached) {
			return fmt.Errorf("cached job status %+v", cached.Status)
		}
		return nil
	})
	if err := k8s.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cyrus-ca"}}); err != nil {
		t.Fatal(err)
	}
	rec := &UserResyncReconciler{Client: k8s, APIReader: k8s, Recorder: nopRecorder{}, Pod: operator.PodOptions{Image: testImage}, Clock: clock.RealClock{}}
	rec.events = newReportEvents(k8s)
	if _, err := rec.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(rs)}); err != nil {
		t.Fatal(err)
	}
	got, _ = getResync(ctx, ns, "r")
	if c := cond(got.Status.Conditions, v1.ConditionReady); got.Status.Phase != v1.ResyncRunning || c.Reason != v1.ReasonJobRunning {
		t.Fatalf("running pod, Secret deleted: phase %q, Ready %s %q", got.Status.Phase, c.Reason, c.Message)
	}
}
