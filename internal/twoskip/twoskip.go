// Package twoskip reads a Cyrus IMAP 3.6 twoskip database file (such as mailboxes.db)
// without Cyrus's tools and without taking any lock: read-only, stdlib only.
//
// The file format, as learned from Cyrus's lib/cyrusdb_twoskip.c (all integers big
// endian):
//
//	header, 64 bytes: magic (20), version (4), generation (8), num_records (8),
//	  repack_size (8), current_size (8), flags (4), CRC32 of the 60 bytes before (4)
//	record: type (1: '=' dummy, '+' record, '-' delete, '$' commit), level (1),
//	  keylen (2; 0xFFFF: a 64-bit keylen follows), vallen (4; 0xFFFFFFFF: a 64-bit
//	  vallen follows), level+1 next pointers (8 each), CRC32 of the head so far (4),
//	  CRC32 of key+value+padding (4), key, value, zero padding to a multiple of 8.
//
// The dummy record at offset 64 starts the level-0 list, which holds the live records
// in byte order of their keys. Level 0 has two pointers (next[0], next[1]): a writer
// only changes the older one during a transaction, so the committed successor is the
// higher of the two that lies below the header's current_size. A delete record sits
// in that list with one pointer, to the record after the deleted one. Everything at
// or past current_size belongs to a transaction not yet committed and is ignored.
//
// A writer only appends records and rewrites the heads (pointers and head CRC) of
// records already in the file; a checkpoint writes a new file and renames it over the
// old one. So a reader that holds the file open and reads up to the current_size it
// saw sees that commit, or notices a pointer at or past it, or a torn head (CRC): then
// it starts over, reopening the path, a bounded number of times.
package twoskip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"time"
)

// ErrInconsistent is wrapped by every error about the file's content: a bad header or
// CRC, a pointer past the committed size, keys out of order. When returned by the
// path-based functions, the file stayed inconsistent over every retry.
var ErrInconsistent = errors.New("twoskip: inconsistent file")

// Retries is how many times the path-based functions read the file again after
// finding it inconsistent (a writer or a checkpoint may have been caught mid-way).
const Retries = 5

const (
	headerSize   = 64
	dummyOffset  = headerSize
	maxLevel     = 31
	version      = 1
	typeDummy    = '='
	typeRecord   = '+'
	typeDelete   = '-'
	minRecordLen = 24 // the smallest record: 8 bytes of head, one pointer, two CRCs
	blockSize    = 64 << 10
)

var magic = []byte("\xa1\x02\x8b\x0dtwoskip file\x00\x00\x00\x00")

// Header is the file's 64-byte header.
type Header struct {
	Version     uint32
	Generation  uint64
	NumRecords  uint64
	RepackSize  uint64
	CurrentSize uint64 // the committed size: nothing at or past it is read
	Flags       uint32 // bit 0: a transaction is (or was, if a writer died) under way
}

// Action tells a walk what to do with a record, decided on its key alone.
type Action int

const (
	Skip Action = iota // not wanted: its value is checked, not kept
	Take               // hand key and value to the callback
	Stop               // no later key is wanted: end the walk
)

// ParseHeader checks and decodes the header at the start of b.
func ParseHeader(b []byte) (Header, error) { return parseHeader(b, true) }

func parseHeader(b []byte, checkCRC bool) (Header, error) {
	if len(b) < headerSize {
		return Header{}, fmt.Errorf("%w: %d bytes, shorter than the header", ErrInconsistent, len(b))
	}
	if !bytes.Equal(b[:len(magic)], magic) {
		return Header{}, fmt.Errorf("%w: not a twoskip file (bad magic)", ErrInconsistent)
	}
	if want, got := binary.BigEndian.Uint32(b[60:]), crc32.ChecksumIEEE(b[:60]); checkCRC && want != got {
		return Header{}, fmt.Errorf("%w: header CRC %08x, computed %08x", ErrInconsistent, want, got)
	}
	h := Header{
		Version:     binary.BigEndian.Uint32(b[20:]),
		Generation:  binary.BigEndian.Uint64(b[24:]),
		NumRecords:  binary.BigEndian.Uint64(b[32:]),
		RepackSize:  binary.BigEndian.Uint64(b[40:]),
		CurrentSize: binary.BigEndian.Uint64(b[48:]),
		Flags:       binary.BigEndian.Uint32(b[56:]),
	}
	if h.Version > version {
		return Header{}, fmt.Errorf("%w: version %d, only %d is known", ErrInconsistent, h.Version, version)
	}
	if h.CurrentSize < dummyOffset+minRecordLen {
		return Header{}, fmt.Errorf("%w: current size %d leaves no room for the dummy record", ErrInconsistent, h.CurrentSize)
	}
	return h, nil
}

// Walk reads the live records of the file at path in key order. For each, pick decides
// from the key whether to hand it to fn. Key and value passed to fn are only valid
// during the call. When the file proves inconsistent mid-walk, the walk starts over
// (reopening path, up to Retries times); restart, if not nil, is called before every
// attempt after the first, so that the caller drops what it collected. An error from
// fn ends the walk and is returned as is.
func Walk(path string, pick func(key []byte) Action, restart func(), fn func(key, val []byte) error) error {
	return retryInconsistent(path, restart, func() error { return walkPath(path, pick, fn) })
}

// retryInconsistent runs read until it does not fail with ErrInconsistent (a writer
// moved the file under it), up to Retries more times with a growing pause, calling
// restart before every attempt after the first.
func retryInconsistent(path string, restart func(), read func() error) error {
	var last error
	for attempt := 0; attempt <= Retries; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 20 * time.Millisecond)
			if restart != nil {
				restart()
			}
		}
		err := read()
		if err == nil || !errors.Is(err, ErrInconsistent) {
			return err
		}
		last = err
	}
	return fmt.Errorf("%s: read %d times, inconsistent every time: %w", path, Retries+1, last)
}

func walkPath(path string, pick func(key []byte) Action, fn func(key, val []byte) error) error {
	f, err := os.Open(path) // read-only, no lock: writers never wait for us
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return WalkReader(f, st.Size(), pick, fn)
}

// ForEach calls fn for every live record whose key starts with prefix, in key order;
// see Walk for the retries (fn may see the first records again after a restart, which
// restart tells it about).
func ForEach(path string, prefix []byte, restart func(), fn func(key, val []byte) error) error {
	return Walk(path, PrefixPicker(prefix), restart, fn)
}

// Get returns a copy of the value stored under key, and whether there is one.
func Get(path string, key []byte) ([]byte, bool, error) {
	var val []byte
	found := false
	pick := func(k []byte) Action {
		switch c := bytes.Compare(k, key); {
		case c < 0:
			return Skip
		case c == 0:
			return Take
		default:
			return Stop
		}
	}
	err := Walk(path, pick, func() { val, found = nil, false }, func(_, v []byte) error {
		val, found = bytes.Clone(v), true
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return val, found, nil
}

// PrefixPicker takes the keys starting with prefix and stops after them (the keys are
// in byte order: mailboxes.db is opened without Cyrus's mailbox sort).
func PrefixPicker(prefix []byte) func(key []byte) Action {
	return func(k []byte) Action {
		if bytes.HasPrefix(k, prefix) {
			return Take
		}
		if bytes.Compare(k, prefix) < 0 {
			return Skip
		}
		return Stop
	}
}

// WalkReader is Walk over one read of r (size bytes long), with no retry: an
// inconsistency is returned as an error wrapping ErrInconsistent.
func WalkReader(r io.ReaderAt, size int64, pick func(key []byte) Action, fn func(key, val []byte) error) error {
	return walkReader(r, size, true, pick, fn)
}

// walkReader is WalkReader; checkCRC false is for fuzzing only, so that mutated
// pointers and lengths get past the CRCs that would otherwise stop them.
func walkReader(r io.ReaderAt, size int64, checkCRC bool, pick func(key []byte) Action, fn func(key, val []byte) error) error {
	w, dummy, err := open(r, size, checkCRC)
	if err != nil {
		return err
	}
	return w.walkFrom(dummy, pick, fn)
}

// open reads and checks the header and the dummy record that starts the key list.
func open(r io.ReaderAt, size int64, checkCRC bool) (*walker, *record, error) {
	br := &blockReader{r: r, size: size}
	head, err := br.read(0, headerSize)
	if err != nil {
		return nil, nil, err
	}
	h, err := parseHeader(head, checkCRC)
	if err != nil {
		return nil, nil, err
	}
	if h.CurrentSize > uint64(size) {
		return nil, nil, fmt.Errorf("%w: current size %d past the end of the file (%d bytes)", ErrInconsistent, h.CurrentSize, size)
	}
	w := &walker{br: br, end: h.CurrentSize, checkCRC: checkCRC}
	rec, err := w.record(dummyOffset)
	if err != nil {
		return nil, nil, err
	}
	if rec.typ != typeDummy {
		return nil, nil, fmt.Errorf("%w: record at %d is %q, not the dummy", ErrInconsistent, dummyOffset, rec.typ)
	}
	return w, rec, nil
}

// walkFrom walks the key list from the record after rec (the dummy: from the first).
func (w *walker) walkFrom(rec *record, pick func(key []byte) Action, fn func(key, val []byte) error) error {
	var prev []byte
	var err error
	// Keys strictly increase along the list, so no walk can loop; the bound is a
	// second guard.
	for steps := uint64(0); ; steps++ {
		if steps > w.end/minRecordLen {
			return fmt.Errorf("%w: more records on the list than fit in the file", ErrInconsistent)
		}
		next := rec.next0(w.end)
		if next == 0 {
			return nil
		}
		if rec, err = w.record(next); err != nil {
			return err
		}
		if rec.typ == typeDelete {
			// A deleted key: the list goes on at the delete record's single pointer.
			if rec.next[0] == 0 {
				return nil
			}
			if rec, err = w.record(rec.next[0]); err != nil {
				return err
			}
		}
		if rec.typ != typeRecord {
			return fmt.Errorf("%w: record at %d on the key list has type %q", ErrInconsistent, rec.off, rec.typ)
		}
		key, err := w.br.read(rec.keyOff, rec.keyLen)
		if err != nil {
			return err
		}
		if prev != nil && bytes.Compare(prev, key) >= 0 {
			return fmt.Errorf("%w: key at %d out of order", ErrInconsistent, rec.off)
		}
		prev = append(prev[:0], key...)
		if prev == nil {
			prev = []byte{}
		}
		act := pick(prev)
		if act == Stop {
			return nil
		}
		kv, err := w.body(rec)
		if err != nil {
			return err
		}
		if act == Take {
			if err := fn(kv[:rec.keyLen], kv[rec.keyLen:rec.keyLen+rec.valLen]); err != nil {
				return err
			}
		}
	}
}

type record struct {
	off    uint64
	typ    byte
	level  int
	keyOff uint64
	keyLen uint64
	valLen uint64
	bodyN  uint64 // key+value+padding, the bytes the tail CRC covers
	tail   uint32
	next   [maxLevel + 1]uint64
}

// next0 is the committed level-0 successor: of the two pointers, the higher one that
// lies below end (a pointer at or past end belongs to an uncommitted transaction).
func (r *record) next0(end uint64) uint64 {
	a, b := r.next[0], r.next[1]
	if r.level == 0 { // a delete record (or a broken one): a single pointer
		return a
	}
	switch {
	case a >= end:
		return b
	case b >= end:
		return a
	case a > b:
		return a
	default:
		return b
	}
}

type walker struct {
	br       *blockReader
	end      uint64
	checkCRC bool
}

// record reads and checks the head of the record at off.
func (w *walker) record(off uint64) (*record, error) {
	if off < dummyOffset || off%8 != 0 || off > w.end-minRecordLen || w.end < minRecordLen {
		return nil, fmt.Errorf("%w: pointer to %d outside the committed records (%d bytes)", ErrInconsistent, off, w.end)
	}
	b, err := w.br.read(off, 8)
	if err != nil {
		return nil, err
	}
	r := &record{off: off, typ: b[0], level: int(b[1])}
	r.keyLen = uint64(binary.BigEndian.Uint16(b[2:]))
	r.valLen = uint64(binary.BigEndian.Uint32(b[4:]))
	if r.level > maxLevel {
		return nil, fmt.Errorf("%w: record at %d has level %d", ErrInconsistent, off, r.level)
	}
	headLen := uint64(8)
	if r.keyLen == 0xFFFF {
		headLen += 8
	}
	if r.valLen == 0xFFFFFFFF {
		headLen += 8
	}
	headLen += 8*uint64(r.level+1) + 8
	if headLen > w.end-off {
		return nil, fmt.Errorf("%w: record head at %d runs past the committed size", ErrInconsistent, off)
	}
	h, err := w.br.read(off, headLen)
	if err != nil {
		return nil, err
	}
	p := 8
	if r.keyLen == 0xFFFF {
		r.keyLen = binary.BigEndian.Uint64(h[p:])
		p += 8
	}
	if r.valLen == 0xFFFFFFFF {
		r.valLen = binary.BigEndian.Uint64(h[p:])
		p += 8
	}
	for i := 0; i <= r.level; i++ {
		r.next[i] = binary.BigEndian.Uint64(h[p:])
		p += 8
	}
	if want, got := binary.BigEndian.Uint32(h[p:]), crc32.ChecksumIEEE(h[:p]); w.checkCRC && want != got {
		return nil, fmt.Errorf("%w: record at %d: head CRC %08x, computed %08x", ErrInconsistent, off, want, got)
	}
	r.tail = binary.BigEndian.Uint32(h[p+4:])
	r.keyOff = off + headLen
	room := w.end - r.keyOff
	if r.keyLen > room || r.valLen > room-r.keyLen {
		return nil, fmt.Errorf("%w: record at %d runs past the committed size", ErrInconsistent, off)
	}
	r.bodyN = (r.keyLen + r.valLen + 7) &^ 7
	if r.bodyN > room {
		return nil, fmt.Errorf("%w: record at %d runs past the committed size", ErrInconsistent, off)
	}
	return r, nil
}

// body reads key+value+padding and checks the tail CRC.
func (w *walker) body(r *record) ([]byte, error) {
	b, err := w.br.read(r.keyOff, r.bodyN)
	if err != nil {
		return nil, err
	}
	if got := crc32.ChecksumIEEE(b); w.checkCRC && got != r.tail {
		return nil, fmt.Errorf("%w: record at %d: tail CRC %08x, computed %08x", ErrInconsistent, r.off, r.tail, got)
	}
	return b, nil
}

// blockReader reads through one cached block: after a checkpoint the records lie in
// key order, so a walk reads the file mostly front to back, a block at a time. Only
// the block (and one record larger than it, while it is looked at) is held.
type blockReader struct {
	r     io.ReaderAt
	size  int64
	block []byte
	at    uint64
	big   []byte
}

// read returns n bytes at off, valid until the next call.
func (b *blockReader) read(off, n uint64) ([]byte, error) {
	if off > uint64(b.size) || n > uint64(b.size)-off {
		return nil, fmt.Errorf("%w: %d bytes at %d are past the end of the file (%d bytes)", ErrInconsistent, n, off, b.size)
	}
	if off >= b.at && off+n <= b.at+uint64(len(b.block)) {
		return b.block[off-b.at : off-b.at+n], nil
	}
	if n > blockSize {
		b.big = b.big[:0]
		b.big = append(b.big, make([]byte, n)...)
		if err := b.readAt(b.big, off); err != nil {
			return nil, err
		}
		return b.big, nil
	}
	if b.block == nil {
		b.block = make([]byte, min(blockSize, b.size))
	}
	start := off &^ (8<<10 - 1) // start on an 8 KiB boundary, a little before off
	if off+n-start > blockSize {
		start = off
	}
	m := min(uint64(blockSize), uint64(b.size)-start)
	b.block = b.block[:m]
	b.at = start
	if err := b.readAt(b.block, start); err != nil {
		b.block = b.block[:0]
		return nil, err
	}
	return b.block[off-start : off-start+n], nil
}

func (b *blockReader) readAt(p []byte, off uint64) error {
	_, err := b.r.ReadAt(p, int64(off))
	if errors.Is(err, io.EOF) {
		// The file shrank under us (it is only ever replaced, but say so clearly).
		return fmt.Errorf("%w: file ended before %d: %v", ErrInconsistent, off+uint64(len(p)), err)
	}
	return err
}
