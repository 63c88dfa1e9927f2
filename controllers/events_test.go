package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// eventsOn lists the Events regarding uid, by type.
func eventsOn(ctx context.Context, ns string, uid types.UID) (warnings, normals []eventsv1.Event, err error) {
	var list eventsv1.EventList
	if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, nil, err
	}
	for _, e := range list.Items {
		if e.Regarding.UID != uid {
			continue
		}
		if e.Type == corev1.EventTypeWarning {
			warnings = append(warnings, e)
		} else {
			normals = append(normals, e)
		}
	}
	return warnings, normals, nil
}

// firstSyncReport is what a healthy first sync of five users reports: each user's
// folders were missing on the replica and were created.
func firstSyncReport(pair string, t0 time.Time) *report.Summary {
	s := &report.Summary{Kind: report.SummaryKind, Mode: "rolling", Pair: pair, Started: t0, Updated: t0,
		DecisionCounts: map[string]int{}, MismatchCounts: map[string]int{}}
	backlog := 0
	s.Backlog = &backlog
	s.LastBatch = &report.Batch{Time: t0, Users: 5}
	for i := 0; i < 5; i++ {
		user := fmt.Sprintf("user%d", i)
		m := report.Mismatch{Time: t0, Pair: pair, User: user, Kind: report.MismatchMissingOnReplica,
			UniqueID: fmt.Sprintf("%032x", i), MasterName: "user." + user, Detail: "folder exists on the master only"}
		m.ID = report.RecordID(m.User, m.UniqueID, m.Kind)
		d := report.Decision{Time: t0, Pair: pair, User: user, UniqueID: m.UniqueID, MasterName: m.MasterName,
			Action: report.ActionCreate, Evidence: report.EvidenceNone, Reason: "missing on the replica"}
		d.ID = report.RecordID(d.User, d.UniqueID, d.Action)
		s.Mismatches = append(s.Mismatches, m)
		s.Decisions = append(s.Decisions, d)
		s.MismatchCounts[string(m.Kind)]++
		s.DecisionCounts["create/none"]++
	}
	return s
}

// TestEventsHealthyFirstSyncNoWarning: a first sync that creates five users on the
// replica is routine work: no Warning Event, and one Normal summary for the batch rather
// than one Event per record.
func TestEventsHealthyFirstSyncNoWarning(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	createPair(t, ctx, newPair(ns, "first"))
	markAvailable(t, ctx, ns, "first")
	var p *v1.ReplicationPair
	eventually(t, "pair", func() (err error) { p, err = getPair(ctx, ns, "first"); return err })
	sum := firstSyncReport("first", time.Now().UTC().Truncate(time.Second))
	eventually(t, "publish", func() error {
		return replicatorSink(t, ns, "first", operator.ReportConfigMapName("first")).Publish(ctx, sum)
	})
	eventually(t, "report folded", func() error {
		p, err := getPair(ctx, ns, "first")
		if err != nil {
			return err
		}
		if p.Status.Report.MismatchCounts["missing-on-replica"] != 5 {
			return fmt.Errorf("mismatch counts %v", p.Status.Report.MismatchCounts)
		}
		return nil
	})
	var normals []eventsv1.Event
	eventually(t, "one Normal summary", func() error {
		var warnings []eventsv1.Event
		var err error
		warnings, normals, err = eventsOn(ctx, ns, p.UID)
		if err != nil {
			return err
		}
		if len(warnings) != 0 {
			notes := []string{}
			for _, w := range warnings {
				notes = append(notes, w.Reason+": "+w.Note)
			}
			t.Fatalf("a healthy first sync gave %d Warning Events:\n%s", len(warnings), strings.Join(notes, "\n"))
		}
		if len(normals) != 1 {
			return fmt.Errorf("%d Normal Events, want one summary", len(normals))
		}
		return nil
	})
	if n := normals[0].Note; !strings.Contains(n, "missing-on-replica=5") {
		t.Fatalf("summary note %q does not count the records", n)
	}
}

// TestEventsRateLimited: summaries of one type go out at most once per interval on an
// object; records arriving in between wait and are summed up into the next one, and a
// resync's final fold sends what waits at once. The clock is the test's; the Events are
// real ones on the API server.
func TestEventsRateLimited(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	pair := newPair(ns, "limited")
	createPair(t, ctx, pair)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	e := newReportEvents(k8s)
	e.interval = time.Minute
	e.now = func() time.Time { return now }
	sum := &report.Summary{Kind: report.SummaryKind, Mode: "rolling", Pair: "limited", Started: now, Updated: now}
	addKept := func(i int) {
		m := report.Mismatch{Time: now, User: fmt.Sprintf("u%d", i), Kind: report.MismatchReplicaOnly,
			UniqueID: fmt.Sprintf("%032x", i), ReplicaName: fmt.Sprintf("user.u%d.Old", i), Detail: "no evidence"}
		m.ID = report.RecordID(m.User, m.UniqueID)
		sum.Mismatches = append(sum.Mismatches, m)
	}
	warnings := func() []string {
		t.Helper()
		notes, err := summaryEvents(ctx, ns, pair.UID)
		if err != nil {
			t.Fatal(err)
		}
		return notes[v1.EventNeedsAttention]
	}
	fold := func(final bool) time.Duration {
		t.Helper()
		wait, err := e.emit(ctx, pair, "ReplicationPair", v1.ReportStatus{}, sum, final)
		if err != nil {
			t.Fatal(err)
		}
		return wait
	}

	addKept(0)
	if wait := fold(false); wait != 0 || len(warnings()) != 1 {
		t.Fatalf("first record: wait %v, %d warnings; want it sent at once", wait, len(warnings()))
	}
	now = now.Add(10 * time.Second)
	addKept(1)
	if wait := fold(false); wait != 50*time.Second || len(warnings()) != 1 {
		t.Fatalf("10 s later: wait %v, %d warnings; want held back 50 s", wait, len(warnings()))
	}
	now = now.Add(20 * time.Second)
	addKept(2)
	if wait := fold(false); wait != 30*time.Second || len(warnings()) != 1 {
		t.Fatalf("30 s later: wait %v, %d warnings; want held back 30 s", wait, len(warnings()))
	}
	now = now.Add(31 * time.Second)
	if wait := fold(false); wait != 0 {
		t.Fatalf("past the interval: wait %v", wait)
	}
	w := warnings()
	if len(w) != 2 || !slices.ContainsFunc(w, func(n string) bool { return strings.HasPrefix(n, "2 new record(s) need a person") }) {
		t.Fatalf("after the interval: %q, want a second summary of the 2 held records", w)
	}
	now = now.Add(time.Second)
	addKept(3)
	if wait := fold(true); wait != 0 || len(warnings()) != 3 {
		t.Fatalf("final fold: wait %v, %d warnings; want the held record sent at once", wait, len(warnings()))
	}
	if fold(false); len(warnings()) != 3 {
		t.Fatalf("a fold with nothing new sent another summary")
	}
}
