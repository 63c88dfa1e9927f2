package operator

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// MaxResyncName is a UserResync's metadata.name limit (its CRD's CEL rule).
const MaxResyncName = 52

// ResyncName names a UserResync the manager creates for a pair: "<pair>-<word>-<token>",
// the pair's name cut so that the whole fits MaxResyncName whatever the pair's length.
func ResyncName(pair, word, token string) string {
	suffix := "-" + word + "-" + token
	return cutName(pair, MaxResyncName-len(suffix)) + suffix
}

// cutName cuts a name to n characters without leaving a '-' or '.' at its end.
func cutName(name string, n int) string {
	if len(name) > n {
		name = strings.TrimRight(name[:n], "-.")
	}
	return name
}

// Labels on the UserResyncs the manager creates (spec.verify, auditRequestedAt).
const (
	LabelCreatedBy = "app.kubernetes.io/created-by"
	// LabelTrigger says what created a verify or audit: "schedule" or "request".
	LabelTrigger = "replication.cyrusrepl.io/trigger"
)

// VerifyTriggers.
const (
	TriggerSchedule = "schedule"
	TriggerRequest  = "request"
)

// ScheduledVerifyName names the verify run scheduled at t: the same time always gives
// the same name, so a retried reconcile creates no second run.
func ScheduledVerifyName(pair string, t time.Time) string {
	return ResyncName(pair, "verify", fmt.Sprintf("%d", t.UTC().Unix()))
}

// RequestedVerifyName names the verify asked for by one value of the verifyRequestedAt
// annotation: the same value always gives the same name, so it runs once.
func RequestedVerifyName(pair, requestedAt string) string {
	return ResyncName(pair, "verify", "r"+report.RecordID(requestedAt)[:8])
}

// VerifyResync builds the verify UserResync of spec.verify, owned by the pair (deleting
// the pair deletes its verifies).
func VerifyResync(pair *v1.ReplicationPair, name, trigger string) *v1.UserResync {
	return pairResync(pair, name, trigger, v1.UserResyncSpec{
		PairName: pair.Name,
		Users:    append([]string(nil), pair.Spec.Verify.Users...),
		Mode:     v1.ResyncVerify,
	})
}

// RequestedAuditName names the audit asked for by one value of the auditRequestedAt
// annotation: the same value always gives the same name, so it runs once.
func RequestedAuditName(pair, requestedAt string) string {
	return ResyncName(pair, "audit", "r"+report.RecordID(requestedAt)[:8])
}

// AuditResync builds the Audit UserResync of every master user, owned by the pair.
func AuditResync(pair *v1.ReplicationPair, name string) *v1.UserResync {
	return pairResync(pair, name, TriggerRequest, v1.UserResyncSpec{PairName: pair.Name, Mode: v1.ResyncAudit})
}

// pairResync builds a UserResync the manager creates for the pair, labelled with what
// triggered it and owned by the pair, so that deleting the pair deletes it.
func pairResync(pair *v1.ReplicationPair, name, trigger string, spec v1.UserResyncSpec) *v1.UserResync {
	return &v1.UserResync{
		TypeMeta: metav1.TypeMeta{APIVersion: v1.GroupVersion.String(), Kind: "UserResync"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: pair.Namespace,
			Labels: map[string]string{
				LabelCreatedBy: ManagerName, LabelPair: pair.Name, LabelTrigger: trigger,
			},
			OwnerReferences: []metav1.OwnerReference{ownerRef(pair, "ReplicationPair")},
		},
		Spec: spec,
	}
}

// ParseSchedule parses spec.verify.schedule (five fields or a descriptor, UTC).
func ParseSchedule(s string) (cron.Schedule, error) {
	sched, err := cron.ParseStandard(s)
	if err != nil {
		return nil, fmt.Errorf("spec.verify.schedule %q: %w", s, err)
	}
	return sched, nil
}

// DueRun says which scheduled run is due at now: the latest schedule time after last
// (the previous run, or the pair's creation) and not after now; ok is false when none
// is. next is the first schedule time after now, to wake up then. Missed runs are not
// caught up one by one: only the latest counts, and only within the last 48 hours.
func DueRun(sched cron.Schedule, last, now time.Time) (due time.Time, ok bool, next time.Time) {
	// A frequent schedule long behind (a pair created long ago, never run) would take
	// many steps: start close to now instead; only the latest run counts anyway.
	if now.Sub(last) > 48*time.Hour {
		last = now.Add(-48 * time.Hour)
	}
	t := sched.Next(last)
	for !t.IsZero() && !t.After(now) {
		due, ok = t, true
		t = sched.Next(t)
	}
	return due, ok, t
}
