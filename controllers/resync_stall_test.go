package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
)

// jobPod plays the Job controller and the kubelet (there are none in envtest): it
// creates a pod of the Job from its template and writes the given status.
func jobPod(t *testing.T, ctx context.Context, job *batchv1.Job, st corev1.PodStatus) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: job.Namespace, GenerateName: job.Name + "-", Labels: job.Spec.Template.Labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID, Controller: ptr.To(true)}},
		},
		Spec: job.Spec.Template.Spec,
	}
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	pod.Status = st
	if err := k8s.Status().Update(ctx, pod); err != nil {
		t.Fatalf("pod status: %v", err)
	}
}

// startTwoResyncs creates a pair and two resyncs of it and waits until the first runs.
func startTwoResyncs(t *testing.T, ctx context.Context, ns string) *batchv1.Job {
	t.Helper()
	createPair(t, ctx, newPair(ns, "p"))
	for _, name := range []string{"first", "second"} {
		rs := &v1.UserResync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: v1.UserResyncSpec{PairName: "p", Users: []string{"alice"}, Mode: v1.ResyncSync}}
		if err := k8s.Create(ctx, rs); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond) // creation timestamps have second precision: first is older
	}
	waitPhase(t, ctx, ns, "first", v1.ResyncRunning)
	waitPhase(t, ctx, ns, "second", v1.ResyncPending)
	var job *batchv1.Job
	eventually(t, "job", func() (err error) { job, err = getJob(ctx, ns, "first"); return err })
	return job
}

// wantCannotStart waits for the first resync to fail with PodCannotStart naming want,
// its Job to go, and the second resync to get the pair's turn.
func wantCannotStart(t *testing.T, ctx context.Context, ns, want string) {
	t.Helper()
	failed := waitPhase(t, ctx, ns, "first", v1.ResyncFailed)
	c := cond(failed.Status.Conditions, v1.ConditionStalled)
	if c.Status != metav1.ConditionTrue || c.Reason != v1.ReasonPodCannotStart || !strings.Contains(c.Message, want) {
		t.Fatalf("Stalled = %s/%s %q, want True/%s naming %q", c.Status, c.Reason, c.Message, v1.ReasonPodCannotStart, want)
	}
	eventually(t, "stalled job deleted", func() error {
		if _, err := getJob(ctx, ns, "first"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("job still there (err %v)", err)
		}
		return nil
	})
	waitPhase(t, ctx, ns, "second", v1.ResyncRunning)
}

// TestResyncImagePullStalls: a resync whose image cannot be pulled fails with the
// kubelet's reason instead of running until the Job's 6-hour deadline, and frees the
// pair for its next resync.
func TestResyncImagePullStalls(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	job := startTwoResyncs(t, ctx, ns)
	jobPod(t, ctx, job, corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
		Name: "replicator", Image: testImage,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "` + testImage + `"`}},
	}}})
	wantCannotStart(t, ctx, ns, "ImagePullBackOff")
}

// TestResyncUnschedulableStalls: a pod the scheduler could not place for longer than the
// grace fails the resync with the scheduler's message.
func TestResyncUnschedulableStalls(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	job := startTwoResyncs(t, ctx, ns)
	since := metav1.NewTime(time.Now().Add(-time.Minute))
	jobPod(t, ctx, job, corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
		Message: "0/3 nodes are available: 3 Insufficient memory.", LastTransitionTime: since,
	}}})
	wantCannotStart(t, ctx, ns, "Insufficient memory")
}

// TestResyncFailedCreateStalls: when the API server refuses the Job's pod (Pod Security
// admission, a quota) there is no pod at all; the Job controller's FailedCreate Event
// gives the reason.
func TestResyncFailedCreateStalls(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	job := startTwoResyncs(t, ctx, ns)
	const refusal = `pods "first-x7k2p" is forbidden: violates PodSecurity "restricted:latest": hostPath volumes (volume "sync-log")`
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: ns, GenerateName: "first."},
		InvolvedObject: corev1.ObjectReference{APIVersion: "batch/v1", Kind: "Job", Namespace: ns, Name: job.Name, UID: job.UID},
		Reason:         "FailedCreate", Message: "Error creating: " + refusal, Type: corev1.EventTypeWarning,
		Source: corev1.EventSource{Component: "job-controller"}, FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Count: 1,
	}
	if err := k8s.Create(ctx, ev); err != nil {
		t.Fatal(err)
	}
	wantCannotStart(t, ctx, ns, refusal)
}
