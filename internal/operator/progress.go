package operator

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// FoldProgress turns the report's progress into status.progress (nil: none reported).
func FoldProgress(p *report.Progress) *v1.ProgressStatus {
	if p == nil {
		return nil
	}
	out := &v1.ProgressStatus{
		UsersDone: int32(p.Done), UsersTotal: int32(p.Total), UsersFailed: int32(p.Failed),
		Percent: percent(p.Done, p.Total), Bodies: p.Bodies, Bytes: p.Bytes, Finished: p.Finished,
	}
	if !p.Started.IsZero() {
		t := metav1.NewTime(p.Started.UTC().Truncate(time.Second))
		out.Started = &t
		u := metav1.NewTime(p.Started.Add(time.Duration(p.ElapsedMS) * time.Millisecond).UTC().Truncate(time.Second))
		out.Updated = &u
		if !p.Finished && p.ETAMS >= 0 && p.Done < p.Total {
			eta := metav1.NewTime(p.Started.Add(time.Duration(p.ElapsedMS+p.ETAMS) * time.Millisecond).UTC().Truncate(time.Second))
			out.ETA = &eta
		}
	}
	return out
}

// percent is done of total in whole percent, 0 to 100 (nothing to do is 100).
func percent(done, total int) int32 {
	if total <= 0 || done >= total {
		return 100
	}
	return int32(max(done, 0) * 100 / total)
}

// setInSyncOrSeeding sets InSync: False while the seeding pass runs (a replica still
// being filled is not in step whatever the log says), else from the report as usual.
func setInSyncOrSeeding(c conditionSetter, r *report.Summary) {
	if r.Seed != nil && r.Seed.State == report.SeedRunning {
		c.set(v1.ConditionInSync, metav1.ConditionFalse, v1.ReasonSeeding, "the replica is being seeded; the sync log is followed once every master user was synced")
		return
	}
	setInSync(c, r)
}

// setSeeding sets the Seeding condition from the report's seed record (removed when the
// replicator seeds nothing: audit mode, --seed off).
func setSeeding(c conditionSetter, r *report.Summary) {
	s := r.Seed
	if s == nil {
		c.clear(v1.ConditionSeeding)
		return
	}
	switch s.State {
	case report.SeedRunning:
		msg := "a full pass over every master user fills the replica before the sync log is followed (status.progress says how far)"
		if s.Started != nil {
			msg += "; begun " + s.Started.UTC().Format(time.RFC3339)
		}
		if s.Reason != "" {
			msg += ": " + s.Reason
		}
		c.set(v1.ConditionSeeding, metav1.ConditionTrue, v1.ReasonSeedingInProgress, trunc(msg, maxError))
	case report.SeedComplete:
		msg := fmt.Sprintf("the seeding pass over %d master users completed", s.Users)
		if s.Completed != nil {
			msg += " at " + s.Completed.UTC().Format(time.RFC3339)
		}
		if s.Failed > 0 {
			msg += fmt.Sprintf("; %d of them failed and are retried", s.Failed)
		}
		c.set(v1.ConditionSeeding, metav1.ConditionFalse, v1.ReasonSeeded, msg)
	case report.SeedNotNeeded:
		c.set(v1.ConditionSeeding, metav1.ConditionFalse, v1.ReasonSeedNotNeeded, trunc("no seeding pass: "+s.Reason, maxError))
	default: // report.SeedUnavailable
		c.set(v1.ConditionSeeding, metav1.ConditionFalse, v1.ReasonSeedUnavailable,
			"no seeding pass: the master's users cannot be listed (set spec.masterConfig or spec.master.imapPort); the replica gets only the users the sync log names")
	}
}
