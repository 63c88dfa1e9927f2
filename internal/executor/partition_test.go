package executor

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/plan"
)

func TestNotePartition(t *testing.T) {
	no := fmt.Errorf("APPLY MAILBOX: %w", &csync.ServerError{Status: "NO", Text: "Unknown error", Line: "NO Unknown error"})
	fatal := fmt.Errorf("APPLY MESSAGE: %w", &csync.ServerError{Status: "FATAL", Line: "* Fatal error: Internal error: assertion failed: imap/dlist.c: 160: base != NULL"})
	checksum := &csync.ServerError{Status: "NO", Code: "IMAP_SYNC_CHECKSUM", Line: "NO IMAP_SYNC_CHECKSUM"}
	create := func(part string) plan.Action {
		return plan.Action{Op: plan.OpCreate, User: "bob", Master: &plan.Folder{Name: "user.bob.Far", Partition: part}}
	}
	onDefault := []plan.Folder{{Name: "user.bob", Partition: "default"}}
	for _, tc := range []struct {
		name    string
		learned []string // partitions the replica accepted before
		a       plan.Action
		replica []plan.Folder
		err     error
		want    bool // a PartitionError
	}{
		{"NO on an unseen partition", nil, create("second"), onDefault, no, true},
		{"fatal on an unseen partition", nil, create("second"), nil, fatal, true},
		{"replica holds a folder there", nil, create("second"), []plan.Folder{{Partition: "second"}}, no, false},
		{"partition accepted earlier", []string{"second"}, create("second"), onDefault, no, false},
		{"a coded refusal", nil, create("second"), onDefault, checksum, false},
		{"a broken connection", nil, create("second"), onDefault, csync.ErrBroken, false},
		{"not an upload", nil, plan.Action{Op: plan.OpDelete, Master: &plan.Folder{Partition: "second"}}, nil, no, false},
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
