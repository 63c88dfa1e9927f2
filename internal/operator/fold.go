package operator

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// The report channel, replicator → manager.
//
// Why a ConfigMap: the replicator runs in its own pod without any right on the CRDs, and
// the manager must stay the only writer of status (one writer per field, no conflicts,
// no partial writes from a pod that may be killed mid-update). A ConfigMap written by the
// replicator alone, through a Role limited by resourceNames to that one ConfigMap, gives
// the replicator the least privilege that works, survives the pod (a finished Job's
// result is still there after the Job is gone), is watched by the manager like any owned
// object, and is readable by people (`kubectl get cm <pair>-report -o yaml`). The
// summary it carries is bounded (report.MaxRecent), far below the 1 MiB object limit.
//
// Contract: data key "report.json" holds a report.Summary (Kind == report.SummaryKind)
// as JSON; the ConfigMap is "<pair>-report" for a pair's Deployment and "<resync>-report"
// for a resync's Job, in the pod's namespace (POD_NAMESPACE); the replicator gets the
// name from --report-configmap.

// ErrNoReport means the ConfigMap holds no report yet.
var ErrNoReport = errors.New("no report yet")

// ParseReport decodes the report in a ConfigMap's data.
func ParseReport(data map[string]string) (*report.Summary, error) {
	raw, ok := data[ReportKey]
	if !ok || raw == "" {
		return nil, ErrNoReport
	}
	var s report.Summary
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return nil, fmt.Errorf("decode %s: %w", ReportKey, err)
	}
	if s.Kind != report.SummaryKind {
		return nil, fmt.Errorf("decode %s: kind %q, want %q", ReportKey, s.Kind, report.SummaryKind)
	}
	return &s, nil
}

// Truncation limits for strings copied into status, matching the CRD's maxLength.
const (
	maxName   = 256
	maxText   = 256
	maxError  = 1024
	maxWord   = 64
	maxRecord = 64
)

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary and mark the cut.
	cut := n - len("…")
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// FoldReport turns a Summary into the bounded ReportStatus: totals and the newest
// MaxRecentRecords of each list.
func FoldReport(s *report.Summary) v1.ReportStatus {
	out := v1.ReportStatus{
		DecisionCounts: counts(s.DecisionCounts),
		MismatchCounts: counts(s.MismatchCounts),
		LastError:      trunc(s.LastError, maxError),
	}
	ds := append([]report.Decision(nil), s.Decisions...)
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].Time.After(ds[j].Time) })
	for _, d := range ds {
		if len(out.RecentDecisions) == v1.MaxRecentRecords {
			break
		}
		out.RecentDecisions = append(out.RecentDecisions, DecisionRecord(d))
	}
	ms := append([]report.Mismatch(nil), s.Mismatches...)
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].Time.After(ms[j].Time) })
	for _, m := range ms {
		if len(out.RecentMismatches) == v1.MaxRecentRecords {
			break
		}
		out.RecentMismatches = append(out.RecentMismatches, MismatchRecord(m))
	}
	return out
}

// DecisionRecord converts one decision, truncating free text.
func DecisionRecord(d report.Decision) v1.DecisionRecord {
	return v1.DecisionRecord{
		ID:          trunc(d.ID, maxRecord),
		Time:        metav1.NewTime(d.Time),
		User:        trunc(d.User, maxName),
		UniqueID:    trunc(d.UniqueID, maxName),
		MasterName:  trunc(d.MasterName, maxName),
		ReplicaName: trunc(d.ReplicaName, maxName),
		Action:      trunc(string(d.Action), maxWord),
		Evidence:    trunc(string(d.Evidence), maxWord),
		Reason:      trunc(d.Reason, maxText),
	}
}

// MismatchRecord converts one mismatch, truncating free text.
func MismatchRecord(m report.Mismatch) v1.MismatchRecord {
	return v1.MismatchRecord{
		ID:          trunc(m.ID, maxRecord),
		Time:        metav1.NewTime(m.Time),
		User:        trunc(m.User, maxName),
		Kind:        trunc(string(m.Kind), maxWord),
		UniqueID:    trunc(m.UniqueID, maxName),
		MasterName:  trunc(m.MasterName, maxName),
		ReplicaName: trunc(m.ReplicaName, maxName),
		Detail:      trunc(m.Detail, maxText),
	}
}

// counts copies a count map, bounded in keys (the CRD allows 64) and in key length.
func counts(in map[string]int) map[string]int64 {
	if len(in) == 0 {
		return nil
	}
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(map[string]int64, len(in))
	for _, k := range keys {
		if len(out) == 64 {
			break
		}
		out[trunc(k, maxWord)] += int64(in[k])
	}
	return out
}

// LastBatch converts the report's last batch.
func LastBatch(b *report.Batch) *v1.LastBatch {
	if b == nil {
		return nil
	}
	res := v1.BatchSucceeded
	switch {
	case b.Failed > 0 && b.Failed >= b.Users:
		res = v1.BatchFailed
	case b.Failed > 0:
		res = v1.BatchPartiallyFailed
	}
	return &v1.LastBatch{
		Time:           metav1.NewTime(b.Time),
		Users:          int32(b.Users),
		FailedUsers:    int32(b.Failed),
		DurationMillis: b.DurationMS,
		Result:         res,
	}
}

// UserResults converts per-user results, failed users first, bounded.
func UserResults(us []report.UserResult) []v1.UserResultRecord {
	sorted := append([]report.UserResult(nil), us...)
	sort.SliceStable(sorted, func(i, j int) bool {
		fi, fj := sorted[i].Outcome == report.OutcomeFailed, sorted[j].Outcome == report.OutcomeFailed
		if fi != fj {
			return fi
		}
		return sorted[i].User < sorted[j].User
	})
	var out []v1.UserResultRecord
	for _, u := range sorted {
		if len(out) == v1.MaxUserResults {
			break
		}
		out = append(out, v1.UserResultRecord{
			User:       trunc(u.User, maxName),
			Outcome:    trunc(string(u.Outcome), 32),
			Error:      trunc(u.Error, maxText),
			Actions:    int32(u.Actions),
			Decisions:  int32(u.Decisions),
			Mismatches: int32(u.Mismatches),
		})
	}
	return out
}

// StatusBudget is the size the manager keeps a status under (JSON bytes). The recent
// lists are bounded by count already; this is the guarantee whatever the strings hold.
const StatusBudget = 16 * 1024

// FitStatus drops the oldest recent records (and then per-user results) until status
// marshals to at most budget bytes. It returns the final size.
func FitStatus(status any, rs *v1.ReportStatus, users *[]v1.UserResultRecord, budget int) int {
	size := func() int { b, _ := json.Marshal(status); return len(b) }
	n := size()
	for n > budget {
		switch {
		case len(rs.RecentDecisions) > 0 && len(rs.RecentDecisions) >= len(rs.RecentMismatches):
			rs.RecentDecisions = rs.RecentDecisions[:len(rs.RecentDecisions)-1]
		case len(rs.RecentMismatches) > 0:
			rs.RecentMismatches = rs.RecentMismatches[:len(rs.RecentMismatches)-1]
		case users != nil && len(*users) > 0:
			*users = (*users)[:len(*users)-1]
		default:
			return n
		}
		n = size()
	}
	return n
}

func folderName(master, replica string) string {
	return strings.TrimSpace(firstNonEmpty(replica, master))
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
