package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
)

// verifiesOf lists the verify UserResyncs the manager created for a pair by trigger.
func verifiesOf(t *testing.T, ns, pair, trigger string) []v1.UserResync {
	t.Helper()
	var list v1.UserResyncList
	if err := k8s.List(t.Context(), &list, client.InNamespace(ns),
		client.MatchingLabels{operator.LabelPair: pair, operator.LabelTrigger: trigger}); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// TestScheduledVerify: spec.verify.schedule creates verify UserResyncs of spec.verify.users
// on its schedule, owned by the pair and named within the 52-character limit even for the
// longest pair name; a run is skipped while the previous verify has not finished.
func TestScheduledVerify(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	name := strings.Repeat("v", 48) // the longest pair name the API allows
	pair := newPair(ns, name)
	pair.Spec.Verify = &v1.ScheduledVerify{Schedule: "@every 2s", Users: []string{"canary1", "canary2"}}
	createPair(t, ctx, pair)

	var first v1.UserResync
	eventually(t, "a scheduled verify", func() error {
		vs := verifiesOf(t, ns, name, operator.TriggerSchedule)
		if len(vs) == 0 {
			return fmt.Errorf("none yet")
		}
		first = vs[0]
		return nil
	})
	if first.Spec.Mode != v1.ResyncVerify || strings.Join(first.Spec.Users, ",") != "canary1,canary2" ||
		first.Spec.PairName != name || len(first.Name) > operator.MaxResyncName {
		t.Fatalf("scheduled verify %s: %+v", first.Name, first.Spec)
	}
	p, _ := getPair(ctx, ns, name)
	if !metav1.IsControlledBy(&first, p) {
		t.Fatalf("verify not owned by the pair: %v", first.OwnerReferences)
	}
	waitPhase(t, ctx, ns, first.Name, v1.ResyncRunning)
	// While it runs, later runs are skipped (and say so).
	eventually(t, "a skipped run", func() error {
		p, err := getPair(ctx, ns, name)
		if err != nil {
			return err
		}
		if p.Status.Verify == nil || !strings.Contains(p.Status.Verify.Message, "skipped") || p.Status.Verify.LastResync != first.Name {
			return fmt.Errorf("status.verify %+v", p.Status.Verify)
		}
		return nil
	})
	if vs := verifiesOf(t, ns, name, operator.TriggerSchedule); len(vs) != 1 {
		t.Fatalf("%d scheduled verifies while the first runs, want 1", len(vs))
	}
	finishJob(t, ctx, ns, first.Name, true)
	waitPhase(t, ctx, ns, first.Name, v1.ResyncSucceeded)
	eventually(t, "the next scheduled verify", func() error {
		if vs := verifiesOf(t, ns, name, operator.TriggerSchedule); len(vs) < 2 {
			return fmt.Errorf("%d scheduled verifies", len(vs))
		}
		return nil
	})
	// Turning the schedule off stops it; the replicator is not rolled by verify edits.
	d0, _ := getDeployment(ctx, ns, name)
	updatePair(t, ctx, client.ObjectKey{Namespace: ns, Name: name}, func(p *v1.ReplicationPair) { p.Spec.Verify.Schedule = "" })
	time.Sleep(3 * time.Second)
	n := len(verifiesOf(t, ns, name, operator.TriggerSchedule))
	time.Sleep(3 * time.Second)
	if m := len(verifiesOf(t, ns, name, operator.TriggerSchedule)); m != n {
		t.Fatalf("verifies went on after the schedule was removed: %d -> %d", n, m)
	}
	if d1, _ := getDeployment(ctx, ns, name); d1.Spec.Template.Annotations[operator.AnnotationSpecHash] != d0.Spec.Template.Annotations[operator.AnnotationSpecHash] {
		t.Fatalf("a spec.verify edit rolled the replicator")
	}
}

// TestVerifyRequestedAt: each new value of the verifyRequestedAt annotation runs one
// verify, echoed into status.verify.lastHandledRequestAt; the same value again runs none.
func TestVerifyRequestedAt(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	pair := newPair(ns, "req")
	pair.Spec.Verify = &v1.ScheduledVerify{Users: []string{"bob"}}
	createPair(t, ctx, pair)
	key := client.ObjectKey{Namespace: ns, Name: "req"}
	annotate := func(v string) {
		updatePair(t, ctx, key, func(p *v1.ReplicationPair) {
			if p.Annotations == nil {
				p.Annotations = map[string]string{}
			}
			p.Annotations[v1.AnnotationVerifyRequestedAt] = v
		})
	}
	handled := func(v string, n int) {
		t.Helper()
		eventually(t, "request "+v+" handled", func() error {
			p, err := getPair(ctx, ns, "req")
			if err != nil {
				return err
			}
			if p.Status.Verify == nil || p.Status.Verify.LastHandledRequestAt != v {
				return fmt.Errorf("status.verify %+v", p.Status.Verify)
			}
			if vs := verifiesOf(t, ns, "req", operator.TriggerRequest); len(vs) != n {
				return fmt.Errorf("%d requested verifies, want %d", len(vs), n)
			}
			return nil
		})
	}
	annotate("2026-12-06T11:00:00Z")
	handled("2026-12-06T11:00:00Z", 1)
	vs := verifiesOf(t, ns, "req", operator.TriggerRequest)
	if vs[0].Spec.Mode != v1.ResyncVerify || strings.Join(vs[0].Spec.Users, ",") != "bob" {
		t.Fatalf("requested verify: %+v", vs[0].Spec)
	}
	// The same value re-applied (a GitOps tool) runs nothing new; a new one runs one more.
	annotate("2026-12-06T11:00:00Z")
	time.Sleep(2 * time.Second)
	handled("2026-12-06T11:00:00Z", 1)
	annotate("2026-12-06T12:00:00Z")
	handled("2026-12-06T12:00:00Z", 2)
}
