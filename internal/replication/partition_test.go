package replication

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
)

func TestNotePartition(t *testing.T) {
	no := fmt.Errorf("APPLY MAILBOX: %w", &csync.ServerError{Status: "NO", Text: "Unknown error", Line: "NO Unknown error"})
	fatal := fmt.Errorf("APPLY MESSAGE: %w", &csync.ServerError{Status: "FATAL", Line: "* Fatal error: Internal error: assertion failed: imap/dlist.c: 160: base != NULL"})
	checksum := &csync.ServerError{Status: "NO", Code: "IMAP_SYNC_CHECKSUM", Line: "NO IMAP_SYNC_CHECKSUM"}
	create := func(part string) Action {
		return Action{Op: OpCreate, User: "bob", Master: &Folder{Name: "user.bob.Far", Partition: part}}
	}
	onDefault := []Folder{{Name: "user.bob", Partition: "default"}}
	for _, tc := range []struct {
		name    string
		learned []string // partitions the replica accepted before
		a       Action
		replica []Folder
		err     error
		want    bool // a PartitionError
	}{
		{"NO on an unseen partition", nil, create("second"), onDefault, no, true},
		{"fatal on an unseen partition", nil, create("second"), nil, fatal, true},
		{"replica holds a folder there", nil, create("second"), []Folder{{Partition: "second"}}, no, false},
		{"partition accepted earlier", []string{"second"}, create("second"), onDefault, no, false},
		{"a coded refusal", nil, create("second"), onDefault, checksum, false},
		{"a broken connection", nil, create("second"), onDefault, csync.ErrBroken, false},
		{"not an upload", nil, Action{Op: OpDelete, Master: &Folder{Partition: "second"}}, nil, no, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := &Executor{ReplicaPartitions: NewPartitionSet()}
			for _, p := range tc.learned {
				_ = x.notePartition(create(p), nil, nil)
			}
			err := x.notePartition(tc.a, tc.replica, tc.err)
			var pe *PartitionError
			if got := errors.As(err, &pe); got != tc.want {
				t.Fatalf("PartitionError %v, want %v (%v)", got, tc.want, err)
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("the replica's answer is lost: %v", err)
			}
			if tc.want && (pe.Partition != "second" || pe.Folder != "user.bob.Far") {
				t.Fatalf("%+v", pe)
			}
		})
	}
	// Without a shared set (nil), only the batch's folders teach.
	x := &Executor{}
	var pe *PartitionError
	if err := x.notePartition(create("second"), onDefault, no); !errors.As(err, &pe) {
		t.Fatalf("nil set: %v", err)
	}
}

func TestPartitionsCheck(t *testing.T) {
	rec := NewRecorder("audit", "p", time.Time{})
	fail := JobResult{Job: Job{Users: []string{"bob"}}, Err: &PartitionError{Partition: "second", Err: errors.New("x")}}
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
