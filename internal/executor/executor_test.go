package executor

import (
	"context"
	"errors"
	"iter"
	"testing"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/plan"
)

// scripted is a replica (and master) stand-in for executor unit tests: GET MAILBOXES
// answers from a map, APPLY calls are recorded, and ApplyMailbox fails as scripted.
type scripted struct {
	ReplicaWriter
	byName     map[string]csync.Mailbox
	full       map[string]*csync.Mailbox
	applyErrs  []error
	applied    []*csync.Mailbox
	unmailbox  []string
	renames    []csync.Rename
	reserveHit bool
	reads      int // GET MAILBOXES calls
}

func (s *scripted) GetMailboxes(_ context.Context, names []string) ([]csync.Mailbox, error) {
	s.reads++
	var out []csync.Mailbox
	for _, n := range names {
		if m, ok := s.byName[n]; ok {
			out = append(out, m)
		}
	}
	return out, nil
}

func (s *scripted) GetFullMailbox(_ context.Context, name string) (*csync.Mailbox, error) {
	if m, ok := s.full[name]; ok {
		return m, nil
	}
	return nil, csync.ErrMailboxNonexistent
}

func (s *scripted) ApplyMailbox(_ context.Context, m *csync.Mailbox) error {
	c := *m
	s.applied = append(s.applied, &c)
	if len(s.applyErrs) > 0 {
		err := s.applyErrs[0]
		s.applyErrs = s.applyErrs[1:]
		return err
	}
	return nil
}

func (s *scripted) ApplyUnmailbox(_ context.Context, name string, _ bool) error {
	s.unmailbox = append(s.unmailbox, name)
	return nil
}

func (s *scripted) ApplyRename(_ context.Context, r csync.Rename, _ bool) error {
	s.renames = append(s.renames, r)
	return nil
}

func (s *scripted) ApplyReserve(context.Context, string, []string, []string) ([]string, error) {
	s.reserveHit = true
	return nil, nil
}

func (s *scripted) ApplyMessage(context.Context, iter.Seq2[csync.Message, error]) (int, error) {
	return 0, errors.New("nothing should be uploaded")
}

func (s *scripted) Fetch(context.Context, csync.FetchRequest) (*csync.FetchBody, error) {
	return nil, errors.New("unused")
}

func (s *scripted) FetchSieve(context.Context, string, string) (*csync.Sieve, error) {
	return nil, errors.New("unused")
}

func TestSyncMailboxCompareAndSetRetry(t *testing.T) {
	master := &scripted{full: map[string]*csync.Mailbox{"user.a": {UniqueID: "u", Name: "user.a", LastUID: 2, HighestModSeq: 9,
		Records: []csync.Record{{UID: 1, ModSeq: 3, GUID: "g1"}, {UID: 2, ModSeq: 9, GUID: "g2"}}}}}
	replica := &scripted{
		byName:    map[string]csync.Mailbox{"user.a": {UniqueID: "u", Name: "user.a", LastUID: 2, HighestModSeq: 5, SyncCRC: 77}},
		applyErrs: []error{csync.ErrSyncChanged},
	}
	x := &Executor{Master: master, Replica: replica}
	if _, err := x.syncMailbox(context.Background(), plan.Action{Op: plan.OpUpdate, Name: "user.a", UniqueID: "u"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if len(replica.applied) != 2 {
		t.Fatalf("applies: %d, want a retry after IMAP_SYNC_CHANGED", len(replica.applied))
	}
	for _, a := range replica.applied {
		if a.Since == nil || a.Since.ModSeq != 5 || a.Since.CRC != 77 {
			t.Fatalf("SINCE_* not the replica's state: %+v", a.Since)
		}
		if len(a.Records) != 1 || a.Records[0].UID != 2 {
			t.Fatalf("records sent: %+v (want only modseq > 5)", a.Records)
		}
	}
	// A checksum failure falls back to the whole record list without SINCE_*.
	replica.applied, replica.applyErrs = nil, []error{csync.ErrSyncChecksum}
	if _, err := x.syncMailbox(context.Background(), plan.Action{Op: plan.OpUpdate, Name: "user.a", UniqueID: "u"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if len(replica.applied) != 2 || replica.applied[1].Since != nil || len(replica.applied[1].Records) != 2 {
		t.Fatalf("checksum fallback: %+v", replica.applied)
	}
	// Changed three times in a row: give up with the error.
	replica.applied, replica.applyErrs = nil, []error{csync.ErrSyncChanged, csync.ErrSyncChanged, csync.ErrSyncChanged}
	if _, err := x.syncMailbox(context.Background(), plan.Action{Op: plan.OpUpdate, Name: "user.a", UniqueID: "u"}, nil, nil); !errors.Is(err, csync.ErrSyncChanged) {
		t.Fatalf("want IMAP_SYNC_CHANGED after 3 tries, got %v", err)
	}
}

func TestDeleteAndRenameRecheckUniqueID(t *testing.T) {
	replica := &scripted{byName: map[string]csync.Mailbox{
		"user.a.Gone": {UniqueID: "someone-else", Name: "user.a.Gone"},
		"user.a.Old":  {UniqueID: "r1", Name: "user.a.Old"},
	}}
	x := &Executor{Master: &scripted{}, Replica: replica}
	p := &plan.Plan{Actions: []plan.Action{{Op: plan.OpDelete, Name: "user.a.Gone", UniqueID: "r0"}}}
	if _, err := x.Execute(context.Background(), p, plan.Input{}); !errors.Is(err, ErrChangedUnderUs) {
		t.Fatalf("delete of a name now held by another uniqueid: %v", err)
	}
	if len(replica.unmailbox) != 0 {
		t.Fatalf("UNMAILBOX sent: %v", replica.unmailbox)
	}
	p = &plan.Plan{Actions: []plan.Action{{Op: plan.OpRename, Name: "user.a.Old", NewName: "user.a.New", UniqueID: "r1"}, {Op: plan.OpDelete, Name: "user.a.Missing", UniqueID: "r2"}}}
	if _, err := x.Execute(context.Background(), p, plan.Input{}); !errors.Is(err, ErrChangedUnderUs) {
		t.Fatalf("delete of a vanished name: %v", err)
	}
	if len(replica.renames) != 1 || replica.renames[0].New != "user.a.New" || len(replica.unmailbox) != 0 {
		t.Fatalf("renames %v unmailbox %v", replica.renames, replica.unmailbox)
	}
}

// TestSyncMailboxTrustsPlannedState: an update's first APPLY MAILBOX compares-and-sets
// against the replica state the plan read, without reading the folder again; when the
// replica moved since (IMAP_SYNC_CHANGED) the retry reads it afresh.
func TestSyncMailboxTrustsPlannedState(t *testing.T) {
	master := &scripted{full: map[string]*csync.Mailbox{"user.a": {UniqueID: "u", Name: "user.a", LastUID: 2, HighestModSeq: 9,
		Records: []csync.Record{{UID: 1, ModSeq: 3, GUID: "g1"}, {UID: 2, ModSeq: 9, GUID: "g2"}}}}}
	planned := &plan.Folder{UniqueID: "u", Name: "user.a", LastUID: 2, HighestModSeq: 4, SyncCRC: 11}
	replica := &scripted{byName: map[string]csync.Mailbox{"user.a": {UniqueID: "u", Name: "user.a", LastUID: 2, HighestModSeq: 5, SyncCRC: 77}}}
	x := &Executor{Master: master, Replica: replica}
	a := plan.Action{Op: plan.OpUpdate, Name: "user.a", UniqueID: "u"}
	if _, err := x.syncMailbox(context.Background(), a, nil, planned); err != nil {
		t.Fatal(err)
	}
	if replica.reads != 0 || len(replica.applied) != 1 {
		t.Fatalf("reads %d, applies %d: want the planned state used as is", replica.reads, len(replica.applied))
	}
	if s := replica.applied[0].Since; s == nil || s.ModSeq != 4 || s.CRC != 11 {
		t.Fatalf("since %+v, want the planned modseq 4 / crc 11", s)
	}
	if got := len(replica.applied[0].Records); got != 1 {
		t.Fatalf("records sent %d, want only the one past the planned modseq", got)
	}

	replica = &scripted{byName: replica.byName, applyErrs: []error{csync.ErrSyncChanged}}
	x.Replica = replica
	if _, err := x.syncMailbox(context.Background(), a, nil, planned); err != nil {
		t.Fatal(err)
	}
	if replica.reads != 1 || len(replica.applied) != 2 || replica.applied[1].Since.ModSeq != 5 {
		t.Fatalf("after IMAP_SYNC_CHANGED: reads %d, applies %d: want one fresh read and a retry with it", replica.reads, len(replica.applied))
	}
}

func TestCheckedBy(t *testing.T) {
	upd := func(uid string) plan.Action { return plan.Action{Op: plan.OpUpdate, UniqueID: uid} }
	ren := func(uid string) plan.Action { return plan.Action{Op: plan.OpRename, UniqueID: uid} }
	for _, tc := range []struct {
		name    string
		actions []plan.Action
		want    bool // checkedByReplica
		updates bool // checkedByUpdates
	}{
		{"nothing", nil, false, false},
		{"updates", []plan.Action{upd("a"), upd("b")}, true, true},
		{"rename then update of it", []plan.Action{ren("a"), upd("a")}, true, true},
		{"rename without its update", []plan.Action{ren("a"), upd("b")}, false, false},
		{"a create and an update", []plan.Action{{Op: plan.OpCreate, UniqueID: "c"}, upd("a")}, true, false},
		{"creates and user metadata", []plan.Action{{Op: plan.OpCreate, UniqueID: "c"}, {Op: plan.OpSub}, {Op: plan.OpQuota}, {Op: plan.OpSeen}, {Op: plan.OpSieve}}, true, false},
		{"a delete", []plan.Action{{Op: plan.OpDelete, UniqueID: "d"}}, false, false},
		{"a move-aside", []plan.Action{{Op: plan.OpMoveAside, UniqueID: "m"}, upd("a")}, false, false},
	} {
		p := &plan.Plan{Actions: tc.actions}
		if got := checkedByReplica(p); got != tc.want {
			t.Errorf("%s: checkedByReplica %v, want %v", tc.name, got, tc.want)
		}
		if got := checkedByUpdates(p); got != tc.updates {
			t.Errorf("%s: checkedByUpdates %v, want %v", tc.name, got, tc.updates)
		}
	}
}
