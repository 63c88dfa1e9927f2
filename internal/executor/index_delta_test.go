package executor

import (
	"testing"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/cyrusindex"
	"github.com/cyrusrepl/cyrusrepl/internal/plan"
)

// TestDeltaDoubt: every way the index, the server's line and the replica's state can
// disagree sends the update through GET FULLMAILBOX, with its reason.
func TestDeltaDoubt(t *testing.T) {
	base := func() (*csync.Mailbox, *cyrusindex.Index, *plan.Folder) {
		m := &csync.Mailbox{UniqueID: "u1", Name: "user.fred", UIDValidity: 7, LastUID: 10, HighestModSeq: 50}
		idx := &cyrusindex.Index{
			Header:  cyrusindex.Header{UIDValidity: 7, LastUID: 10, HighestModSeq: 50, DeletedModSeq: 20},
			Mailbox: cyrusindex.MailboxHeader{UniqueID: "u1", Name: "user.fred"},
		}
		r := &plan.Folder{UniqueID: "u1", Name: "user.fred", UIDValidity: 7, LastUID: 9, HighestModSeq: 40}
		return m, idx, r
	}
	for _, tc := range []struct {
		name   string
		change func(*csync.Mailbox, *cyrusindex.Index, *plan.Folder)
		want   string
	}{
		{"trusted", func(*csync.Mailbox, *cyrusindex.Index, *plan.Folder) {}, ""},
		{"index moved on since the line", func(m *csync.Mailbox, i *cyrusindex.Index, _ *plan.Folder) {
			i.Header.HighestModSeq, i.Header.LastUID = 60, 11
		}, ""},
		{"other uniqueid", func(_ *csync.Mailbox, i *cyrusindex.Index, _ *plan.Folder) { i.Mailbox.UniqueID = "u2" }, fallbackMismatch},
		{"other name", func(_ *csync.Mailbox, i *cyrusindex.Index, _ *plan.Folder) { i.Mailbox.Name = "user.fred.Old" }, fallbackMismatch},
		{"other uidvalidity", func(_ *csync.Mailbox, i *cyrusindex.Index, _ *plan.Folder) { i.Header.UIDValidity = 8 }, fallbackMismatch},
		{"replica's uidvalidity", func(_ *csync.Mailbox, _ *cyrusindex.Index, r *plan.Folder) { r.UIDValidity = 6 }, fallbackMismatch},
		{"index behind the line", func(_ *csync.Mailbox, i *cyrusindex.Index, _ *plan.Folder) { i.Header.HighestModSeq = 49 }, fallbackBehind},
		{"replica ahead", func(_ *csync.Mailbox, _ *cyrusindex.Index, r *plan.Folder) { r.HighestModSeq = 51 }, fallbackReplicaAhead},
		{"replica has more uids", func(_ *csync.Mailbox, _ *cyrusindex.Index, r *plan.Folder) { r.LastUID = 11 }, fallbackReplicaAhead},
		{"purged since the replica", func(_ *csync.Mailbox, _ *cyrusindex.Index, r *plan.Folder) { r.HighestModSeq = 19 }, fallbackPurged},
	} {
		m, idx, r := base()
		tc.change(m, idx, r)
		if got := deltaDoubt(m, idx, r); got != tc.want {
			t.Errorf("%s: doubt %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestDeltaMailbox: the delta carries the index header's counters and CRCs, the
// server's line for the rest, the records, and the replica's state as SINCE_*.
func TestDeltaMailbox(t *testing.T) {
	m := &csync.Mailbox{UniqueID: "u1", Name: "user.fred", Partition: "default", ACL: "fred\tlrs\t", LastUID: 9, HighestModSeq: 40, SyncCRC: 1,
		Annotations: []csync.Annotation{{Entry: "/comment", Value: "x"}}, Raw: csync.Str("stale")}
	idx := &cyrusindex.Index{
		Header: cyrusindex.Header{UIDValidity: 7, LastUID: 10, HighestModSeq: 50, SyncCRC: 2, SyncCRCAnnot: 3, RecentUID: 10, Exists: 3, Options: cyrusindex.OptSharedSeen},
		Delta:  cyrusindex.Delta{Records: []cyrusindex.Record{{UID: 10, ModSeq: 50, Flags: []string{`\Seen`}}}},
	}
	r := &plan.Folder{HighestModSeq: 40, LastUID: 9, SyncCRC: 1, SyncCRCAnnot: 4}
	out := deltaMailbox(m, idx, r)
	if out.LastUID != 10 || out.HighestModSeq != 50 || out.SyncCRC != 2 || out.SyncCRCAnnot != 3 || out.UIDValidity != 7 || out.Options != "S" {
		t.Errorf("header fields not from the index: %+v", out)
	}
	if out.ACL != m.ACL || out.Partition != "default" || len(out.Annotations) != 1 || out.Raw.Kind != csync.KindNil {
		t.Errorf("line fields not from the server, or Raw kept: %+v", out)
	}
	if out.Since == nil || *out.Since != (csync.Since{ModSeq: 40, CRC: 1, CRCAnnot: 4}) {
		t.Errorf("SINCE %+v", out.Since)
	}
	if len(out.Records) != 1 || out.Records[0].UID != 10 || out.Records[0].GUID != "0000000000000000000000000000000000000000" {
		t.Errorf("records %+v", out.Records)
	}
	if m.LastUID != 9 {
		t.Error("the server's line was changed in place")
	}
}
