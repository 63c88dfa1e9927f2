package controllers

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// seenRecords remembers, per object, the record IDs already turned into Events, so each
// tombstone decision and each mismatch gives one Event however often the report is
// folded. After a manager restart the memory is empty; the reconcilers then seed it with
// the records not newer than what status already shows (see seed), so a restart does
// not replay old Events.
type seenRecords struct {
	mu   sync.Mutex
	objs map[types.UID]map[string]struct{}
}

// maxSeenPerObject bounds the memory; the report holds at most report.MaxRecent records
// of each list, so a few hundred IDs cover every report the object can still carry.
const maxSeenPerObject = 1024

func newSeenRecords() *seenRecords {
	return &seenRecords{objs: map[types.UID]map[string]struct{}{}}
}

// known reports whether uid has an entry at all.
func (s *seenRecords) known(uid types.UID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.objs[uid]
	return ok
}

// firstSight marks id as seen and reports whether it was new.
func (s *seenRecords) firstSight(uid types.UID, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.objs[uid]
	if m == nil {
		m = map[string]struct{}{}
		s.objs[uid] = m
	}
	if _, ok := m[id]; ok {
		return false
	}
	if len(m) >= maxSeenPerObject {
		clear(m) // rare; at worst a few old records are re-announced
	}
	m[id] = struct{}{}
	return true
}

// forget drops an object's memory (it was deleted).
func (s *seenRecords) forget(uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objs, uid)
}

// seenBefore says whether a record with time t was already folded before the manager
// (re)started: its time is not after the newest record status shows (status times have
// second precision).
func seenBefore(t time.Time, watermark time.Time) bool {
	return !watermark.IsZero() && !t.Truncate(time.Second).After(watermark)
}

// reportEvents turns the new event-worthy records of a report into Events on obj.
type reportEvents struct {
	recorder events.EventRecorder
	seen     *seenRecords
}

// emit announces each tombstone decision and each mismatch of s not announced before.
// prev is the report status before this fold (for the restart watermark).
func (e *reportEvents) emit(obj client.Object, prev v1.ReportStatus, s *report.Summary) (decisions, mismatches int) {
	uid := obj.GetUID()
	ds, ms := operator.EventWorthy(s)
	if !e.seen.known(uid) {
		wm := watermark(prev)
		for _, d := range ds {
			if seenBefore(d.Time, wm) {
				e.seen.firstSight(uid, d.ID)
			}
		}
		for _, m := range ms {
			if seenBefore(m.Time, wm) {
				e.seen.firstSight(uid, m.ID)
			}
		}
	}
	for _, d := range ds {
		if e.seen.firstSight(uid, d.ID) {
			e.recorder.Eventf(obj, nil, corev1.EventTypeNormal, v1.EventTombstoneDecision, "Replicate", "%s", operator.DecisionMessage(d))
			decisions++
		}
	}
	for _, m := range ms {
		if e.seen.firstSight(uid, m.ID) {
			e.recorder.Eventf(obj, nil, corev1.EventTypeWarning, v1.EventMismatch, "Compare", "%s", operator.MismatchMessage(m))
			mismatches++
		}
	}
	return decisions, mismatches
}

// watermark is the newest record time the status shows.
func watermark(rs v1.ReportStatus) time.Time {
	var wm time.Time
	for _, d := range rs.RecentDecisions {
		if d.Time.After(wm) {
			wm = d.Time.Time
		}
	}
	for _, m := range rs.RecentMismatches {
		if m.Time.After(wm) {
			wm = m.Time.Time
		}
	}
	return wm
}
