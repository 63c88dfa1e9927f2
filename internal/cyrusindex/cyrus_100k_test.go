package cyrusindex

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// TestCyrusReader100kFolder: on a real INBOX of 100,000 records (system flags,
// keywords, per-message annotations and expunged records among them, scattered through
// the folder), the reader's full read equals GET FULLMAILBOX field for field; a read of
// the last changes (modseq or UID above a mark) returns exactly the records GET
// FULLMAILBOX shows above it, having looked at every record; and after one delivery and
// one flag change a delta read returns exactly those two records. The header counters
// equal what GET MAILBOXES and IMAP STATUS report each time.
func TestCyrusReader100kFolder(t *testing.T) {
	const (
		size     = 100_000
		distinct = 2_000
	)
	f := start(t)
	m := f.p.Master
	m.CreateUser(t, f.user)
	seeded := time.Now()
	m.FillInbox(t, f.user, distinct, distinct)
	// Flags, keywords and annotations on some of the originals: the copies carry them
	// through the whole folder.
	f.imap(t,
		`UID STORE 1:300 +FLAGS.SILENT (\Seen)`,
		`UID STORE 200:260 +FLAGS.SILENT (\Flagged $Label1)`,
		`UID STORE 700:705 +FLAGS.SILENT (\Answered Project-X $Junk)`,
		`UID STORE 1500 +FLAGS.SILENT (\Draft)`,
		`UID STORE 7 ANNOTATION (/comment (value.shared "shared note"))`,
		`UID STORE 1999 ANNOTATION (/comment (value.priv "my note" value.shared "both"))`,
	)
	m.GrowInbox(t, f.user, size)
	// Then changes scattered through the grown folder: a keyword new to the folder, an
	// annotation, and expunged records (kept in the index: expunge_mode delayed).
	scattered := []uint32{10, 5000, 20000, 50000, 60000, 70000} // changed below the last UIDs
	f.imap(t,
		`UID STORE 5000,50000,99999 +FLAGS.SILENT (\Flagged Late-Keyword)`,
		`UID STORE 60000 ANNOTATION (/comment (value.shared "late note"))`,
		`UID STORE 10,20000,70000,100000 +FLAGS.SILENT (\Deleted)`,
		"EXPUNGE",
	)
	t.Logf("seeded %d records in %s", size, time.Since(seeded).Round(time.Millisecond))

	// (a) A full read equals GET FULLMAILBOX.
	mb := f.full(t, "INBOX")
	began := time.Now()
	idx := f.read(t, mb, Want{})
	t.Logf("full read of %d records: %s", len(idx.Records), time.Since(began).Round(time.Microsecond))
	checkSetUp(t, mb, size)
	assertSame(t, idx, mb)
	f.assertCounters(t, idx.Header, mb)

	// (b) The last changes: records with a modseq or a UID above a mark.
	const k = 20 // the scattered changes above and the last copies
	w := Want{SinceModSeq: mb.HighestModSeq - k, AfterUID: mb.LastUID - k}
	last := f.read(t, mb, w)
	want := above(mb.Records, w)
	for _, uid := range scattered {
		if !slices.Contains(uids(want), uid) {
			t.Fatalf("uid %d, changed last, is not among the %d records above the mark: k is too small for what the test checks", uid, len(want))
		}
	}
	if got := asCsync(last.Records); !reflect.DeepEqual(got, want) {
		t.Fatalf("read since modseq %d or after uid %d: %d records %v, GET FULLMAILBOX has %d above the mark %v",
			w.SinceModSeq, w.AfterUID, len(got), someUIDs(got), len(want), someUIDs(want))
	}
	if last.Scanned != len(mb.Records) {
		t.Errorf("scanned %d records of %d", last.Scanned, len(mb.Records))
	}
	t.Logf("since modseq %d or after uid %d: %d records, uids %v", w.SinceModSeq, w.AfterUID, len(want), uids(want))

	// (c) One delivery and one flag change: a delta read returns exactly those two.
	since, after := mb.HighestModSeq, mb.LastUID
	m.Deliver(t, f.user, cyruspair.Message("one more", "body"))
	f.imap(t, `UID STORE 30000 +FLAGS.SILENT (\Answered)`)
	mb = f.full(t, "INBOX")
	began = time.Now()
	d := f.read(t, mb, Want{SinceModSeq: since, AfterUID: after})
	t.Logf("delta read of %d records (%d scanned): %s", len(d.Records), d.Scanned, time.Since(began).Round(time.Microsecond))
	want = above(mb.Records, Want{SinceModSeq: since, AfterUID: after})
	if got := asCsync(d.Records); !reflect.DeepEqual(got, want) || !slices.Equal(uids(got), []uint32{30000, after + 1}) {
		t.Fatalf("delta since modseq %d after uid %d:\n read %+v\n GET FULLMAILBOX %+v", since, after, got, want)
	}
	if d.Scanned != len(mb.Records) {
		t.Errorf("scanned %d records of %d", d.Scanned, len(mb.Records))
	}
	f.assertCounters(t, d.Header, mb)
}

// imap runs commands as the fixture's user on its INBOX.
func (f *fixture) imap(t *testing.T, cmds ...string) {
	t.Helper()
	c := f.p.Master.IMAPAs(t, f.user)
	defer c.Close()
	for _, cmd := range append([]string{"SELECT INBOX"}, cmds...) {
		if _, err := c.Cmd("%s", cmd); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
	}
}

// checkSetUp fails the test when the folder lacks what the test means to compare.
func checkSetUp(t *testing.T, mb *csync.Mailbox, size int) {
	t.Helper()
	var expunged, annotated, keywords int
	for _, r := range mb.Records {
		if r.Expunged() {
			expunged++
		}
		if slices.ContainsFunc(r.Annotations, func(a csync.Annotation) bool { return a.Entry == "/comment" }) {
			annotated++ // every record also has Cyrus's own createdmodseq and savedate
		}
		if slices.ContainsFunc(r.Flags, func(f string) bool { return f[0] != '\\' }) {
			keywords++
		}
	}
	if len(mb.Records) != size || expunged != 4 || annotated < 50 || keywords < 1000 {
		t.Fatalf("%d records, %d expunged, %d with a /comment, %d with keywords: want %d, 4, ≥ 50, ≥ 1000: the test did not set up what it checks",
			len(mb.Records), expunged, annotated, keywords, size)
	}
	t.Logf("%d records: %d expunged, %d with a /comment, %d with keywords", len(mb.Records), expunged, annotated, keywords)
}

// assertCounters compares the index header's counters with GET MAILBOXES and IMAP STATUS.
func (f *fixture) assertCounters(t *testing.T, h Header, full *csync.Mailbox) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ms, err := f.c.GetMailboxes(ctx, []string{full.Name})
	if err != nil || len(ms) != 1 {
		t.Fatalf("GET MAILBOXES %s: %d mailboxes, %v", full.Name, len(ms), err)
	}
	exists := 0
	for _, r := range full.Records {
		if !r.Expunged() {
			exists++
		}
	}
	st := f.p.Master.Status(t, f.user, "INBOX")
	mb := ms[0]
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"last_uid", h.LastUID, mb.LastUID},
		{"highestmodseq", h.HighestModSeq, mb.HighestModSeq},
		{"sync_crc", h.SyncCRC, mb.SyncCRC},
		{"sync_crc_annot", h.SyncCRCAnnot, mb.SyncCRCAnnot},
		{"exists (GET FULLMAILBOX's unexpunged records)", int(h.Exists), exists},
		{"exists (IMAP STATUS MESSAGES)", h.Exists, st.Messages},
		{"highestmodseq (IMAP STATUS)", h.HighestModSeq, st.HighestModSeq},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: index header %s %v, the server says %v", mb.Name, c.name, c.got, c.want)
		}
	}
}

// above returns GET FULLMAILBOX's records with a modseq above w.SinceModSeq or a UID
// above w.AfterUID (written out here, not the reader's own Want.wants).
func above(recs []csync.Record, w Want) []csync.Record {
	var out []csync.Record
	for _, r := range recs {
		if r.ModSeq > w.SinceModSeq || r.UID > w.AfterUID {
			r.Flags = append([]string{}, r.Flags...)
			out = append(out, r)
		}
	}
	return out
}

func uids(recs []csync.Record) []uint32 {
	out := make([]uint32, len(recs))
	for i, r := range recs {
		out[i] = r.UID
	}
	return out
}

// someUIDs prints the UIDs of a few records, or how many there are.
func someUIDs(recs []csync.Record) string {
	if len(recs) > 50 {
		return fmt.Sprintf("(%d UIDs, %d to %d)", len(recs), recs[0].UID, recs[len(recs)-1].UID)
	}
	return fmt.Sprint(uids(recs))
}
