package controllers

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// TestPairSeeding (issue #15 item 2), against the real apiserver: a rolling pair's
// replicator runs with --seed auto; while its report says the seeding pass runs, the
// pair shows Seeding=True, InSync=False (reason Seeding, although the log has no
// backlog) and status.progress (users done of total, bytes, started, ETA); once the
// pass completed, Seeding=False/Seeded, InSync=True and the final progress. The
// Progress printer column is served.
func TestPairSeeding(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	createPair(t, ctx, newPair(ns, "seed"))
	markAvailable(t, ctx, ns, "seed")
	eventually(t, "role bound", func() error {
		return k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "seed-replicator"}, &rbacRoleBinding)
	})
	d, err := getDeployment(ctx, ns, "seed")
	if err != nil {
		t.Fatal(err)
	}
	if args := d.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--seed") || args[slices.Index(args, "--seed")+1] != "auto" {
		t.Fatalf("rolling replicator args %q, want --seed auto", args)
	}

	sink := replicatorSink(t, ns, "seed", operator.ReportConfigMapName("seed"))
	t0 := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
	zero := 0
	running := &report.Summary{Kind: report.SummaryKind, Mode: "rolling", Pair: "seed", Started: t0, Updated: t0.Add(time.Minute),
		Backlog: &zero, UsersTotal: 400,
		Seed:     &report.Seed{State: report.SeedRunning, Reason: "the replicator's state began empty", Started: &t0},
		Progress: &report.Progress{Started: t0, Done: 400, Total: 1000, Failed: 2, Bodies: 8000, Bytes: 123456789, ElapsedMS: 60000, ETAMS: 90000}}
	eventually(t, "publish the seeding report", func() error { return sink.Publish(ctx, running) })
	var p *v1.ReplicationPair
	eventually(t, "Seeding=True and status.progress", func() (err error) {
		if p, err = getPair(ctx, ns, "seed"); err != nil {
			return err
		}
		s := apimeta.FindStatusCondition(p.Status.Conditions, v1.ConditionSeeding)
		in := apimeta.FindStatusCondition(p.Status.Conditions, v1.ConditionInSync)
		if s == nil || s.Status != metav1.ConditionTrue || s.Reason != v1.ReasonSeedingInProgress || in == nil || in.Status != metav1.ConditionFalse || in.Reason != v1.ReasonSeeding {
			return fmt.Errorf("Seeding %+v InSync %+v", s, in)
		}
		if p.Status.Progress == nil {
			return fmt.Errorf("no status.progress")
		}
		return nil
	})
	// Argo CD: healthy (the replicator works), saying that it seeds.
	if s, m := argoHealth(t, "replicationpair-health.lua", p); s != "Healthy" || !strings.Contains(m, "seeding the replica") {
		t.Fatalf("Argo CD health while seeding: %s %q", s, m)
	}
	want := v1.ProgressStatus{UsersDone: 400, UsersTotal: 1000, UsersFailed: 2, Percent: 40, Bodies: 8000, Bytes: 123456789,
		Started: ptr.To(metav1.NewTime(t0)), Updated: ptr.To(metav1.NewTime(t0.Add(time.Minute))), ETA: ptr.To(metav1.NewTime(t0.Add(150 * time.Second)))}
	if got := *p.Status.Progress; !progressEqual(got, want) {
		t.Fatalf("status.progress %+v, want %+v", got, want)
	}

	fin := t0.Add(3 * time.Minute)
	done := *running
	done.Updated = fin
	done.Seed = &report.Seed{State: report.SeedComplete, Started: &t0, Completed: &fin, Users: 1000, Failed: 2}
	done.Progress = &report.Progress{Started: t0, Done: 1000, Total: 1000, Failed: 2, Bodies: 20000, Bytes: 987654321, ElapsedMS: 180000, Finished: true}
	done.LastBatch = &report.Batch{Time: fin, Users: 3}
	eventually(t, "publish the seeded report", func() error { return sink.Publish(ctx, &done) })
	eventually(t, "Seeding=False, InSync=True", func() (err error) {
		if p, err = getPair(ctx, ns, "seed"); err != nil {
			return err
		}
		s := apimeta.FindStatusCondition(p.Status.Conditions, v1.ConditionSeeding)
		in := apimeta.FindStatusCondition(p.Status.Conditions, v1.ConditionInSync)
		if s == nil || s.Status != metav1.ConditionFalse || s.Reason != v1.ReasonSeeded || in == nil || in.Status != metav1.ConditionTrue {
			return fmt.Errorf("Seeding %+v InSync %+v", s, in)
		}
		return nil
	})
	want = v1.ProgressStatus{UsersDone: 1000, UsersTotal: 1000, UsersFailed: 2, Percent: 100, Bodies: 20000, Bytes: 987654321,
		Started: ptr.To(metav1.NewTime(t0)), Updated: ptr.To(metav1.NewTime(t0.Add(3 * time.Minute))), Finished: true}
	if got := *p.Status.Progress; !progressEqual(got, want) {
		t.Fatalf("status.progress after seeding %+v, want %+v", got, want)
	}

	// The Progress column, as the apiserver serves the CRD.
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
	if err := k8s.Get(ctx, types.NamespacedName{Name: "replicationpairs.replication.cyrusrepl.io"}, crd); err != nil {
		t.Fatal(err)
	}
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	cols, _, _ := unstructured.NestedSlice(versions[0].(map[string]any), "additionalPrinterColumns")
	if !slices.ContainsFunc(cols, func(c any) bool {
		m := c.(map[string]any)
		return m["name"] == "Progress" && m["jsonPath"] == ".status.progress.percent"
	}) {
		t.Fatalf("no Progress printer column: %v", cols)
	}
}

// TestResyncProgress: a running resync's report, published while its Job runs, shows
// in its status.progress.
func TestResyncProgress(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	createPair(t, ctx, newPair(ns, "p"))
	rs := &v1.UserResync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rp"},
		Spec: v1.UserResyncSpec{PairName: "p", Users: []string{"alice", "bob", "carol"}, Mode: v1.ResyncSync}}
	if err := k8s.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, ctx, ns, "rp", v1.ResyncRunning)
	eventually(t, "job pod ready", func() error {
		j, err := getJob(ctx, ns, "rp")
		if err != nil {
			return err
		}
		j.Status.Active, j.Status.Ready = 1, ptr.To[int32](1)
		j.Status.StartTime = ptr.To(metav1.Now())
		return k8s.Status().Update(ctx, j)
	})
	t0 := time.Now().UTC().Truncate(time.Second)
	sum := &report.Summary{Kind: report.SummaryKind, Mode: "sync", Pair: "p", Started: t0, Updated: t0, UsersTotal: 1,
		Progress: &report.Progress{Started: t0, Done: 1, Total: 3, Bodies: 4, Bytes: 4096, ElapsedMS: 2000, ETAMS: 4000}}
	eventually(t, "publish the running report", func() error {
		return replicatorSink(t, ns, "rp", "rp-report").Publish(ctx, sum)
	})
	eventually(t, "status.progress of the running resync", func() error {
		var got v1.UserResync
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "rp"}, &got); err != nil {
			return err
		}
		p := got.Status.Progress
		if got.Status.Phase != v1.ResyncRunning || p == nil || p.UsersDone != 1 || p.UsersTotal != 3 || p.Percent != 33 || p.Bytes != 4096 || p.ETA == nil {
			return fmt.Errorf("phase %s progress %+v", got.Status.Phase, p)
		}
		return nil
	})
}

// progressEqual compares progress figures and times (to the second).
func progressEqual(a, b v1.ProgressStatus) bool {
	ta := func(t *metav1.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	if ta(a.Started) != ta(b.Started) || ta(a.Updated) != ta(b.Updated) || ta(a.ETA) != ta(b.ETA) {
		return false
	}
	a.Started, a.Updated, a.ETA, b.Started, b.Updated, b.ETA = nil, nil, nil, nil, nil, nil
	return a == b
}
