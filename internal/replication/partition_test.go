package replication

import (
	"errors"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/executor"
)

func TestPartitionsCheck(t *testing.T) {
	rec := NewRecorder("audit", "p", time.Time{})
	fail := JobResult{Job: Job{Users: []string{"bob"}}, Err: &executor.PartitionError{Partition: "second", Err: errors.New("x")}}
	rec.notePartitionResult(JobResult{Job: Job{Users: []string{"alice"}}})
	if rec.Check("partitions") != nil {
		t.Fatal("a check before any partition failure")
	}
	rec.notePartitionResult(fail)
	if c := rec.Check("partitions"); c == nil || c.Status != "warning" || c.Reason != "PartitionMissing" {
		t.Fatalf("after bob failed: %+v", c)
	}
	rec.notePartitionResult(JobResult{Job: Job{Users: []string{"bob"}}})
	if c := rec.Check("partitions"); c == nil || c.Status != "ok" {
		t.Fatalf("after bob recovered: %+v", c)
	}
	if s := rec.Summary(nil); len(s.Checks) != 1 {
		t.Fatalf("summary checks %+v", s.Checks)
	}
}
