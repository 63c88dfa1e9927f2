package csync_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// TestApplyCommands drives every typed APPLY against the real replica and reads the
// effect back with the typed GETs, so field names and shapes are checked by Cyrus.
func TestApplyCommands(t *testing.T) {
	p := cyruspair.Start(t, cyruspair.Options{})
	ctx := ctxT(t)
	r := dialReplica(t, p, opts(p))
	const inboxID, boxID = "c0c0c0c0c0c0c0c0c0c0c0c0", "c1c1c1c1c1c1c1c1c1c1c1c1"
	mk := func(id, name string) *csync.Mailbox {
		return &csync.Mailbox{UniqueID: id, Name: name, HighestModSeq: 1, UIDValidity: 1700000000,
			Partition: "default", ACL: "carol\tlrswipkxtecdan\t", Options: "P", CreatedModSeq: 1, FolderModSeq: 1}
	}
	for _, m := range []*csync.Mailbox{mk(inboxID, "user.carol"), mk(boxID, "user.carol.Box")} {
		if err := r.ApplyMailbox(ctx, m); err != nil {
			t.Fatalf("APPLY MAILBOX %s: %v", m.Name, err)
		}
	}
	got, err := r.GetUniqueIDs(ctx, []string{boxID})
	if err != nil || len(got) != 1 || got[0].Name != "user.carol.Box" || got[0].UIDValidity != 1700000000 {
		t.Fatalf("GET UNIQUEIDS: %+v %v", got, err)
	}
	if ids := p.Replica.List(t, "carol"); !slices.Contains(ids, "Box") {
		t.Fatalf("IMAP LIST on the replica: %v", ids)
	}

	// RENAME
	if err := r.ApplyRename(ctx, csync.Rename{Old: "user.carol.Box", New: "user.carol.Box2", Partition: "default", UIDValidity: 1700000000}, false); err != nil {
		t.Fatalf("APPLY RENAME: %v", err)
	}
	if got, err := r.GetMailboxes(ctx, []string{"user.carol.Box", "user.carol.Box2"}); err != nil || len(got) != 1 || got[0].UniqueID != boxID {
		t.Fatalf("after rename: %+v %v", got, err)
	}
	if err := r.ApplyRename(ctx, csync.Rename{Old: "user.carol.Nope", New: "user.carol.X", Partition: "default"}, false); !errors.Is(err, csync.ErrMailboxNonexistent) {
		t.Fatalf("rename of nothing: %v", err)
	}

	// SUB / UNSUB
	if err := r.ApplySub(ctx, "carol", "user.carol.Box2"); err != nil {
		t.Fatal(err)
	}
	meta, err := r.GetMeta(ctx, "carol")
	if err != nil || !slices.Equal(meta.Subscriptions, []string{"user.carol.Box2"}) {
		t.Fatalf("after SUB: %+v %v", meta, err)
	}
	if err := r.ApplyUnsub(ctx, "carol", "user.carol.Box2"); err != nil {
		t.Fatal(err)
	}
	if meta, err := r.GetMeta(ctx, "carol"); err != nil || len(meta.Subscriptions) != 0 {
		t.Fatalf("after UNSUB: %+v %v", meta, err)
	}

	// QUOTA / UNQUOTA
	q := &csync.Quota{Root: "user.carol", Resources: map[string]uint64{"STORAGE": 1234, "MESSAGE": 50}, ModSeq: 7, HasModSeq: true}
	if err := r.ApplyQuota(ctx, q); err != nil {
		t.Fatalf("APPLY QUOTA: %v", err)
	}
	gq, err := r.GetQuota(ctx, "user.carol")
	if err != nil || gq == nil || gq.Resources["STORAGE"] != 1234 || gq.Resources["MESSAGE"] != 50 {
		t.Fatalf("GET QUOTA: %+v %v", gq, err)
	}
	if err := r.ApplyUnquota(ctx, "user.carol"); err != nil {
		t.Fatal(err)
	}
	if gq, err := r.GetQuota(ctx, "user.carol"); err != nil || gq != nil {
		t.Fatalf("after UNQUOTA: %+v %v", gq, err)
	}

	// ANNOTATION / UNANNOTATION, with a value that must travel as a literal
	a := &csync.MailboxAnnotation{MboxName: "user.carol.Box2", Entry: "/comment", Value: "two\r\nlines"}
	if err := r.ApplyAnnotation(ctx, a); err != nil {
		t.Fatalf("APPLY ANNOTATION: %v", err)
	}
	as, err := r.GetAnnotation(ctx, "user.carol.Box2")
	if err != nil || len(as) != 1 || as[0].Value != a.Value || as[0].Entry != "/comment" {
		t.Fatalf("GET ANNOTATION: %+v %v", as, err)
	}
	if err := r.ApplyUnannotation(ctx, "user.carol.Box2", "/comment", ""); err != nil {
		t.Fatal(err)
	}
	if as, err := r.GetAnnotation(ctx, "user.carol.Box2"); err != nil || len(as) != 0 {
		t.Fatalf("after UNANNOTATION: %+v %v", as, err)
	}

	// SEEN (seen.db entry for a mailbox uniqueid)
	seen := &csync.Seen{UniqueID: boxID, LastRead: 1700000100, LastUID: 0, LastChange: 1700000100, SeenUIDs: ""}
	if err := r.ApplySeen(ctx, "carol", seen); err != nil {
		t.Fatalf("APPLY SEEN: %v", err)
	}
	if meta, err := r.GetMeta(ctx, "carol"); err != nil || len(meta.Seen) != 1 || meta.Seen[0].UniqueID != boxID || meta.Seen[0].LastRead != 1700000100 {
		t.Fatalf("after SEEN: %+v %v", meta, err)
	}

	// SIEVE, without SIEVE-MAILBOX: scripts are listed by GET META.
	sv := &csync.Sieve{UserID: "carol", Filename: "test.script", LastUpdate: 1700000200, Content: "keep;\r\n"}
	if err := r.ApplySieve(ctx, sv); err != nil {
		t.Fatalf("APPLY SIEVE: %v", err)
	}
	fs, err := r.FetchSieve(ctx, "carol", "test.script")
	if err != nil || fs.Content != sv.Content {
		t.Fatalf("GET FETCH_SIEVE: %+v %v", fs, err)
	}
	// Activation names the compiled bytecode, not the script (found on the real server).
	if err := r.ApplyActivateSieve(ctx, "carol", "test.script"); !errors.Is(err, csync.ErrRemoteDenied) {
		t.Fatalf("ACTIVATE_SIEVE of the .script name: %v", err)
	}
	if err := r.ApplyActivateSieve(ctx, "carol", "test.bc"); err != nil {
		t.Fatalf("APPLY ACTIVATE_SIEVE: %v", err)
	}
	meta, err = r.GetMeta(ctx, "carol")
	// 3.6.1 then lists the script and an active "test.bc" entry (LAST_UPDATE 0, zero GUID).
	if err != nil || len(meta.Sieve) != 2 || meta.Sieve[0].Filename != "test.script" || meta.Sieve[0].Active ||
		meta.Sieve[1].Filename != "test.bc" || !meta.Sieve[1].Active {
		t.Fatalf("sieve after activate: %+v %v", meta, err)
	}
	if err := r.ApplyUnactivateSieve(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	if err := r.ApplyUnsieve(ctx, "carol", "test.script"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.FetchSieve(ctx, "carol", "test.script"); !errors.Is(err, csync.ErrMailboxNonexistent) {
		t.Fatalf("FETCH_SIEVE after UNSIEVE: %v", err)
	}

	// EXPUNGE with the wrong uniqueid is refused.
	if err := r.ApplyExpunge(ctx, "user.carol.Box2", inboxID, []uint32{1}); !errors.Is(err, csync.ErrMailboxMoved) {
		t.Fatalf("EXPUNGE with a wrong uniqueid: %v", err)
	}

	// CAPABILITIES: unknown ones are dropped.
	if en, err := r.ApplyCapabilities(ctx, []string{"SIEVE-MAILBOX", "FOO"}); err != nil || !slices.Equal(en, []string{"SIEVE-MAILBOX"}) {
		t.Fatalf("APPLY CAPABILITIES: %v %v", en, err)
	}

	// UNMAILBOX, then UNUSER.
	if err := r.ApplyUnmailbox(ctx, "user.carol.Box2", false); err != nil {
		t.Fatalf("APPLY UNMAILBOX: %v", err)
	}
	if got, err := r.GetMailboxes(ctx, []string{"user.carol.Box2"}); err != nil || len(got) != 0 {
		t.Fatalf("after UNMAILBOX: %+v %v", got, err)
	}
	if err := r.ApplyUnmailbox(ctx, "user.carol.Never", false); !errors.Is(err, csync.ErrMailboxNonexistent) {
		t.Fatalf("UNMAILBOX of nothing: %v", err)
	}
	if err := r.ApplyUnuser(ctx, "carol", false); err != nil {
		t.Fatalf("APPLY UNUSER: %v", err)
	}
	if st, err := r.GetUser(ctx, "carol"); err != nil || len(st.Mailboxes) != 0 {
		t.Fatalf("after UNUSER: %+v %v", st, err)
	}
	// Tombstone-typed APPLY MAILBOX is accepted and never reported back.
	tomb := &csync.Mailbox{UniqueID: "c2c2c2c2c2c2c2c2c2c2c2c2", Name: "user.carol.Gone", Type: "ed", HighestModSeq: 7, CreatedModSeq: 3}
	if err := r.ApplyMailbox(ctx, tomb); err != nil {
		t.Fatalf("tombstone APPLY MAILBOX: %v", err)
	}
	if got, err := r.GetMailboxes(ctx, []string{"user.carol.Gone"}); err != nil || len(got) != 0 {
		t.Fatalf("tombstone reported: %+v %v", got, err)
	}
	if err := r.Noop(ctx); err != nil {
		t.Fatal(err)
	}
}
