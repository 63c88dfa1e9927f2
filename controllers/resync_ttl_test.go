package controllers

import (
	"fmt"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
)

// TestResyncTTLAfterFinished: a finished resync is deleted once
// spec.ttlSecondsAfterFinished has passed, and what it owns carries owner references to
// it (the garbage collector deletes them with it); without the field it stays 7 days.
func TestResyncTTLAfterFinished(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	createPair(t, ctx, newPair(ns, "p"))
	rs := &v1.UserResync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "short"},
		Spec: v1.UserResyncSpec{PairName: "p", Users: []string{"alice"}, Mode: v1.ResyncVerify, TTLSecondsAfterFinished: ptr.To[int32](2)}}
	if err := k8s.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	running := waitPhase(t, ctx, ns, "short", v1.ResyncRunning)
	// Everything the resync made is owned by it.
	for _, o := range []struct {
		obj  client.Object
		name string
	}{
		{&corev1.ConfigMap{}, operator.ReportConfigMapName("short")},
		{&corev1.ServiceAccount{}, operator.ReplicatorName("short")},
		{&rbacv1.Role{}, operator.ReplicatorName("short")},
		{&rbacv1.RoleBinding{}, operator.ReplicatorName("short")},
		{&batchv1.Job{}, operator.JobName("short")},
	} {
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: o.name}, o.obj); err != nil {
			t.Fatalf("%T %s: %v", o.obj, o.name, err)
		}
		if !metav1.IsControlledBy(o.obj, running) {
			t.Fatalf("%T %s is not owned by the resync: %v", o.obj, o.name, o.obj.GetOwnerReferences())
		}
	}
	finishJob(t, ctx, ns, "short", true)
	waitPhase(t, ctx, ns, "short", v1.ResyncSucceeded)
	eventually(t, "expired resync deleted", func() error {
		if _, err := getResync(ctx, ns, "short"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (err %v)", err)
		}
		return nil
	})

	// Without the field: 7 days. A resync that finished 8 days ago goes, one that finished
	// 6 days ago stays (its reconcile asks to be woken in a day).
	for _, tc := range []struct {
		name    string
		age     time.Duration
		deleted bool
	}{{"old", 8 * 24 * time.Hour, true}, {"recent", 6 * 24 * time.Hour, false}} {
		r := &v1.UserResync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: tc.name},
			Spec: v1.UserResyncSpec{PairName: "nosuchpair", Users: []string{"alice"}, Mode: v1.ResyncVerify}}
		if err := k8s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		waitPhase(t, ctx, ns, tc.name, v1.ResyncPending)
		eventually(t, "finish "+tc.name, func() error {
			cur, err := getResync(ctx, ns, tc.name)
			if err != nil {
				return err
			}
			done := metav1.NewTime(time.Now().Add(-tc.age))
			operator.SetResyncPhase(cur, v1.ResyncSucceeded, v1.ReasonSucceeded, "done")
			cur.Status.CompletionTime = &done
			return k8s.Status().Update(ctx, cur)
		})
	}
	eventually(t, "8-day-old resync deleted", func() error {
		if _, err := getResync(ctx, ns, "old"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (err %v)", err)
		}
		return nil
	})
	rec := &UserResyncReconciler{Client: k8s, APIReader: k8s, Recorder: nopRecorder{}, Pod: operator.PodOptions{Image: testImage}, Clock: clock.RealClock{}}
	rec.events = newReportEvents(k8s)
	res, err := rec.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "recent"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.RequeueAfter < 23*time.Hour || res.RequeueAfter > 25*time.Hour {
		t.Fatalf("6-day-old resync: requeue after %v, want about a day", res.RequeueAfter)
	}
	if _, err := getResync(ctx, ns, "recent"); err != nil {
		t.Fatalf("6-day-old resync: %v", err)
	}
}
