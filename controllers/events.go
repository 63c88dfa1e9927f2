package controllers

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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

// touch gives uid an entry (so the restart seeding runs once per object).
func (s *seenRecords) touch(uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.objs[uid] == nil {
		s.objs[uid] = map[string]struct{}{}
	}
}

// has reports whether id was seen for uid.
func (s *seenRecords) has(uid types.UID, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.objs[uid][id]
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
//
// Each record becomes one events.k8s.io Event named "<object>.<record id>", created
// directly rather than through an EventRecorder: the recorder merges events that differ
// only in their note into one series, which would hide all records but the first. The
// deterministic name makes the API server itself the final dedupe (AlreadyExists means
// announced), across manager restarts too, for as long as the Event lives (--event-ttl).
type reportEvents struct {
	client   client.Client
	instance string // reportingInstance
	seen     *seenRecords
}

func newReportEvents(c client.Client) *reportEvents {
	host, _ := os.Hostname()
	inst := RecorderName
	if host != "" {
		inst += "-" + host
	}
	if len(inst) > 128 {
		inst = inst[:128]
	}
	return &reportEvents{client: c, instance: inst, seen: newSeenRecords()}
}

// emit announces each tombstone decision and each mismatch of s not announced before.
// prev is the report status before this fold (for the restart watermark).
func (e *reportEvents) emit(ctx context.Context, obj client.Object, kind string, prev v1.ReportStatus, s *report.Summary) (decisions, mismatches int, err error) {
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
		e.seen.touch(uid)
	}
	for _, d := range ds {
		if e.seen.has(uid, d.ID) {
			continue
		}
		if err := e.create(ctx, obj, kind, d.ID, corev1.EventTypeNormal, v1.EventTombstoneDecision, "Replicate", operator.DecisionMessage(d)); err != nil {
			return decisions, mismatches, err
		}
		e.seen.firstSight(uid, d.ID)
		decisions++
	}
	for _, m := range ms {
		if e.seen.has(uid, m.ID) {
			continue
		}
		if err := e.create(ctx, obj, kind, m.ID, corev1.EventTypeWarning, v1.EventMismatch, "Compare", operator.MismatchMessage(m)); err != nil {
			return decisions, mismatches, err
		}
		e.seen.firstSight(uid, m.ID)
		mismatches++
	}
	return decisions, mismatches, nil
}

// warnCondition announces a condition the reconciler has just written (see
// operator.NewStall) as one Warning Event. Its name derives from the condition's reason,
// message and transition time, so a retry creates no second Event while the same
// condition stands, and a later recurrence (a new transition) gets its own.
func (e *reportEvents) warnCondition(ctx context.Context, obj client.Object, kind, action string, c *metav1.Condition) error {
	id := report.RecordID("condition", c.Type, c.Reason, c.Message, c.LastTransitionTime.UTC().Format(time.RFC3339))
	return e.create(ctx, obj, kind, id, corev1.EventTypeWarning, c.Reason, action, c.Message)
}

func (e *reportEvents) create(ctx context.Context, obj client.Object, kind, id, typ, reason, action, note string) error {
	ev := &eventsv1.Event{
		// The kind is in the name so a pair and a resync of the same name never collide.
		ObjectMeta: metav1.ObjectMeta{Namespace: obj.GetNamespace(), Name: obj.GetName() + "." + kindTag(kind) + "-" + eventID(id)},
		EventTime:  metav1.NewMicroTime(time.Now()),
		Regarding: corev1.ObjectReference{
			APIVersion: v1.GroupVersion.String(), Kind: kind, Namespace: obj.GetNamespace(),
			Name: obj.GetName(), UID: obj.GetUID(), ResourceVersion: obj.GetResourceVersion(),
		},
		Type: typ, Reason: reason, Action: action, Note: note,
		ReportingController: RecorderName, ReportingInstance: e.instance,
	}
	if err := e.client.Create(ctx, ev); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create %s event %s: %w", reason, id, err)
	}
	return nil
}

func kindTag(kind string) string {
	if kind == "UserResync" {
		return "ur"
	}
	return "rp"
}

// eventID makes a record ID safe for an object name: kept when it is short lower-case
// hex/alphanumerics (report.RecordID gives 16 hex digits), hashed otherwise.
func eventID(id string) string {
	ok := len(id) > 0 && len(id) <= 32
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			ok = false
			break
		}
	}
	if ok {
		return id
	}
	return report.RecordID(id)
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
