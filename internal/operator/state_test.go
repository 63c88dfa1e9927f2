package operator

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// TestStateClaim: the claim's defaults and spec, owned only with reclaimPolicy Delete.
func TestStateClaim(t *testing.T) {
	p := pair()
	c := StateClaim(p)
	if c.Name != "p-state" || c.Namespace != "mail" || c.Labels[LabelPair] != "p" || c.Labels[LabelComponent] != "state" {
		t.Fatalf("claim meta %+v", c.ObjectMeta)
	}
	if q := c.Spec.Resources.Requests[corev1.ResourceStorage]; q.String() != "1Gi" || c.Spec.StorageClassName != nil ||
		len(c.Spec.AccessModes) != 1 || c.Spec.AccessModes[0] != corev1.ReadWriteOnce {
		t.Fatalf("default claim spec %+v", c.Spec)
	}
	if len(c.OwnerReferences) != 0 {
		t.Fatal("Retain (default): the claim must not be owned by the pair")
	}
	p.Spec.State = v1.StateSpec{Size: ptr.To(resource.MustParse("5Gi")), StorageClassName: ptr.To("fast"), ReclaimPolicy: v1.StateDelete}
	c = StateClaim(p)
	if q := c.Spec.Resources.Requests[corev1.ResourceStorage]; q.String() != "5Gi" || *c.Spec.StorageClassName != "fast" {
		t.Fatalf("claim spec %+v", c.Spec)
	}
	if len(c.OwnerReferences) != 1 || c.OwnerReferences[0].UID != "uid-p" || !*c.OwnerReferences[0].Controller {
		t.Fatalf("Delete: owner %+v", c.OwnerReferences)
	}
}

// TestStateMounts: the Deployment and a resync's Job mount the pair's claim at the state
// dir; the Job runs on the node of the pair's replicator pod unless the pair is
// suspended, keeping the pair's own affinity.
func TestStateMounts(t *testing.T) {
	p := pair()
	p.Spec.Replicator.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{}}
	claimOf := func(ps corev1.PodSpec) string {
		for _, v := range ps.Volumes {
			if v.Name == volState && v.PersistentVolumeClaim != nil {
				for _, m := range ps.Containers[0].VolumeMounts {
					if m.Name == volState && m.MountPath == stateMount && !m.ReadOnly {
						return v.PersistentVolumeClaim.ClaimName
					}
				}
			}
		}
		return ""
	}
	d := Deployment(p, PodOptions{Image: "img"})
	if got := claimOf(d.Spec.Template.Spec); got != "p-state" {
		t.Fatalf("deployment state claim %q", got)
	}
	rs := &v1.UserResync{ObjectMeta: metav1.ObjectMeta{Namespace: "mail", Name: "r", UID: "uid-r"},
		Spec: v1.UserResyncSpec{PairName: "p", Users: []string{"a"}}}
	j := Job(rs, p, PodOptions{Image: "img"})
	if slices.Contains(j.Spec.Template.Spec.Containers[0].Args, "--delete-unmarked") {
		t.Fatal("--delete-unmarked without spec.deleteUnmarked")
	}
	rs.Spec.DeleteUnmarked = true
	if !slices.Contains(Job(rs, p, PodOptions{Image: "img"}).Spec.Template.Spec.Containers[0].Args, "--delete-unmarked") {
		t.Fatal("spec.deleteUnmarked not passed to the resync")
	}
	ps := j.Spec.Template.Spec
	if got := claimOf(ps); got != "p-state" {
		t.Fatalf("job state claim %q", got)
	}
	terms := ps.Affinity.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	if len(terms) != 1 || terms[0].TopologyKey != corev1.LabelHostname || terms[0].LabelSelector.MatchLabels[LabelPair] != "p" ||
		ps.Affinity.NodeAffinity == nil {
		t.Fatalf("job affinity %+v", ps.Affinity)
	}
	if p.Spec.Replicator.Affinity.PodAffinity != nil {
		t.Fatal("the pair's spec was changed")
	}
	p.Spec.Suspend = true
	if a := Job(rs, p, PodOptions{Image: "img"}).Spec.Template.Spec.Affinity; a.PodAffinity != nil {
		t.Fatalf("suspended pair: no pod to run next to, affinity %+v", a.PodAffinity)
	}
}

// TestStateFold: first state new, the same state kept, a different id lost (and it stays
// lost for that state); keep/no-mark decisions raise SplitBrainSuspected.
func TestStateFold(t *testing.T) {
	p := pair()
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	obs := PairObservation{Report: &report.Summary{State: &report.State{ID: "a", Created: t0, New: true}}}
	cond := func() *metav1.Condition {
		return apimeta.FindStatusCondition(p.Status.Conditions, v1.ConditionStateLost)
	}
	p.Status = PairStatus(p, obs)
	if c := cond(); c == nil || c.Status != metav1.ConditionFalse || c.Reason != v1.ReasonStateNew || p.Status.State.ID != "a" {
		t.Fatalf("first state: %+v %+v", c, p.Status.State)
	}
	obs.Report.State.New = false // the pod restarted on its claim
	p.Status = PairStatus(p, obs)
	if c := cond(); c.Reason != v1.ReasonStateKept || c.Status != metav1.ConditionFalse {
		t.Fatalf("kept: %+v", c)
	}
	obs.Report = &report.Summary{State: &report.State{ID: "b", Created: t0.Add(time.Hour), New: true},
		DecisionCounts: map[string]int{"keep/no-mark": 2}}
	p.Status = PairStatus(p, obs)
	c := cond()
	if c.Status != metav1.ConditionTrue || c.Reason != v1.ReasonStateLost || p.Status.State.ReplacedID != "a" || !strings.Contains(c.Message, "replacing state a") {
		t.Fatalf("lost: %+v %+v", c, p.Status.State)
	}
	if sb := apimeta.FindStatusCondition(p.Status.Conditions, v1.ConditionSplitBrainSuspected); sb.Status != metav1.ConditionTrue || sb.Reason != v1.ReasonNoMarkKept {
		t.Fatalf("split-brain condition with keep/no-mark: %+v", sb)
	}
	obs.Report.State.New = false
	p.Status = PairStatus(p, obs)
	if c := cond(); c.Status != metav1.ConditionTrue || p.Status.State.ReplacedID != "a" {
		t.Fatalf("lost state after a restart: %+v %+v", c, p.Status.State)
	}
}
