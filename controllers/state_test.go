package controllers

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// stateClaimOf returns the claim a pod spec mounts at the state directory.
func stateClaimOf(ps corev1.PodSpec) string {
	for _, m := range ps.Containers[0].VolumeMounts {
		if m.MountPath != "/var/lib/cyrusrepl/state" {
			continue
		}
		for _, v := range ps.Volumes {
			if v.Name == m.Name && v.PersistentVolumeClaim != nil {
				return v.PersistentVolumeClaim.ClaimName
			}
		}
	}
	return ""
}

// TestPairStateClaim (issue #10 item 2), against the real apiserver: the manager
// creates the pair's state claim (1Gi by default, the spec's storage class), the
// Deployment and a resync's Job mount it (the Job next to the pair's pod); a spec change
// rolls the Deployment but keeps the claim; reclaimPolicy Delete makes the pair its
// owner and Retain releases it again (a retained claim has no owner, so the garbage
// collector leaves it when the pair is deleted).
func TestPairStateClaim(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	pair := newPair(ns, "st")
	pair.Spec.State.StorageClassName = ptr.To("local")
	createPair(t, ctx, pair)
	key := types.NamespacedName{Namespace: ns, Name: operator.StateClaimName("st")}

	var pvc corev1.PersistentVolumeClaim
	eventually(t, "state claim created", func() error { return k8s.Get(ctx, key, &pvc) })
	if q := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; q.Cmp(resource.MustParse("1Gi")) != 0 ||
		ptr.Deref(pvc.Spec.StorageClassName, "") != "local" || pvc.Spec.AccessModes[0] != corev1.ReadWriteOnce {
		t.Fatalf("claim spec %+v", pvc.Spec)
	}
	if pvc.Labels[operator.LabelPair] != "st" || pvc.Labels[operator.LabelManagedBy] != operator.ManagerName || len(pvc.OwnerReferences) != 0 {
		t.Fatalf("retained claim: labels %v owners %+v", pvc.Labels, pvc.OwnerReferences)
	}
	uid := pvc.UID
	d, err := getDeployment(ctx, ns, "st")
	eventually(t, "deployment", func() (err error) { d, err = getDeployment(ctx, ns, "st"); return err })
	if got := stateClaimOf(d.Spec.Template.Spec); got != key.Name {
		t.Fatalf("deployment mounts state claim %q, want %q (err %v)", got, key.Name, err)
	}

	// A spec change rolls the pod (Recreate) but the claim stays.
	oldHash := d.Spec.Template.Annotations[operator.AnnotationSpecHash]
	updatePair(t, ctx, client.ObjectKeyFromObject(pair), func(p *v1.ReplicationPair) { p.Spec.Workers = 7 })
	eventually(t, "deployment rolled", func() error {
		d, err := getDeployment(ctx, ns, "st")
		if err != nil {
			return err
		}
		if d.Spec.Template.Annotations[operator.AnnotationSpecHash] == oldHash {
			return fmt.Errorf("spec hash unchanged")
		}
		if got := stateClaimOf(d.Spec.Template.Spec); got != key.Name {
			return fmt.Errorf("mounts %q", got)
		}
		return nil
	})
	if err := k8s.Get(ctx, key, &pvc); err != nil || pvc.UID != uid {
		t.Fatalf("claim after a spec change: uid %s (was %s), %v", pvc.UID, uid, err)
	}

	// A resync's Job mounts the same claim, on the pair's pod's node.
	rs := &v1.UserResync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "st-r"},
		Spec: v1.UserResyncSpec{PairName: "st", Users: []string{"alice"}, Mode: v1.ResyncSync}}
	if err := k8s.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	eventually(t, "resync job", func() error {
		j, err := getJob(ctx, ns, "st-r")
		if err != nil {
			return err
		}
		ps := j.Spec.Template.Spec
		if got := stateClaimOf(ps); got != key.Name {
			return fmt.Errorf("job mounts %q", got)
		}
		if ps.Affinity == nil || ps.Affinity.PodAffinity == nil || len(ps.Affinity.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution) != 1 {
			return fmt.Errorf("job affinity %+v", ps.Affinity)
		}
		return nil
	})

	// Delete: the pair owns the claim; Retain: released again.
	owned := func(want bool) func() error {
		return func() error {
			if err := k8s.Get(ctx, key, &pvc); err != nil {
				return err
			}
			has := len(pvc.OwnerReferences) == 1 && pvc.OwnerReferences[0].UID == pair.UID && ptr.Deref(pvc.OwnerReferences[0].Controller, false)
			if has != want {
				return fmt.Errorf("owner references %+v, want owned=%v", pvc.OwnerReferences, want)
			}
			return nil
		}
	}
	updatePair(t, ctx, client.ObjectKeyFromObject(pair), func(p *v1.ReplicationPair) { p.Spec.State.ReclaimPolicy = v1.StateDelete })
	eventually(t, "claim owned by the pair", owned(true))
	updatePair(t, ctx, client.ObjectKeyFromObject(pair), func(p *v1.ReplicationPair) { p.Spec.State.ReclaimPolicy = v1.StateRetain })
	eventually(t, "claim released", owned(false))
}

// TestPairStateLost: the replicator's reports through its ConfigMap, against the real
// apiserver: the first state is StateNew; a report on another state id (the claim was
// replaced) turns StateLost True, names the lost state in status.state.replacedID and
// is announced once as a Warning Event.
func TestPairStateLost(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	createPair(t, ctx, newPair(ns, "sl"))
	markAvailable(t, ctx, ns, "sl")
	eventually(t, "role bound", func() error {
		return k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "sl-replicator"}, &rbacv1.RoleBinding{})
	})
	sink := replicatorSink(t, ns, "sl", operator.ReportConfigMapName("sl"))
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	publish := func(id string, created time.Time) {
		t.Helper()
		s := &report.Summary{Kind: report.SummaryKind, Mode: "rolling", Pair: "sl", Started: created, Updated: created,
			State: &report.State{ID: id, Created: created, New: true}}
		if err := sink.Publish(ctx, s); err != nil {
			t.Fatalf("publish as the replicator: %v", err)
		}
	}
	waitState := func(what, status, reason string) *v1.ReplicationPair {
		var p *v1.ReplicationPair
		eventually(t, what, func() (err error) {
			if p, err = getPair(ctx, ns, "sl"); err != nil {
				return err
			}
			c := apimeta.FindStatusCondition(p.Status.Conditions, v1.ConditionStateLost)
			if c == nil || string(c.Status) != status || c.Reason != reason {
				return fmt.Errorf("StateLost %+v, status.state %+v", c, p.Status.State)
			}
			return nil
		})
		return p
	}
	publish("aaa", t0)
	p := waitState("first state", "False", v1.ReasonStateNew)
	if p.Status.State == nil || p.Status.State.ID != "aaa" || p.Status.State.ReplacedID != "" {
		t.Fatalf("status.state %+v", p.Status.State)
	}
	publish("bbb", t0.Add(time.Hour))
	p = waitState("state replaced", "True", v1.ReasonStateLost)
	if p.Status.State.ID != "bbb" || p.Status.State.ReplacedID != "aaa" {
		t.Fatalf("status.state after the loss %+v", p.Status.State)
	}
	eventually(t, "StateLost Warning Event", func() error {
		var list eventsv1.EventList
		if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return err
		}
		n := 0
		for _, e := range list.Items {
			if e.Regarding.UID == p.UID && e.Reason == v1.ReasonStateLost && e.Type == corev1.EventTypeWarning {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("%d StateLost events", n)
		}
		return nil
	})
}
