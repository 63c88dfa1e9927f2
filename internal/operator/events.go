package operator

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// Events are for people (see docs/operations.md, "Events"): routine work (a folder
// created, updated, renamed, or deleted on a tombstone) gives Normal Events; only what
// needs a person gives Warnings. Records are summed up per fold of a report, not one
// Event per record.

// Attention says whether a record needs a person: the replicator kept or moved aside a
// replica folder it had no evidence to remove, or found one name held by different
// folders at the two ends. Everything else it resolved by itself.
func Attention(r Record) bool {
	if r.Decision != nil {
		return r.Decision.Action == report.ActionKeep || r.Decision.Action == report.ActionMoveAside
	}
	switch r.Mismatch.Kind {
	case report.MismatchReplicaOnly, report.MismatchUniqueIDCollision:
		return true
	}
	return false
}

// Record is one decision or one mismatch of a report.
type Record struct {
	Decision *report.Decision
	Mismatch *report.Mismatch
}

// ID is the record's stable identifier.
func (r Record) ID() string {
	if r.Decision != nil {
		return r.Decision.ID
	}
	return r.Mismatch.ID
}

// EventRecords lists the records of a report that an Event sums up: every mismatch,
// every decision resting on a tombstone (the replicator deleted mail on the master's
// word), and every decision that needs a person. Plain creates and updates are counted
// in status only.
func EventRecords(s *report.Summary) []Record {
	var out []Record
	for i := range s.Decisions {
		r := Record{Decision: &s.Decisions[i]}
		if r.Decision.Evidence == report.EvidenceTombstone || Attention(r) {
			out = append(out, r)
		}
	}
	for i := range s.Mismatches {
		out = append(out, Record{Mismatch: &s.Mismatches[i]})
	}
	return out
}

// maxSamples is how many records an Event's note describes one by one.
const maxSamples = 3

// RecordSummary accumulates records for one summary Event.
type RecordSummary struct {
	// Verify: the records come from a verify, which changes nothing.
	Verify  bool
	Count   int
	IDs     []string       // every record ID, in arrival order (names the Event)
	ByKind  map[string]int // "mismatch replica-only", "decision delete/tombstone"
	Samples []string       // up to maxSamples records, described: the first of each kind first
	kinds   []string       // the kind of each sample
}

// Add counts one record.
func (s *RecordSummary) Add(r Record) {
	if s.ByKind == nil {
		s.ByKind = map[string]int{}
	}
	var kind string
	if r.Decision != nil {
		kind = "decision " + string(r.Decision.Action) + "/" + string(r.Decision.Evidence)
	} else {
		kind = "mismatch " + string(r.Mismatch.Kind)
	}
	s.Count++
	s.IDs = append(s.IDs, r.ID())
	s.ByKind[kind]++
	s.sample(kind, recordLine(r))
}

// sample keeps the first record of every kind (a rare kind is not crowded out by a
// common one), then more records while there is room.
func (s *RecordSummary) sample(kind, line string) {
	if len(s.Samples) < maxSamples {
		s.Samples, s.kinds = append(s.Samples, line), append(s.kinds, kind)
		return
	}
	if s.ByKind[kind] > 1 {
		return // this kind has its example
	}
	// Full: replace the last example of a kind shown more than once.
	for i := len(s.kinds) - 1; i >= 0; i-- {
		if count(s.kinds, s.kinds[i]) > 1 {
			s.Samples[i], s.kinds[i] = line, kind
			return
		}
	}
}

func count(ss []string, v string) int {
	n := 0
	for _, s := range ss {
		if s == v {
			n++
		}
	}
	return n
}

// Note is the Event's note: the counts by kind and the first few records, under the
// Event API's 1 KiB limit. attention words the headline for a Warning.
func (s *RecordSummary) Note(attention bool) string {
	kinds := make([]string, 0, len(s.ByKind))
	for k, n := range s.ByKind {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(kinds)
	head := fmt.Sprintf("%d new record(s), resolved by the replicator", s.Count)
	switch {
	case s.Verify && !attention:
		head = fmt.Sprintf("%d new record(s) found by the verify (it changes nothing)", s.Count)
	case attention:
		head = fmt.Sprintf("%d new record(s) need a person (mail was kept)", s.Count)
	}
	note := head + ": " + strings.Join(kinds, ", ")
	if len(s.Samples) > 0 {
		note += "; e.g. " + strings.Join(s.Samples, "; ")
	}
	if more := s.Count - len(s.Samples); more > 0 {
		note += fmt.Sprintf("; and %d more (status.report, the report ConfigMap, the replicator's log)", more)
	}
	return trunc(note, 1000)
}

func recordLine(r Record) string {
	if d := r.Decision; d != nil {
		return trunc(fmt.Sprintf("user %s: %s %s on %s evidence (uniqueid %s): %s [record %s]",
			d.User, d.Action, folderName(d.MasterName, d.ReplicaName), d.Evidence, d.UniqueID, d.Reason, d.ID), 220)
	}
	m := r.Mismatch
	return trunc(fmt.Sprintf("user %s: %s %s (uniqueid %s, master %q, replica %q): %s [record %s]",
		m.User, m.Kind, folderName(m.MasterName, m.ReplicaName), m.UniqueID, m.MasterName, m.ReplicaName, m.Detail, m.ID), 220)
}
