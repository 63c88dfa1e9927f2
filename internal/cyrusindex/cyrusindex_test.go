package cyrusindex

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// encodeHeader writes a version 17 index header, as Cyrus does.
func encodeHeader(h Header) []byte {
	b := make([]byte, headerSize)
	be := binary.BigEndian
	be.PutUint32(b[0:], h.Generation)
	be.PutUint32(b[8:], MinorVersion)
	be.PutUint32(b[12:], headerSize)
	be.PutUint32(b[16:], recordSize)
	be.PutUint32(b[20:], h.NumRecords)
	be.PutUint32(b[24:], h.LastAppendDate)
	be.PutUint32(b[28:], h.LastUID)
	be.PutUint32(b[44:], h.UIDValidity)
	be.PutUint32(b[60:], h.Options)
	be.PutUint64(b[68:], h.HighestModSeq)
	be.PutUint32(b[84:], h.Exists)
	be.PutUint32(b[96:], h.HeaderFileCRC)
	be.PutUint32(b[100:], h.SyncCRC)
	be.PutUint32(b[104:], h.RecentUID)
	be.PutUint32(b[120:], h.SyncCRCAnnot)
	be.PutUint64(b[128:], h.CreatedModSeq)
	be.PutUint32(b[156:], crc32.ChecksumIEEE(b[:156]))
	return b
}

// encodeRecord writes a version 17 index record.
func encodeRecord(r Record) []byte {
	b := make([]byte, recordSize)
	be := binary.BigEndian
	be.PutUint32(b[0:], r.UID)
	be.PutUint32(b[4:], r.InternalDate)
	be.PutUint32(b[12:], r.Size)
	be.PutUint32(b[28:], r.LastUpdated)
	be.PutUint32(b[32:], r.SystemFlags|r.InternalFlags)
	for i, w := range r.UserFlags {
		be.PutUint32(b[36+4*i:], w)
	}
	be.PutUint32(b[52:], r.SaveDate)
	copy(b[60:80], r.GUID[:])
	be.PutUint64(b[80:], r.ModSeq)
	be.PutUint64(b[88:], r.ThrID)
	be.PutUint64(b[96:], r.CreatedModSeq)
	be.PutUint32(b[108:], crc32.ChecksumIEEE(b[:108]))
	return b
}

const testHeaderLine = `%(T e N user.fred I 5qb988epx9doxrsagmoc2f7b A %(fred lrswipkxtecdan admin "lrs") U ($Junk NIL "Work item" {3+}` + "\r\n" + `abc))` + "\n"

// writeMailbox writes cyrus.header and cyrus.index for n records into dir; record
// uid i has modseq i+1 and, for odd i, \Seen and user flag slot 0.
func writeMailbox(t testing.TB, dir string, n int) Header {
	t.Helper()
	hb := []byte(headerMagic + testHeaderLine)
	if err := os.WriteFile(filepath.Join(dir, HeaderFile), hb, 0o600); err != nil {
		t.Fatal(err)
	}
	h := Header{NumRecords: uint32(n), LastUID: uint32(n), UIDValidity: 1700000000, Exists: uint32(n),
		HighestModSeq: uint64(n) + 1, HeaderFileCRC: crc32.ChecksumIEEE(hb), SyncCRC: 42, SyncCRCAnnot: 43, CreatedModSeq: 1}
	var buf bytes.Buffer
	buf.Write(encodeHeader(h))
	for i := 1; i <= n; i++ {
		buf.Write(encodeRecord(testRecord(i)))
	}
	if err := os.WriteFile(filepath.Join(dir, IndexFile), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return h
}

func testRecord(i int) Record {
	r := Record{UID: uint32(i), InternalDate: 1700000000 + uint32(i), LastUpdated: 1700000100, Size: 100 + uint32(i),
		ModSeq: uint64(i) + 1, CreatedModSeq: uint64(i) + 1, SaveDate: 1700000000}
	if i%2 == 1 {
		r.SystemFlags = FlagSeen
		r.UserFlags[0] = 1 | 1<<3
	}
	binary.BigEndian.PutUint32(r.GUID[:], uint32(i))
	return r
}

func TestReadGeneratedIndex(t *testing.T) {
	dir := t.TempDir()
	writeMailbox(t, dir, 10)
	idx, err := Read(dir, Options{Want: Want{SinceModSeq: 8, AfterUID: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if idx.Mailbox.UniqueID != "5qb988epx9doxrsagmoc2f7b" || idx.Mailbox.Name != "user.fred" || idx.Mailbox.ACL != "fred\tlrswipkxtecdan\tadmin\tlrs\t" {
		t.Errorf("cyrus.header read as %+v", idx.Mailbox)
	}
	if want := []string{"$Junk", "", "Work item", "abc"}; !slices.Equal(idx.Mailbox.UserFlags, want) {
		t.Errorf("user flags %q, want %q", idx.Mailbox.UserFlags, want)
	}
	if idx.Scanned != 10 {
		t.Errorf("scanned %d records, want 10", idx.Scanned)
	}
	var uids []uint32
	for _, r := range idx.Records {
		uids = append(uids, r.UID)
	}
	if !slices.Equal(uids, []uint32{8, 9, 10}) { // modseq 9, 10, 11
		t.Fatalf("records %v, want uids 8 9 10", uids)
	}
	if got, want := idx.Records[1].Flags, []string{`\Seen`, "$Junk", "abc"}; !slices.Equal(got, want) {
		t.Errorf("uid 9 flags %q, want %q", got, want)
	}
	if got := idx.Records[0].Annotations; len(got) != 2 || got[0].Entry != annotSaveDate || got[1].Value != "9" {
		t.Errorf("uid 8 annotations %+v, want savedate and createdmodseq 9", got)
	}
}

func TestReadRefusesDoubt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(dir string)
		want   error
	}{
		{"version", func(dir string) { patch(dir, IndexFile, 11, 16) }, ErrVersion},
		{"header CRC", func(dir string) { patch(dir, IndexFile, 30, 99) }, ErrChecksum},
		{"record CRC", func(dir string) { patch(dir, IndexFile, headerSize+recordSize*9+12, 7) }, ErrChecksum},
		{"cyrus.header CRC", func(dir string) { patch(dir, HeaderFile, len(headerMagic)+10, 'x') }, ErrChecksum},
		{"truncated", func(dir string) { truncate(dir, IndexFile, headerSize+recordSize*5) }, ErrFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeMailbox(t, dir, 10)
			tc.damage(dir)
			_, err := Read(dir, Options{Want: Want{SinceModSeq: 5, AfterUID: 10}})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			t.Logf("refused: %v (reason %s)", err, Reason(err))
		})
	}
}

func patch(dir, file string, off int, b byte) {
	p := filepath.Join(dir, file)
	data, err := os.ReadFile(p)
	if err != nil {
		panic(err)
	}
	data[off] ^= b
	if err := os.WriteFile(p, data, 0o600); err != nil {
		panic(err)
	}
}

func truncate(dir, file string, n int64) {
	if err := os.Truncate(filepath.Join(dir, file), n); err != nil {
		panic(err)
	}
}

// TestReadWaitsForWriter: a writer's exclusive lock makes Read wait, and fail with
// ErrLocked when it is held past LockWait.
func TestReadWaitsForWriter(t *testing.T) {
	dir := t.TempDir()
	writeMailbox(t, dir, 3)
	release := holdExclusive(t, filepath.Join(dir, IndexFile))
	_, err := Read(dir, Options{LockWait: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("read under a writer's lock: %v, want ErrLocked", err)
	}
	release()
	if _, err := Read(dir, Options{LockWait: time.Second}); err != nil {
		t.Fatalf("read after the writer let go: %v", err)
	}
}

// TestReadFollowsRename: an index renamed over the one being opened is read afresh.
func TestReadFollowsRename(t *testing.T) {
	dir := t.TempDir()
	writeMailbox(t, dir, 3)
	other := t.TempDir()
	writeMailbox(t, other, 5)
	if err := os.Rename(filepath.Join(other, IndexFile), filepath.Join(dir, IndexFile)); err != nil {
		t.Fatal(err)
	}
	idx, err := Read(dir, Options{})
	if err != nil || len(idx.Records) != 5 {
		t.Fatalf("read %v, %v; want 5 records", idx, err)
	}
}

// TestRead100k reads a generated 100,000-message index for the last few changes.
func TestRead100k(t *testing.T) {
	dir := t.TempDir()
	const n = 100_000
	writeMailbox(t, dir, n)
	idx, err := Read(dir, Options{Want: Want{SinceModSeq: n - 2, AfterUID: n}})
	if err != nil {
		t.Fatal(err)
	}
	if idx.Scanned != n || len(idx.Records) != 3 || idx.Records[2].UID != n {
		t.Fatalf("scanned %d, kept %d records", idx.Scanned, len(idx.Records))
	}
	all, err := Read(dir, Options{})
	if err != nil || len(all.Records) != n {
		t.Fatalf("full read: %v records, %v", len(all.Records), err)
	}
	for i, r := range all.Records {
		if r.UID != uint32(i+1) || r.ModSeq != uint64(i+2) {
			t.Fatalf("record %d: uid %d modseq %d", i, r.UID, r.ModSeq)
		}
	}
}

func BenchmarkRead100k(b *testing.B) {
	dir := b.TempDir()
	const n = 100_000
	writeMailbox(b, dir, n)
	for b.Loop() {
		if _, err := Read(dir, Options{Want: Want{SinceModSeq: n, AfterUID: n}}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAnnotationValue(t *testing.T) {
	// As annotate.c make_entry writes it on a 64-bit host.
	var v bytes.Buffer
	v.Write([]byte{0, 0, 0, 5, 0, 0, 0, 0})
	v.WriteString("hello\x00text/plain\x00")
	v.Write(make([]byte, 8))
	binary.Write(&v, binary.BigEndian, uint64(77))
	v.WriteByte(0)
	val, modseq, deleted, err := ParseAnnotationValue(v.Bytes())
	if err != nil || string(val) != "hello" || modseq != 77 || deleted {
		t.Fatalf("got %q %d %v %v", val, modseq, deleted, err)
	}
	uid, entry, userid, ok := ParseAnnotationKey([]byte("12\x00/comment\x00fred\x00"))
	if !ok || uid != 12 || entry != "/comment" || userid != "fred" {
		t.Fatalf("key: %d %q %q %v", uid, entry, userid, ok)
	}
	if _, _, _, ok := ParseAnnotationKey([]byte("12\x00/comment")); ok {
		t.Fatal("a key without a userid part is listed")
	}
}

func ExampleDir() {
	d, _ := Dir("/var/spool/cyrus/mail", "5qb988epx9doxrsagmoc2f7b")
	fmt.Println(d)
	// Output: /var/spool/cyrus/mail/uuid/5/q/5qb988epx9doxrsagmoc2f7b
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
