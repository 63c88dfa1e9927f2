package operator

import (
	"slices"
	"strings"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// The set-up checks of the replicator's report, as conditions: a sync-log channel the
// master never writes stalls the pair; version skew, a partition the replica lacks and a
// silent channel are Warning conditions of their own.

// SyncLogStall returns the message of a failed sync-log check in r ("" when none): the
// replicator refused to start, naming the setting.
func SyncLogStall(r *report.Summary) string {
	if r == nil {
		return ""
	}
	chk := report.FindCheck(r.Checks, report.CheckSyncLog)
	if chk == nil || chk.Status != report.CheckFailed {
		return ""
	}
	msg := chk.Message
	if chk.Setting != "" && !strings.Contains(msg, chk.Setting) {
		msg = chk.Setting + ": " + msg
	}
	return trunc("the master does not write the sync-log channel the replicator consumes (a replicator starting so refuses to run): "+msg, maxError)
}

// checkConditions maps the Warning checks to their conditions.
var checkConditions = []struct {
	check, condition, reasonTrue, reasonFalse string
}{
	{report.CheckVersions, v1.ConditionVersionSkew, v1.ReasonVersionSkew, v1.ReasonSameRelease},
	{report.CheckPartitions, v1.ConditionPartitionMissing, v1.ReasonPartitionMissing, v1.ReasonPartitionsPresent},
	{report.CheckChannelSilence, v1.ConditionChannelSilent, v1.ReasonChannelSilent, v1.ReasonChannelWritten},
}

// setCheckConditions sets VersionSkew, PartitionMissing and ChannelSilent from the
// report's checks: True on a warning, False when the check found nothing wrong,
// Unknown when it could not run, and absent while the replicator reported no such check.
func setCheckConditions(c conditionSetter, r *report.Summary) {
	for _, cc := range checkConditions {
		chk := report.FindCheck(r.Checks, cc.check)
		switch {
		case chk == nil:
			c.clear(cc.condition)
		case chk.Status == report.CheckWarning || chk.Status == report.CheckFailed:
			c.set(cc.condition, metav1.ConditionTrue, cc.reasonTrue, trunc(chk.Message, maxError))
		case chk.Status == report.CheckOK:
			c.set(cc.condition, metav1.ConditionFalse, cc.reasonFalse, trunc(chk.Message, maxError))
		default:
			reason := "CheckNotRun"
			if cc.check == report.CheckVersions {
				reason = v1.ReasonVersionUnknown
			}
			c.set(cc.condition, metav1.ConditionUnknown, reason, trunc(chk.Message, maxError))
		}
	}
}

// agentReasons are the reasons of AgentUnavailable=True, as the replicator's agent
// check names them.
var agentReasons = []string{v1.ReasonAgentUnreachable, v1.ReasonAgentUnauthorized, v1.ReasonAgentTLSFailed,
	v1.ReasonAgentChannelHeld, v1.ReasonAgentError}

// setAgentCondition sets AgentUnavailable from the replicator's agent check: True with
// its reason while the agent cannot be had, False once it answers, absent while the
// replicator reported no such check (no agent, or not asked yet).
func setAgentCondition(c conditionSetter, r *report.Summary) {
	chk := report.FindCheck(r.Checks, report.CheckAgent)
	switch {
	case chk == nil:
		c.clear(v1.ConditionAgentUnavailable)
	case chk.Status == report.CheckOK:
		c.set(v1.ConditionAgentUnavailable, metav1.ConditionFalse, v1.ReasonAgentAnswering, trunc(chk.Message, maxError))
	default:
		reason := chk.Reason
		if !slices.Contains(agentReasons, reason) {
			reason = v1.ReasonAgentError // a newer replicator's reason: still a failure
		}
		c.set(v1.ConditionAgentUnavailable, metav1.ConditionTrue, reason, trunc(chk.Message, maxError))
	}
}

// WarningCheckConditions are the condition types and reasons a person is told about (a
// Warning Event) when they turn true with that reason.
func WarningCheckConditions() [][2]string {
	out := make([][2]string, 0, len(checkConditions)+len(agentReasons))
	for _, cc := range checkConditions {
		out = append(out, [2]string{cc.condition, cc.reasonTrue})
	}
	for _, reason := range agentReasons {
		out = append(out, [2]string{v1.ConditionAgentUnavailable, reason})
	}
	return out
}

// SetResyncCheckConditions gives a resync (an audit or a sync Job) the same set-up
// check conditions as a pair, from its report: every audit checks the set-up too.
func SetResyncCheckConditions(rs *v1.UserResync, r *report.Summary) {
	setCheckConditions(conditionSetter{conds: &rs.Status.Conditions, gen: rs.Generation}, r)
}

// NewlyTrue returns the condition condType of after when it turned true with reason
// since before (absent there, or not true with that reason). Unlike NewTrue, a new
// message alone (another user failing for the same missing partition) is not news.
func NewlyTrue(before, after []metav1.Condition, condType, reason string) *metav1.Condition {
	a := apimeta.FindStatusCondition(after, condType)
	if a == nil || a.Status != metav1.ConditionTrue || a.Reason != reason {
		return nil
	}
	if b := apimeta.FindStatusCondition(before, condType); b != nil && b.Status == a.Status && b.Reason == a.Reason {
		return nil
	}
	return a
}
