package operator

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

func TestAttention(t *testing.T) {
	for _, tc := range []struct {
		r    Record
		want bool
	}{
		{Record{Mismatch: &report.Mismatch{Kind: report.MismatchMissingOnReplica}}, false},
		{Record{Mismatch: &report.Mismatch{Kind: report.MismatchNameDiffers}}, false},
		{Record{Mismatch: &report.Mismatch{Kind: report.MismatchContentDiffers}}, false},
		{Record{Mismatch: &report.Mismatch{Kind: report.MismatchReplicaOnly}}, true},
		{Record{Mismatch: &report.Mismatch{Kind: report.MismatchUniqueIDCollision}}, true},
		{Record{Decision: &report.Decision{Action: report.ActionDelete, Evidence: report.EvidenceTombstone}}, false},
		{Record{Decision: &report.Decision{Action: report.ActionKeep, Evidence: report.EvidenceSplitBrain}}, true},
		{Record{Decision: &report.Decision{Action: report.ActionMoveAside, Evidence: report.EvidenceNone}}, true},
	} {
		if got := Attention(tc.r); got != tc.want {
			t.Errorf("%+v %+v: attention %v, want %v", tc.r.Mismatch, tc.r.Decision, got, tc.want)
		}
	}
	// Plain creates and updates are not summed up in Events at all.
	s := &report.Summary{Decisions: []report.Decision{{ID: "c", Action: report.ActionCreate, Evidence: report.EvidenceNone}}}
	if recs := EventRecords(s); len(recs) != 0 {
		t.Errorf("a create gave event records %v", recs)
	}
}

func TestRecordSummaryNoteBounded(t *testing.T) {
	var s RecordSummary
	for i := 0; i < 500; i++ {
		s.Add(Record{Mismatch: &report.Mismatch{ID: fmt.Sprintf("id%d", i), User: strings.Repeat("u", 200), Kind: report.MismatchReplicaOnly,
			ReplicaName: strings.Repeat("f", 300), Detail: strings.Repeat("d", 300)}})
	}
	note := s.Note(true)
	if len(note) > 1000 || !strings.HasPrefix(note, "500 new record(s) need a person") || !strings.Contains(note, "mismatch replica-only=500") {
		t.Fatalf("note (%d bytes): %s", len(note), note)
	}
	if len(s.Samples) != maxSamples {
		t.Fatalf("%d samples kept", len(s.Samples))
	}
}

// TestRecordSummarySamplesEveryKind: a rare kind gets its example even after many
// records of a common one.
func TestRecordSummarySamplesEveryKind(t *testing.T) {
	var s RecordSummary
	for i := 0; i < 10; i++ {
		s.Add(Record{Mismatch: &report.Mismatch{ID: fmt.Sprintf("c%d", i), Kind: report.MismatchContentDiffers}})
	}
	s.Add(Record{Mismatch: &report.Mismatch{ID: "rename", Kind: report.MismatchNameDiffers, UniqueID: "U1"}})
	s.Add(Record{Decision: &report.Decision{ID: "tomb", Action: report.ActionDelete, Evidence: report.EvidenceTombstone}})
	s.Add(Record{Mismatch: &report.Mismatch{ID: "c10", Kind: report.MismatchContentDiffers}})
	note := s.Note(false)
	for _, want := range []string{"[record c0]", "[record rename]", "uniqueid U1", "[record tomb]", "mismatch content-differs=11"} {
		if !strings.Contains(note, want) {
			t.Errorf("note lacks %q: %s", want, note)
		}
	}
	if len(s.Samples) != maxSamples {
		t.Errorf("%d samples", len(s.Samples))
	}
}
