package replication

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/cyrusrepl/cyrusrepl/internal/executor"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// SetCheck records the latest result of a set-up check (one per name) in every later
// summary.
func (r *Recorder) SetCheck(c report.Check) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.Checks = report.SetCheck(r.s.Checks, c)
}

// Check returns the latest result of the named check, or nil.
func (r *Recorder) Check(name string) *report.Check {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := report.FindCheck(r.s.Checks, name); c != nil {
		cp := *c
		return &cp
	}
	return nil
}

// notePartitionResult keeps the partitions check current: a job failing with a
// PartitionError adds its users under that partition; a job that succeeded clears its
// users. The check appears with the first such failure and stays (ok) once none is left.
func (r *Recorder) notePartitionResult(jr JobResult) {
	var pe *executor.PartitionError
	failed := errors.As(jr.Err, &pe)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !failed && r.partitionFailures == nil {
		return
	}
	if r.partitionFailures == nil {
		r.partitionFailures = map[string]map[string]bool{}
	}
	for _, users := range r.partitionFailures {
		for _, u := range jr.Job.Users {
			delete(users, u)
		}
	}
	if failed {
		if r.partitionFailures[pe.Partition] == nil {
			r.partitionFailures[pe.Partition] = map[string]bool{}
		}
		for _, u := range jr.Job.Users {
			r.partitionFailures[pe.Partition][u] = true
		}
	}
	r.s.Checks = report.SetCheck(r.s.Checks, partitionsCheck(r.partitionFailures))
}

// partitionsCheck words the partitions check from the failing users by partition.
func partitionsCheck(byPartition map[string]map[string]bool) report.Check {
	var parts []string
	for p, users := range byPartition {
		if len(users) > 0 {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return report.Check{Name: report.CheckPartitions, Status: report.CheckOK,
			Message: "no user fails for a partition the replica lacks"}
	}
	sort.Strings(parts)
	var says []string
	for _, p := range parts {
		users := make([]string, 0, len(byPartition[p]))
		for u := range byPartition[p] {
			users = append(users, u)
		}
		sort.Strings(users)
		n := len(users)
		if n > 5 {
			users = append(users[:5], "…")
		}
		says = append(says, fmt.Sprintf("partition %q (%d users: %s)", p, n, strings.Join(users, ", ")))
	}
	return report.Check{Name: report.CheckPartitions, Status: report.CheckWarning, Reason: report.ReasonPartitionMissing,
		Message: "the master keeps folders on partitions the replica most likely lacks (it refuses them and holds no folder there): " + strings.Join(says, "; ") +
			"; those folders are not replicated (nothing is deleted); add the partitions to the replica's imapd.conf"}
}
