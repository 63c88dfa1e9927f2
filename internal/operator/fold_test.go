package operator

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

func TestParseReport(t *testing.T) {
	if _, err := ParseReport(nil); !errors.Is(err, ErrNoReport) {
		t.Fatalf("empty: %v", err)
	}
	if _, err := ParseReport(map[string]string{ReportKey: "{garbled"}); err == nil || errors.Is(err, ErrNoReport) {
		t.Fatalf("garbled: %v", err)
	}
	if _, err := ParseReport(map[string]string{ReportKey: `{"kind":"other"}`}); err == nil {
		t.Fatal("wrong kind accepted")
	}
	s, err := ParseReport(map[string]string{ReportKey: `{"kind":"` + report.SummaryKind + `","usersTotal":2}`})
	if err != nil || s.UsersTotal != 2 {
		t.Fatalf("%+v %v", s, err)
	}
}

// TestWorstCaseStatusFits: even with every string at its maximum, the status stays
// under the budget.
func TestWorstCaseStatusFits(t *testing.T) {
	long := strings.Repeat("ü", 2000)
	s := &report.Summary{Kind: report.SummaryKind, LastError: long, DecisionCounts: map[string]int{}, MismatchCounts: map[string]int{}}
	t0 := time.Now()
	for i := 0; i < 5000; i++ {
		s.Decisions = append(s.Decisions, report.Decision{ID: fmt.Sprint(i), Time: t0.Add(time.Duration(i)), User: long,
			UniqueID: long, MasterName: long, ReplicaName: long, Action: "keep", Evidence: "none", Reason: long})
		s.Mismatches = append(s.Mismatches, report.Mismatch{ID: fmt.Sprint(i), Time: t0, User: long, Kind: "replica-only",
			UniqueID: long, MasterName: long, ReplicaName: long, Detail: long})
		s.Users = append(s.Users, report.UserResult{User: long, Outcome: report.OutcomeFailed, Error: long})
	}
	for i := 0; i < 200; i++ {
		s.DecisionCounts[fmt.Sprintf("k%d/%s", i, long)] = i
	}
	var st v1.UserResyncStatus
	FoldResyncReport(&st, s)
	b, _ := json.Marshal(st)
	if len(b) > StatusBudget {
		t.Fatalf("status %d bytes > %d", len(b), StatusBudget)
	}
	if len(st.Report.DecisionCounts) > 64 {
		t.Fatalf("%d count keys", len(st.Report.DecisionCounts))
	}
	for _, d := range st.Report.RecentDecisions {
		if len(d.User) > maxName || len(d.Reason) > maxText {
			t.Fatalf("untruncated record %d/%d", len(d.User), len(d.Reason))
		}
	}
	t.Logf("worst-case resync status: %d bytes, %d users, %d+%d recent records", len(b), len(st.Users), len(st.Report.RecentDecisions), len(st.Report.RecentMismatches))
}

func TestTruncKeepsUTF8(t *testing.T) {
	s := trunc(strings.Repeat("é", 300), 256)
	if len(s) > 256 || !strings.HasSuffix(s, "…") || !json.Valid([]byte(`"`+s+`"`)) {
		t.Fatalf("trunc gave %d bytes", len(s))
	}
	for _, r := range s {
		if r == '\uFFFD' {
			t.Fatal("cut inside a rune")
		}
	}
}

func available() *appsv1.Deployment {
	return &appsv1.Deployment{Status: appsv1.DeploymentStatus{Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1}}
}

func TestPairStatusConditions(t *testing.T) {
	b0, b5 := 0, 5
	stalled := available()
	stalled.Status.AvailableReplicas = 0
	stalled.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded"}}
	cases := []struct {
		name    string
		suspend bool
		obs     PairObservation
		want    map[string]string // type -> status/reason; "-" = absent
	}{
		{"no deployment yet", false, PairObservation{}, map[string]string{
			"Ready": "False/Progressing", "Reconciling": "True/Progressing", "Stalled": "-", "InSync": "Unknown/NoReport"}},
		{"healthy", false, PairObservation{Deployment: available(), Report: &report.Summary{Backlog: &b0, LastBatch: &report.Batch{Users: 3}}}, map[string]string{
			"Ready": "True/Available", "Reconciling": "-", "Stalled": "-", "InSync": "True/CaughtUp", "SplitBrainSuspected": "False/NoEvidence"}},
		{"backlog", false, PairObservation{Deployment: available(), Report: &report.Summary{Backlog: &b5}}, map[string]string{
			"Ready": "True/Available", "InSync": "False/Backlog"}},
		{"all users failed", false, PairObservation{Deployment: available(), Report: &report.Summary{LastBatch: &report.Batch{Users: 2, Failed: 2}}}, map[string]string{
			"Ready": "False/ReplicatorFailing", "InSync": "False/UsersFailing"}},
		{"split brain", false, PairObservation{Deployment: available(), Report: &report.Summary{DecisionCounts: map[string]int{"keep/none": 1}}}, map[string]string{
			"SplitBrainSuspected": "True/ReplicaOnlyKept"}},
		{"collision", false, PairObservation{Deployment: available(), Report: &report.Summary{MismatchCounts: map[string]int{"uniqueid-collision": 1}}}, map[string]string{
			"SplitBrainSuspected": "True/UniqueIDCollision"}},
		{"invalid report", false, PairObservation{Deployment: available(), ReportErr: errors.New("decode: bad")}, map[string]string{
			"InSync": "Unknown/ReportInvalid"}},
		{"rollout stalled", false, PairObservation{Deployment: stalled}, map[string]string{
			"Ready": "False/RolloutStalled", "Stalled": "True/RolloutStalled", "Reconciling": "-"}},
		{"suspended", true, PairObservation{Deployment: available()}, map[string]string{
			"Ready": "True/Suspended", "Reconciling": "-", "Stalled": "-"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := pair()
			p.Generation = 3
			p.Spec.Suspend = tc.suspend
			st := PairStatus(p, tc.obs)
			if st.ObservedGeneration != 3 {
				t.Fatalf("observedGeneration %d", st.ObservedGeneration)
			}
			for typ, want := range tc.want {
				c := apimeta.FindStatusCondition(st.Conditions, typ)
				got := "-"
				if c != nil {
					got = string(c.Status) + "/" + c.Reason
				}
				if got != want {
					t.Errorf("%s = %s, want %s", typ, got, want)
				}
			}
			// Same observation again: identical status (no write).
			p.Status = st
			again := PairStatus(p, tc.obs)
			a, _ := json.Marshal(st)
			b, _ := json.Marshal(again)
			if string(a) != string(b) {
				t.Errorf("status not stable:\n%s\n%s", a, b)
			}
		})
	}
}

func TestResyncOutcome(t *testing.T) {
	fin := time.Now()
	rs := &v1.UserResync{Spec: v1.UserResyncSpec{Mode: v1.ResyncVerify}}
	job := func(typ batchv1.JobConditionType, reason string) *batchv1.Job {
		return &batchv1.Job{Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: typ, Status: corev1.ConditionTrue, Reason: reason}}}}
	}
	cases := []struct {
		name       string
		job        *batchv1.Job
		sum        *report.Summary
		wantPhase  v1.ResyncPhase
		wantReason string
		wantDone   bool
	}{
		{"running", &batchv1.Job{}, nil, "", "", false},
		{"complete", job(batchv1.JobComplete, ""), nil, v1.ResyncSucceeded, v1.ReasonSucceeded, true},
		{"deadline", job(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded), nil, v1.ResyncFailed, v1.ReasonDeadlineExceeded, true},
		{"failed users", job(batchv1.JobFailed, "PodFailurePolicy"), &report.Summary{UsersFailed: 1, UsersTotal: 2}, v1.ResyncFailed, v1.ReasonUsersFailed, true},
		{"differences", job(batchv1.JobFailed, "PodFailurePolicy"), &report.Summary{Users: []report.UserResult{{Outcome: report.OutcomeDiffers}}}, v1.ResyncFailed, v1.ReasonDifferencesFound, true},
		{"crash", job(batchv1.JobFailed, "BackoffLimitExceeded"), nil, v1.ResyncFailed, v1.ReasonJobFailed, true},
		{"job gone, report finished", nil, &report.Summary{Finished: &fin, UsersTotal: 1}, v1.ResyncSucceeded, v1.ReasonSucceeded, true},
		{"job gone, no report", nil, nil, v1.ResyncFailed, v1.ReasonJobLost, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			phase, reason, _, done := ResyncOutcome(rs, tc.job, tc.sum)
			if phase != tc.wantPhase || reason != tc.wantReason || done != tc.wantDone {
				t.Fatalf("got %s/%s/%v, want %s/%s/%v", phase, reason, done, tc.wantPhase, tc.wantReason, tc.wantDone)
			}
		})
	}
}

func TestSetResyncPhaseConditions(t *testing.T) {
	rs := &v1.UserResync{ObjectMeta: metav1.ObjectMeta{Generation: 1}}
	SetResyncPhase(rs, v1.ResyncRunning, v1.ReasonJobRunning, "x")
	if apimeta.FindStatusCondition(rs.Status.Conditions, v1.ConditionReconciling) == nil {
		t.Fatal("running without Reconciling")
	}
	SetResyncPhase(rs, v1.ResyncSucceeded, v1.ReasonSucceeded, "y")
	if apimeta.FindStatusCondition(rs.Status.Conditions, v1.ConditionReconciling) != nil ||
		!apimeta.IsStatusConditionTrue(rs.Status.Conditions, v1.ConditionReady) {
		t.Fatalf("succeeded conditions %+v", rs.Status.Conditions)
	}
}
