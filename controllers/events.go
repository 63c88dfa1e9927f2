package controllers

import (
	"context"
	"fmt"
	"os"
	"strings"
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

// seenRecords remembers, per object, the record IDs already counted into an Event, the
// records waiting for their summary Event, and when each type of summary was last sent.
// After a manager restart the memory is empty; the reconcilers then seed it with the
// records not newer than what status already shows (see emit), so a restart does not
// replay old records. Records waiting when the manager stops are not announced (status
// and the report ConfigMap still hold them).
type seenRecords struct {
	mu   sync.Mutex
	objs map[types.UID]*objectRecords
}

type objectRecords struct {
	ids     map[string]struct{}
	pending [2]*operator.RecordSummary // routine, attention
	last    [2]time.Time               // when that summary type was last sent
}

// maxSeenPerObject bounds the memory; the report holds at most report.MaxRecent records
// of each list, so a few hundred IDs cover every report the object can still carry.
const maxSeenPerObject = 1024

func newSeenRecords() *seenRecords {
	return &seenRecords{objs: map[types.UID]*objectRecords{}}
}

// object returns uid's entry, creating it; the caller holds mu.
func (s *seenRecords) object(uid types.UID) *objectRecords {
	o := s.objs[uid]
	if o == nil {
		o = &objectRecords{ids: map[string]struct{}{}}
		s.objs[uid] = o
	}
	return o
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
	m := s.object(uid).ids
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

// DefaultSummaryInterval is the least time between two summary Events of one type
// (routine or attention) on one object: records arriving meanwhile wait and are summed
// up into the next one.
const DefaultSummaryInterval = time.Minute

// summaryInterval is the interval new reconcilers use; tests shorten it.
var summaryInterval = DefaultSummaryInterval

// Summary Event indexes and their Event types.
const (
	routine   = 0
	attention = 1
)

var summaryTypes = [2]string{corev1.EventTypeNormal, corev1.EventTypeWarning}
var summaryReasons = [2]string{v1.EventRecordsResolved, v1.EventNeedsAttention}

// reportEvents sums up the new records of each report fold into at most two Events on
// the object: a Normal one for what the replicator resolved by itself and a Warning for
// what needs a person (operator.Attention), each at most once per interval.
//
// Events are events.k8s.io Events created directly rather than through an
// EventRecorder, named "<object>.<kind>-<hash of the record IDs>": the recorder would
// merge summaries that differ only in their note into one series; the deterministic name
// makes the API server itself the final dedupe of a retried create (AlreadyExists means
// announced).
type reportEvents struct {
	client   client.Client
	instance string // reportingInstance
	seen     *seenRecords
	interval time.Duration
	now      func() time.Time
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
	return &reportEvents{client: c, instance: inst, seen: newSeenRecords(), interval: summaryInterval, now: time.Now}
}

// emit counts the records of s not counted before into the object's pending summaries
// and sends each summary whose interval has passed. prev is the report status before
// this fold (for the restart watermark). final sends the pending summaries whatever
// the interval (the object's last fold). wait, when not zero, is when the caller should
// fold again to send a summary held back by the interval (or one that failed to send).
func (e *reportEvents) emit(ctx context.Context, obj client.Object, kind string, prev v1.ReportStatus, s *report.Summary, final bool) (wait time.Duration, err error) {
	uid := obj.GetUID()
	recs := operator.EventRecords(s)
	if !e.seen.known(uid) {
		wm := watermark(prev)
		e.seen.mu.Lock()
		o := e.seen.object(uid)
		for _, r := range recs {
			if seenBefore(recordTime(r), wm) {
				o.ids[r.ID()] = struct{}{}
			}
		}
		e.seen.mu.Unlock()
	}
	for _, r := range recs {
		if !e.seen.firstSight(uid, r.ID()) {
			continue
		}
		i := routine
		if operator.Attention(r) {
			i = attention
		}
		e.seen.mu.Lock()
		o := e.seen.object(uid)
		if o.pending[i] == nil {
			o.pending[i] = &operator.RecordSummary{Verify: s.Mode == "verify"}
		}
		o.pending[i].Add(r)
		e.seen.mu.Unlock()
	}
	for i := range summaryTypes {
		w, err := e.flush(ctx, obj, kind, i, final)
		if err != nil {
			return e.interval, err // kept pending: fold again
		}
		if w > 0 && (wait == 0 || w < wait) {
			wait = w
		}
	}
	return wait, nil
}

// flush sends the object's pending summary of type i when its interval has passed, or
// says how long to wait.
func (e *reportEvents) flush(ctx context.Context, obj client.Object, kind string, i int, final bool) (time.Duration, error) {
	uid := obj.GetUID()
	e.seen.mu.Lock()
	o := e.seen.object(uid)
	sum, last := o.pending[i], o.last[i]
	e.seen.mu.Unlock()
	if sum == nil {
		return 0, nil
	}
	now := e.now()
	if wait := last.Add(e.interval).Sub(now); !final && !last.IsZero() && wait > 0 {
		return wait, nil
	}
	id := report.RecordID(summaryReasons[i], strings.Join(sum.IDs, ","))
	if err := e.create(ctx, obj, kind, id, summaryTypes[i], summaryReasons[i], "Replicate", sum.Note(i == attention)); err != nil {
		return 0, err // kept pending: retried on the next fold
	}
	e.seen.mu.Lock()
	o = e.seen.object(uid)
	if o.pending[i] == sum {
		o.pending[i] = nil
	}
	o.last[i] = now
	e.seen.mu.Unlock()
	return 0, nil
}

func recordTime(r operator.Record) time.Time {
	if r.Decision != nil {
		return r.Decision.Time
	}
	return r.Mismatch.Time
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
