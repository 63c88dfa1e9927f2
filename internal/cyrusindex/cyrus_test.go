package cyrusindex

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// Tests in this file read the index of a real Cyrus 3.6 master and compare it with
// what the master's sync_server says (GET FULLMAILBOX).

type fixture struct {
	p     *cyruspair.Pair
	c     *csync.MasterConn
	parts map[string]string
	user  string
}

func start(t *testing.T) *fixture {
	t.Helper()
	p := cyruspair.Start(t, cyruspair.Options{DeleteMode: "delayed"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := csync.DialMaster(ctx, p.Master.SyncAddr, csync.Options{Username: p.ReplUser, Password: p.ReplPassword, TLS: p.ClientTLS()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	parts, err := Partitions(p.Master.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	user := "fred"
	if p.Namespace == cyruspair.NamespaceDefault {
		user = "john.doe@example.com" // a domain and a dot in the userid
	}
	return &fixture{p: p, c: c, parts: parts, user: user}
}

func (f *fixture) full(t *testing.T, folder string) *csync.Mailbox {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mb, err := f.c.GetFullMailbox(ctx, cyruspair.InternalName(f.user, folder))
	if err != nil {
		t.Fatal(err)
	}
	return mb
}

func (f *fixture) read(t *testing.T, mb *csync.Mailbox, w Want) *Index {
	t.Helper()
	dir, err := Dir(f.parts[mb.Partition], mb.UniqueID)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := Read(dir, Options{Want: w, Owner: f.user})
	if err != nil {
		t.Fatalf("read %s (%s): %v", mb.Name, dir, err)
	}
	return idx
}

// asCsync renders the reader's records as csync records.
func asCsync(recs []Record) []csync.Record {
	out := make([]csync.Record, 0, len(recs))
	for _, r := range recs {
		cr := csync.Record{UID: r.UID, ModSeq: r.ModSeq, LastUpdated: int64(r.LastUpdated), Flags: append([]string{}, r.Flags...),
			InternalDate: int64(r.InternalDate), Size: r.Size, GUID: r.GUIDHex()}
		for _, a := range r.Annotations {
			cr.Annotations = append(cr.Annotations, csync.Annotation{Entry: a.Entry, UserID: a.UserID, ModSeq: a.ModSeq, Value: a.Value})
		}
		out = append(out, cr)
	}
	return out
}

// assertSame compares the reader's view of a folder with GET FULLMAILBOX's, field by
// field: the header fields csync carries and every record.
func assertSame(t *testing.T, idx *Index, mb *csync.Mailbox) {
	t.Helper()
	h := idx.Header
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"uniqueid", idx.Mailbox.UniqueID, mb.UniqueID},
		{"name", idx.Mailbox.Name, mb.Name},
		{"acl", idx.Mailbox.ACL, mb.ACL},
		{"quotaroot", idx.Mailbox.QuotaRoot, mb.QuotaRoot},
		{"last_uid", h.LastUID, mb.LastUID},
		{"highestmodseq", h.HighestModSeq, mb.HighestModSeq},
		{"uidvalidity", h.UIDValidity, mb.UIDValidity},
		{"sync_crc", h.SyncCRC, mb.SyncCRC},
		{"sync_crc_annot", h.SyncCRCAnnot, mb.SyncCRCAnnot},
		{"recentuid", h.RecentUID, mb.RecentUID},
		{"recenttime", int64(h.RecentTime), mb.RecentTime},
		{"last_appenddate", int64(h.LastAppendDate), mb.LastAppendDate},
		{"pop3_last_login", int64(h.POP3LastLogin), mb.POP3LastLogin},
		{"pop3_show_after", int64(h.POP3ShowAfter), mb.POP3ShowAfter},
		{"options", h.SyncOptions(), mb.Options},
		{"createdmodseq", h.CreatedModSeq, mb.CreatedModSeq},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: %s %v, GET FULLMAILBOX says %v", mb.Name, c.name, c.got, c.want)
		}
	}
	got := asCsync(idx.Records)
	for i := range mb.Records {
		mb.Records[i].Flags = append([]string{}, mb.Records[i].Flags...)
	}
	if len(got) != len(mb.Records) {
		t.Fatalf("%s: %d records read, GET FULLMAILBOX has %d", mb.Name, len(got), len(mb.Records))
	}
	bad := 0
	for i := range got {
		if !reflect.DeepEqual(got[i], mb.Records[i]) {
			if bad++; bad > 10 { // a large folder: the first few say enough
				t.Fatalf("%s: more than 10 records differ", mb.Name)
			}
			t.Errorf("%s record %d:\n read %+v\n GET FULLMAILBOX %+v", mb.Name, i, got[i], mb.Records[i])
		}
	}
	if c := csync.SyncCRC(got); c != h.SyncCRC {
		t.Errorf("%s: SYNC_CRC of the records read %d, the header says %d", mb.Name, c, h.SyncCRC)
	}
}

// TestCyrusReaderEqualsFullMailbox: on real folders with system and user flags,
// per-message annotations (shared and the owner's), expunged records, the reader's
// records equal GET FULLMAILBOX's field for field, also after cyr_expire and ipurge
// rewrote the index; and a delta read returns exactly the records above the modseq.
func TestCyrusReaderEqualsFullMailbox(t *testing.T) {
	f := start(t)
	m := f.p.Master
	m.CreateUser(t, f.user)
	m.CreateFolder(t, f.user, "Work")
	for i := 0; i < 6; i++ {
		m.Deliver(t, f.user, cyruspair.Message(fmt.Sprintf("inbox %d", i), "body"))
		m.Append(t, f.user, "Work", cyruspair.Message(fmt.Sprintf("work %d", i), "body"), `\Seen`, "$Label1")
	}
	m.Store(t, f.user, "INBOX", "1:3", "+FLAGS", `\Flagged`, `\Answered`, "$Junk", "Project-X")
	m.Store(t, f.user, "INBOX", "2", "+FLAGS", `\Draft`, `\Seen`)
	m.Store(t, f.user, "Work", "4", "+FLAGS", "$Other")
	c := m.IMAPAs(t, f.user)
	for _, cmd := range []string{
		"SELECT INBOX",
		`STORE 1 ANNOTATION (/comment (value.shared "shared note"))`,
		`STORE 2 ANNOTATION (/comment (value.priv "my note" value.shared "both"))`,
		`STORE 4 +FLAGS (\Deleted)`,
		"EXPUNGE",
	} {
		if _, err := c.Cmd("%s", cmd); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
	}
	mb := f.full(t, "INBOX")
	idx := f.read(t, mb, Want{})
	assertSame(t, idx, mb)
	var annotated, expunged int
	for _, r := range mb.Records {
		for _, a := range r.Annotations {
			if a.Entry == "/comment" {
				annotated++
			}
		}
		if r.Expunged() {
			expunged++
		}
	}
	if annotated != 3 || expunged != 1 {
		t.Fatalf("the folder has %d /comment annotations and %d expunged records, want 3 and 1: the test did not set up what it checks", annotated, expunged)
	}
	assertSame(t, f.read(t, f.full(t, "Work"), Want{}), f.full(t, "Work"))

	// A delta: only the records changed since a modseq (and above a UID).
	since := mb.HighestModSeq
	m.Store(t, f.user, "INBOX", "3", "-FLAGS", `\Flagged`)
	m.Deliver(t, f.user, cyruspair.Message("late", "body"))
	mb = f.full(t, "INBOX")
	d := f.read(t, mb, Want{SinceModSeq: since, AfterUID: mb.LastUID})
	var want []csync.Record
	for _, r := range mb.Records {
		if r.ModSeq > since {
			r.Flags = append([]string{}, r.Flags...)
			want = append(want, r)
		}
	}
	if got := asCsync(d.Records); len(want) != 2 || !reflect.DeepEqual(got, want) {
		t.Fatalf("delta since %d:\n read %+v\n want %+v", since, got, want)
	}
	if d.Scanned != len(mb.Records) {
		t.Errorf("scanned %d records of %d", d.Scanned, len(mb.Records))
	}

	// cyr_expire and ipurge rewrite the index (expunged records go).
	m.Tool(t, "cyr_expire", "-X", "0", "-D", "0")
	mb = f.full(t, "INBOX")
	assertSame(t, f.read(t, mb, Want{}), mb)
	for _, r := range mb.Records {
		if r.Expunged() {
			t.Fatalf("cyr_expire -X 0 left expunged uid %d: the index was not rewritten", r.UID)
		}
	}
	out := m.Tool(t, "ipurge", "-f", "-b", "1", f.p.IMAPAdminName(f.user, "Work"))
	work := f.full(t, "Work")
	assertSame(t, f.read(t, work, Want{}), work)
	for _, r := range work.Records {
		if !r.Expunged() {
			t.Fatalf("ipurge -b 1 left uid %d (ipurge said %q)", r.UID, out)
		}
	}
	m.Tool(t, "cyr_expire", "-X", "0", "-D", "0")
	work = f.full(t, "Work")
	assertSame(t, f.read(t, work, Want{}), work)
	t.Logf("INBOX %d records, Work %d records after ipurge", len(mb.Records), len(work.Records))
}

// TestCyrusReaderUnderWriters: while lmtpd delivers, an IMAP client changes flags and
// expunges, and cyr_expire repacks the index (renaming a new file over it), every read
// succeeds and is whole: each header's SYNC_CRC is the CRC of the records
// read with it, so no read mixed two states of the index (a torn record fails its CRC).
func TestCyrusReaderUnderWriters(t *testing.T) {
	f := start(t)
	m := f.p.Master
	m.CreateUser(t, f.user)
	for i := 0; i < 20; i++ {
		m.Deliver(t, f.user, cyruspair.Message(fmt.Sprintf("seed %d", i), "body"))
	}
	mb := f.full(t, "INBOX")
	dir, err := Dir(f.parts[mb.Partition], mb.UniqueID)
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(filepath.Join(dir, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes, repacks atomic.Int64
	wg.Add(3)
	go func() { // lmtpd
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := m.DeliverLMTP([]string{f.user}, cyruspair.Message(fmt.Sprintf("live %d", i), "body")); err != nil {
				t.Errorf("deliver: %v", err)
				return
			}
			writes.Add(1)
		}
	}()
	go func() { // an IMAP client flipping flags on every message
		defer wg.Done()
		c := m.IMAPAs(t, f.user)
		if _, err := c.Cmd("SELECT INBOX"); err != nil {
			t.Errorf("select: %v", err)
			return
		}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			op := []string{"+FLAGS", "-FLAGS"}[i%2]
			if _, err := c.Cmd("STORE 1:* %s (\\Flagged $Busy)", op); err != nil {
				t.Errorf("store: %v", err)
				return
			}
			if i%5 == 4 { // expunged records for cyr_expire to purge
				for _, cmd := range []string{`STORE 1 +FLAGS (\Deleted)`, "EXPUNGE"} {
					if _, err := c.Cmd("%s", cmd); err != nil {
						t.Errorf("%s: %v", cmd, err)
						return
					}
				}
			}
			writes.Add(1)
		}
	}()
	go func() { // cyr_expire: repacks the index (a new cyrus.index renamed over the old)
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if out, err := m.RunTool("cyr_expire", "-X", "0", "-D", "0"); err != nil {
				t.Errorf("cyr_expire: %v\n%s", err, out)
				return
			}
			repacks.Add(1)
		}
	}()
	reads, gaveUp := 0, 0
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		idx, err := Read(dir, Options{Owner: f.user})
		if errors.Is(err, ErrChanged) {
			// cyr_expire, run back to back, replaced the index under six tries of one
			// read: the reader gives up as designed (the executor falls back to GET
			// FULLMAILBOX). What must never happen is a torn read.
			gaveUp++
			continue
		}
		if err != nil {
			t.Fatalf("read %d under writers: %v", reads, err)
		}
		if got := csync.SyncCRC(asCsync(idx.Records)); got != idx.Header.SyncCRC {
			t.Fatalf("read %d: records' SYNC_CRC %d, header's %d: a torn read", reads, got, idx.Header.SyncCRC)
		}
		reads++
	}
	close(stop)
	wg.Wait()
	if writes.Load() < 10 || reads < 10 || repacks.Load() < 3 {
		t.Fatalf("%d writes, %d repacks, %d reads: the writers and the reader did not overlap enough", writes.Load(), repacks.Load(), reads)
	}
	if gaveUp > reads/4 {
		t.Fatalf("the reader gave up (ErrChanged) %d times against %d whole reads: its retries do not follow a repack", gaveUp, reads)
	}
	if after, err := os.Stat(filepath.Join(dir, IndexFile)); err != nil || os.SameFile(before, after) {
		t.Fatalf("cyr_expire never replaced cyrus.index (%v): the reads did not meet a repack", err)
	}
	t.Logf("%d reads, all whole (%d gave up after six replacements), during %d writes and %d cyr_expire runs", reads, gaveUp, writes.Load(), repacks.Load())
	mb = f.full(t, "INBOX")
	assertSame(t, f.read(t, mb, Want{}), mb)
}

// TestCyrusReaderRefusesOtherVersion: a copy of a real index with another minor
// version is refused with ErrVersion, and one with a damaged record with ErrChecksum.
func TestCyrusReaderRefusesOtherVersion(t *testing.T) {
	f := start(t)
	m := f.p.Master
	m.CreateUser(t, f.user)
	m.Deliver(t, f.user, cyruspair.Message("one", "body"))
	mb := f.full(t, "INBOX")
	dir, err := Dir(f.parts[mb.Partition], mb.UniqueID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		off  int
		want error
	}{{11, ErrVersion}, {headerSize + 12, ErrChecksum}} {
		cp := t.TempDir()
		for _, name := range []string{IndexFile, HeaderFile} {
			copyFile(t, dir+"/"+name, cp+"/"+name)
		}
		patch(cp, IndexFile, tc.off, 0x01)
		_, err := Read(cp, Options{})
		if !errors.Is(err, tc.want) {
			t.Fatalf("damaged at %d: %v, want %v", tc.off, err, tc.want)
		}
		if !strings.Contains(err.Error(), cp) {
			t.Errorf("the error does not name the file: %v", err)
		}
	}
}
