package cyrusindex

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// FuzzParseIndex: any bytes as an index (with the header's CRC, and the records' when
// fixCRCs says so, made right so that the fuzzer gets past them) never panic, and every
// record returned was wanted, CRC-checked and in ascending UID order.
func FuzzParseIndex(f *testing.F) {
	var seed bytes.Buffer
	seed.Write(encodeHeader(Header{NumRecords: 3, LastUID: 3, HighestModSeq: 4}))
	for i := 1; i <= 3; i++ {
		seed.Write(encodeRecord(testRecord(i)))
	}
	f.Add(seed.Bytes(), uint64(2), uint32(3), true)
	f.Add(seed.Bytes(), uint64(0), uint32(0), false)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 17}, uint64(0), uint32(0), true)
	f.Fuzz(func(t *testing.T, b []byte, since uint64, after uint32, fixCRCs bool) {
		b = bytes.Clone(b)
		if len(b) >= headerSize {
			binary.BigEndian.PutUint32(b[156:], crc32.ChecksumIEEE(b[:156]))
		}
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		recs := b[h.StartOffset:]
		if fixCRCs {
			for off := 0; off+recordSize <= len(recs); off += recordSize {
				binary.BigEndian.PutUint32(recs[off+108:], crc32.ChecksumIEEE(recs[off:off+108]))
			}
		}
		w := Want{SinceModSeq: since, AfterUID: after}
		d, err := ParseRecords(h, recs, w)
		if err != nil {
			return
		}
		var last uint32
		for _, r := range d.Records {
			if r.UID <= last || !w.wants(r.UID, r.ModSeq) {
				t.Fatalf("record uid %d modseq %d returned (after uid %d, want %+v)", r.UID, r.ModSeq, last, w)
			}
			last = r.UID
		}
		if d.Scanned != int(h.NumRecords) {
			t.Fatalf("scanned %d of %d records", d.Scanned, h.NumRecords)
		}
	})
}

// FuzzParseMailboxHeader: any cyrus.header never panics.
func FuzzParseMailboxHeader(f *testing.F) {
	f.Add([]byte(headerMagic + testHeaderLine))
	f.Add([]byte(headerMagic + "%(I x U (a {2}\nbc NIL))\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := ParseMailboxHeader(b); err == nil && h.UniqueID == "" {
			t.Fatal("a header without a uniqueid accepted")
		}
	})
}

// FuzzParseAnnotation: any per-message annotation key and value never panic.
func FuzzParseAnnotation(f *testing.F) {
	f.Add([]byte("12\x00/comment\x00fred\x00"), []byte("\x00\x00\x00\x02\x00\x00\x00\x00hi\x00text/plain\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07\x00"))
	f.Fuzz(func(t *testing.T, key, val []byte) {
		ParseAnnotationKey(key)
		if v, _, _, err := ParseAnnotationValue(val); err == nil && len(v) > len(val) {
			t.Fatal("value longer than its bytes")
		}
	})
}
