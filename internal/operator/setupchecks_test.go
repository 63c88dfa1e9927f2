package operator

import (
	"slices"
	"strings"
	"testing"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

func TestSetupCheckConditions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		checks []report.Check
		want   map[string]string // condition type → "status/reason" ("" = absent)
	}{
		{"no checks reported", nil, map[string]string{v1.ConditionVersionSkew: "", v1.ConditionPartitionMissing: "", v1.ConditionChannelSilent: ""}},
		{"skew", []report.Check{{Name: report.CheckVersions, Status: report.CheckWarning, Reason: report.ReasonVersionSkew, Message: "3.6 and 3.8"}},
			map[string]string{v1.ConditionVersionSkew: "True/VersionSkew", v1.ConditionPartitionMissing: ""}},
		{"same release", []report.Check{{Name: report.CheckVersions, Status: report.CheckOK}},
			map[string]string{v1.ConditionVersionSkew: "False/SameRelease"}},
		{"hidden version", []report.Check{{Name: report.CheckVersions, Status: report.CheckUnknown}},
			map[string]string{v1.ConditionVersionSkew: "Unknown/VersionUnknown"}},
		{"partition", []report.Check{{Name: report.CheckPartitions, Status: report.CheckWarning, Reason: report.ReasonPartitionMissing}},
			map[string]string{v1.ConditionPartitionMissing: "True/PartitionMissing"}},
		{"silent", []report.Check{{Name: report.CheckChannelSilence, Status: report.CheckWarning, Reason: report.ReasonChannelSilent}},
			map[string]string{v1.ConditionChannelSilent: "True/ChannelSilent"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var conds []metav1.Condition
			setCheckConditions(conditionSetter{conds: &conds}, &report.Summary{Checks: tc.checks})
			for typ, want := range tc.want {
				got := ""
				if c := apimeta.FindStatusCondition(conds, typ); c != nil {
					got = string(c.Status) + "/" + c.Reason
				}
				if got != want {
					t.Errorf("%s = %q, want %q", typ, got, want)
				}
			}
		})
	}
}

func TestSyncLogStall(t *testing.T) {
	if SyncLogStall(nil) != "" || SyncLogStall(&report.Summary{}) != "" {
		t.Fatal("a stall without a report")
	}
	ok := &report.Summary{Checks: []report.Check{{Name: report.CheckSyncLog, Status: report.CheckOK}}}
	if SyncLogStall(ok) != "" {
		t.Fatal("a stall from an ok check")
	}
	failed := &report.Summary{Checks: []report.Check{{Name: report.CheckSyncLog, Status: report.CheckFailed, Setting: "sync_log", Message: "sync_log is off"}}}
	if msg := SyncLogStall(failed); msg != "the master does not write the sync-log channel the replicator consumes (a replicator starting so refuses to run): sync_log is off" {
		t.Fatalf("stall message %q", msg)
	}
	// A suspended pair is not stalled by an old report.
	pair := &v1.ReplicationPair{Spec: v1.ReplicationPairSpec{Suspend: true}}
	st := PairStatus(pair, PairObservation{Report: failed})
	if c := apimeta.FindStatusCondition(st.Conditions, v1.ConditionStalled); c != nil {
		t.Fatalf("suspended pair stalled: %+v", c)
	}
}

// An audit resync's report carries the checks too: the resync shows them.
func TestResyncCheckConditions(t *testing.T) {
	rs := &v1.UserResync{}
	SetResyncCheckConditions(rs, &report.Summary{Checks: []report.Check{
		{Name: report.CheckPartitions, Status: report.CheckWarning, Reason: report.ReasonPartitionMissing, Message: `partition "second" (1 users: bob)`},
	}})
	c := apimeta.FindStatusCondition(rs.Status.Conditions, v1.ConditionPartitionMissing)
	if c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, `"second"`) {
		t.Fatalf("PartitionMissing = %+v", c)
	}
}

func TestNewlyTrue(t *testing.T) {
	cond := func(msg string) []metav1.Condition {
		return []metav1.Condition{{Type: v1.ConditionPartitionMissing, Status: metav1.ConditionTrue, Reason: v1.ReasonPartitionMissing, Message: msg}}
	}
	if NewlyTrue(nil, cond("bob"), v1.ConditionPartitionMissing, v1.ReasonPartitionMissing) == nil {
		t.Error("a condition that turned true is not news")
	}
	if NewlyTrue(cond("bob"), cond("bob, carol"), v1.ConditionPartitionMissing, v1.ReasonPartitionMissing) != nil {
		t.Error("a new message alone is news")
	}
}

// TestAgentCondition: the agent check maps to AgentUnavailable: absent without the
// check, True with the check's reason (an unknown one is AgentError), False once ok;
// each reason turning true is announced.
func TestAgentCondition(t *testing.T) {
	var conds []metav1.Condition
	c := conditionSetter{conds: &conds, gen: 1}
	get := func() *metav1.Condition { return apimeta.FindStatusCondition(conds, v1.ConditionAgentUnavailable) }
	setAgentCondition(c, &report.Summary{})
	if got := get(); got != nil {
		t.Fatalf("without an agent check: %+v", got)
	}
	for _, tc := range []struct {
		check       report.Check
		st          metav1.ConditionStatus
		reason, msg string
	}{
		{report.Check{Name: report.CheckAgent, Status: report.CheckFailed, Reason: report.ReasonAgentChannelHeld, Message: "409 held by replicator rolling pid 7"},
			metav1.ConditionTrue, v1.ReasonAgentChannelHeld, "pid 7"},
		{report.Check{Name: report.CheckAgent, Status: report.CheckFailed, Reason: report.ReasonAgentTLSFailed, Message: "refused the TLS handshake"},
			metav1.ConditionTrue, v1.ReasonAgentTLSFailed, "TLS"},
		{report.Check{Name: report.CheckAgent, Status: report.CheckFailed, Reason: "SomethingNew", Message: "x"},
			metav1.ConditionTrue, v1.ReasonAgentError, "x"},
		{report.Check{Name: report.CheckAgent, Status: report.CheckOK, Message: "the agent answers"},
			metav1.ConditionFalse, v1.ReasonAgentAnswering, "answers"},
	} {
		before := slices.Clone(conds)
		setAgentCondition(c, &report.Summary{Checks: []report.Check{tc.check}})
		got := get()
		if got == nil || got.Status != tc.st || got.Reason != tc.reason || !strings.Contains(got.Message, tc.msg) {
			t.Fatalf("%+v: AgentUnavailable %+v, want %s %s", tc.check, got, tc.st, tc.reason)
		}
		announced := false
		for _, cr := range WarningCheckConditions() {
			announced = announced || NewlyTrue(before, conds, cr[0], cr[1]) != nil
		}
		if announced != (tc.st == metav1.ConditionTrue) {
			t.Errorf("%+v: announced %v", tc.check, announced)
		}
	}
}
