package operator

import (
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

func TestFoldProgress(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
	if FoldProgress(nil) != nil {
		t.Fatal("no progress reported, yet status.progress")
	}
	p := FoldProgress(&report.Progress{Started: t0, Done: 1, Total: 3, Bytes: 10, ElapsedMS: 1500, ETAMS: 3000})
	if p.Percent != 33 || p.ETA == nil || !p.ETA.Time.Equal(t0.Add(4*time.Second)) || !p.Started.Time.Equal(t0) {
		t.Fatalf("running: %+v (eta %v)", p, p.ETA)
	}
	if p := FoldProgress(&report.Progress{Started: t0, Done: 0, Total: 3, ETAMS: -1}); p.ETA != nil || p.Percent != 0 {
		t.Fatalf("nothing done yet: %+v", p)
	}
	if p := FoldProgress(&report.Progress{Started: t0, Done: 3, Total: 3, Finished: true}); p.ETA != nil || p.Percent != 100 || !p.Finished {
		t.Fatalf("finished: %+v", p)
	}
	if p := FoldProgress(&report.Progress{Started: t0, Total: 0, Finished: true}); p.Percent != 100 {
		t.Fatalf("nothing to do: %+v", p)
	}
}

// A seeding pass holds InSync False without flapping: folding the same report twice
// leaves the conditions (and their transition times) as they were.
func TestSeedingHoldsInSync(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
	zero := 0
	pair := &v1.ReplicationPair{}
	pair.Spec.SyncLog = &v1.SyncLogSource{}
	rep := &report.Summary{Backlog: &zero, Seed: &report.Seed{State: report.SeedRunning, Started: &t0, Reason: "the replicator's state began empty"},
		Progress: &report.Progress{Started: t0, Done: 5, Total: 10, ElapsedMS: 1000, ETAMS: 1000}}
	st := PairStatus(pair, PairObservation{Report: rep})
	in := apimeta.FindStatusCondition(st.Conditions, v1.ConditionInSync)
	seed := apimeta.FindStatusCondition(st.Conditions, v1.ConditionSeeding)
	if in == nil || in.Status != metav1.ConditionFalse || in.Reason != v1.ReasonSeeding || seed == nil || seed.Status != metav1.ConditionTrue {
		t.Fatalf("while seeding: InSync %+v Seeding %+v", in, seed)
	}
	// Transition times are set to now; back-date them to see that a second fold keeps them.
	for i := range st.Conditions {
		st.Conditions[i].LastTransitionTime = metav1.NewTime(t0)
	}
	pair.Status = st
	again := PairStatus(pair, PairObservation{Report: rep})
	for _, c := range again.Conditions {
		if !c.LastTransitionTime.Time.Equal(t0) {
			t.Fatalf("condition %s moved on an unchanged report: %+v", c.Type, c)
		}
	}
	rep.Seed = &report.Seed{State: report.SeedComplete, Started: &t0, Completed: &t0, Users: 10}
	pair.Status = again
	done := PairStatus(pair, PairObservation{Report: rep})
	if c := apimeta.FindStatusCondition(done.Conditions, v1.ConditionInSync); c.Status != metav1.ConditionTrue {
		t.Fatalf("after seeding: InSync %+v", c)
	}
	if c := apimeta.FindStatusCondition(done.Conditions, v1.ConditionSeeding); c.Status != metav1.ConditionFalse || c.Reason != v1.ReasonSeeded {
		t.Fatalf("after seeding: Seeding %+v", c)
	}
	rep.Seed = nil // audit mode, or --seed off
	if c := apimeta.FindStatusCondition(PairStatus(pair, PairObservation{Report: rep}).Conditions, v1.ConditionSeeding); c != nil {
		t.Fatalf("no seed reported, yet Seeding %+v", c)
	}
}
