package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

func getResync(ctx context.Context, ns, name string) (*v1.UserResync, error) {
	var r v1.UserResync
	err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &r)
	return &r, err
}

func getJob(ctx context.Context, ns, name string) (*batchv1.Job, error) {
	var j batchv1.Job
	err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &j)
	return &j, err
}

func waitPhase(t *testing.T, ctx context.Context, ns, name string, want v1.ResyncPhase) *v1.UserResync {
	t.Helper()
	var r *v1.UserResync
	eventually(t, fmt.Sprintf("%s reaches %s", name, want), func() (err error) {
		r, err = getResync(ctx, ns, name)
		if err != nil {
			return err
		}
		if r.Status.Phase != want {
			return fmt.Errorf("phase %q (%v)", r.Status.Phase, r.Status.Conditions)
		}
		return nil
	})
	return r
}

// finishJob plays the Job controller (there is none in envtest).
func finishJob(t *testing.T, ctx context.Context, ns, name string, succeed bool) {
	t.Helper()
	eventually(t, "job status", func() error {
		j, err := getJob(ctx, ns, name)
		if err != nil {
			return err
		}
		now := metav1.Now()
		j.Status.StartTime = ptr.To(metav1.NewTime(now.Add(-time.Minute)))
		if succeed {
			j.Status.Succeeded = 1
			j.Status.CompletionTime = &now
			j.Status.Conditions = []batchv1.JobCondition{
				{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: "CompletionsReached", LastTransitionTime: now},
				{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: "CompletionsReached", LastTransitionTime: now},
			}
		} else {
			j.Status.Failed = 1
			j.Status.Conditions = []batchv1.JobCondition{
				{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonPodFailurePolicy, LastTransitionTime: now},
				{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonPodFailurePolicy, Message: "container replicator exited with 1", LastTransitionTime: now},
			}
		}
		return k8s.Status().Update(ctx, j)
	})
}

func kstatusOf(t *testing.T, obj any) status.Status {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	res, err := status.Compute(&unstructured.Unstructured{Object: m})
	if err != nil {
		t.Fatal(err)
	}
	return res.Status
}

func TestResyncLifecycle(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	createPair(t, ctx, newPair(ns, "p"))

	r1 := &v1.UserResync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "r1"},
		Spec: v1.UserResyncSpec{PairName: "p", Users: []string{"alice", "bob"}, Mode: v1.ResyncSync}}
	r2 := &v1.UserResync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "r2"},
		Spec: v1.UserResyncSpec{PairName: "p", Users: []string{"carol"}, Mode: v1.ResyncVerify}}
	for _, r := range []*v1.UserResync{r1, r2} {
		if err := k8s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}

	// The older one runs; the other waits, without a Job.
	got1 := waitPhase(t, ctx, ns, "r1", v1.ResyncRunning)
	got2 := waitPhase(t, ctx, ns, "r2", v1.ResyncPending)
	if c := cond(got2.Status.Conditions, v1.ConditionReady); c.Reason != v1.ReasonWaitingForTurn {
		t.Fatalf("r2 pending reason %q (%s), want %s", c.Reason, c.Message, v1.ReasonWaitingForTurn)
	}
	if _, err := getJob(ctx, ns, "r2"); !apierrors.IsNotFound(err) {
		t.Fatalf("r2 has a job while r1 runs: err = %v", err)
	}
	j, err := getJob(ctx, ns, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if got1.Status.JobName != "r1" || got1.Status.StartTime == nil {
		t.Fatalf("r1 status = %+v", got1.Status)
	}
	args := j.Spec.Template.Spec.Containers[0].Args
	if !slices.Equal(args[:5], []string{"sync", "--user", "alice", "--user", "bob"}) ||
		!slices.Contains(args, "--report-configmap") || args[slices.Index(args, "--report-configmap")+1] != "r1-report" {
		t.Fatalf("job args %q", args)
	}
	if ptr.Deref(j.Spec.BackoffLimit, -1) != operator.JobBackoffLimit || j.Spec.ActiveDeadlineSeconds == nil ||
		j.Spec.TTLSecondsAfterFinished == nil || j.Spec.PodFailurePolicy == nil || !metav1.IsControlledBy(j, got1) {
		t.Fatalf("job spec = %+v", j.Spec)
	}
	if j.Spec.Template.Spec.ServiceAccountName != "r1-replicator" {
		t.Fatalf("job service account %q", j.Spec.Template.Spec.ServiceAccountName)
	}

	// The replicator reports through its own ConfigMap, as its own ServiceAccount.
	fin := time.Now().UTC()
	sum := &report.Summary{Kind: report.SummaryKind, Mode: "sync", Pair: "p", Started: fin.Add(-time.Minute), Updated: fin, Finished: &fin,
		UsersTotal: 2, Users: []report.UserResult{{User: "alice", Outcome: report.OutcomeSynced, Actions: 3}, {User: "bob", Outcome: report.OutcomeEqual}},
		DecisionCounts: map[string]int{"create/none": 3}}
	eventually(t, "publish r1 report", func() error {
		return replicatorSink(t, ns, "r1", "r1-report").Publish(ctx, sum)
	})
	finishJob(t, ctx, ns, "r1", true)
	done1 := waitPhase(t, ctx, ns, "r1", v1.ResyncSucceeded)
	if done1.Status.UsersTotal != 2 || len(done1.Status.Users) != 2 || done1.Status.CompletionTime == nil {
		t.Fatalf("r1 result = %+v", done1.Status)
	}
	if s := kstatusOf(t, done1); s != status.CurrentStatus {
		t.Fatalf("kstatus of succeeded resync = %s, want Current", s)
	}
	eventually(t, "finished job deleted", func() error {
		if _, err := getJob(ctx, ns, "r1"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("job r1 still there (err %v)", err)
		}
		return nil
	})

	// Now r2 runs, and only now.
	run2 := waitPhase(t, ctx, ns, "r2", v1.ResyncRunning)
	if run2.Status.StartTime.Before(done1.Status.CompletionTime) {
		t.Fatalf("r2 started %v before r1 completed %v", run2.Status.StartTime, done1.Status.CompletionTime)
	}
	vs := &report.Summary{Kind: report.SummaryKind, Mode: "verify", Pair: "p", Started: fin, Updated: fin, Finished: &fin,
		UsersTotal: 1, Users: []report.UserResult{{User: "carol", Outcome: report.OutcomeDiffers, Mismatches: 1}},
		MismatchCounts: map[string]int{"content-differs": 1},
		Mismatches: []report.Mismatch{{ID: report.RecordID("carol", "u1"), Time: fin, User: "carol", Kind: report.MismatchContentDiffers,
			UniqueID: "u1", MasterName: "user.carol", ReplicaName: "user.carol", Detail: "CRC differs"}}}
	eventually(t, "publish r2 report", func() error {
		return replicatorSink(t, ns, "r2", "r2-report").Publish(ctx, vs)
	})
	finishJob(t, ctx, ns, "r2", false)
	failed := waitPhase(t, ctx, ns, "r2", v1.ResyncFailed)
	if c := cond(failed.Status.Conditions, v1.ConditionReady); c.Reason != v1.ReasonDifferencesFound {
		t.Fatalf("r2 failure reason %q (%s), want %s", c.Reason, c.Message, v1.ReasonDifferencesFound)
	}
	if s := kstatusOf(t, failed); s != status.FailedStatus {
		t.Fatalf("kstatus of failed resync = %s, want Failed", s)
	}
	eventually(t, "mismatch summary on r2", func() error {
		notes, err := summaryEvents(ctx, ns, failed.UID)
		if err != nil {
			return err
		}
		if n := notes[v1.EventRecordsResolved]; len(n) != 1 || !strings.Contains(n[0], "mismatch content-differs=1") ||
			!strings.Contains(n[0], vs.Mismatches[0].ID) {
			return fmt.Errorf("events %v", notes)
		}
		return nil
	})

	// Manager metrics count the outcomes.
	if v := testutil.ToFloat64(resyncOutcomes.WithLabelValues("Sync", "Succeeded", v1.ReasonSucceeded)); v < 1 {
		t.Errorf("resync outcome metric (Sync/Succeeded) = %v", v)
	}
	if v := testutil.ToFloat64(resyncOutcomes.WithLabelValues("Verify", "Failed", v1.ReasonDifferencesFound)); v < 1 {
		t.Errorf("resync outcome metric (Verify/Failed) = %v", v)
	}

	// Re-applying the finished r1 from Git: identical spec, no write, and a reconcile of
	// it starts nothing.
	cur, _ := getResync(ctx, ns, "r1")
	rv := cur.ResourceVersion
	if err := k8s.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	if cur.ResourceVersion != rv {
		t.Fatalf("identical re-apply changed rv %s -> %s", rv, cur.ResourceVersion)
	}
	rec := &UserResyncReconciler{Client: k8s, APIReader: k8s, Recorder: nopRecorder{}, Pod: operator.PodOptions{Image: testImage}, Clock: clock.RealClock{}}
	rec.events = newReportEvents(k8s)
	if _, err := rec.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(cur)}); err != nil {
		t.Fatal(err)
	}
	if _, err := getJob(ctx, ns, "r1"); !apierrors.IsNotFound(err) {
		t.Fatalf("finished resync got a job again: err = %v", err)
	}
	after, _ := getResync(ctx, ns, "r1")
	if after.Status.Phase != v1.ResyncSucceeded || after.ResourceVersion != rv {
		t.Fatalf("finished resync changed: phase %s rv %s -> %s", after.Status.Phase, rv, after.ResourceVersion)
	}
}

// TestResyncWaitsForPair: a resync of a pair that does not exist stays Pending.
func TestResyncWaitsForPair(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	r := &v1.UserResync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "early"},
		Spec: v1.UserResyncSpec{PairName: "later", Users: []string{"alice"}, Mode: v1.ResyncSync}}
	if err := k8s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	got := waitPhase(t, ctx, ns, "early", v1.ResyncPending)
	eventually(t, "waiting for pair", func() error {
		got, _ = getResync(ctx, ns, "early")
		if c := cond(got.Status.Conditions, v1.ConditionReady); c.Reason != v1.ReasonWaitingForPair {
			return fmt.Errorf("reason %q", c.Reason)
		}
		return nil
	})
	createPair(t, ctx, newPair(ns, "later"))
	waitPhase(t, ctx, ns, "early", v1.ResyncRunning)
}

func cond(cs []metav1.Condition, typ string) metav1.Condition {
	for _, c := range cs {
		if c.Type == typ {
			return c
		}
	}
	return metav1.Condition{}
}

type nopRecorder struct{}

func (nopRecorder) Eventf(runtime.Object, runtime.Object, string, string, string, string, ...any) {}
