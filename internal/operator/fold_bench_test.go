package operator

import (
	"fmt"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// BenchmarkPairStatus folds a report with 2500 decisions and 500 mismatches.
func BenchmarkPairStatus(b *testing.B) {
	t0 := time.Now()
	s := &report.Summary{Kind: report.SummaryKind, DecisionCounts: map[string]int{"update/none": 2500}, MismatchCounts: map[string]int{"replica-only": 500}}
	for i := 0; i < 2500; i++ {
		s.Decisions = append(s.Decisions, report.Decision{ID: fmt.Sprint(i), Time: t0.Add(time.Duration(i) * time.Second),
			User: "user@example.org", MasterName: "user.x.Archive", Action: "update", Evidence: "none", Reason: "crc differs"})
	}
	for i := 0; i < 500; i++ {
		s.Mismatches = append(s.Mismatches, report.Mismatch{ID: fmt.Sprint(i), Time: t0, User: "u", Kind: "replica-only"})
	}
	p := pair()
	obs := PairObservation{Deployment: available(), Report: s}
	b.ReportAllocs()
	for b.Loop() {
		st := PairStatus(p, obs)
		FitStatus(&st, &st.Report, nil, StatusBudget)
	}
}
