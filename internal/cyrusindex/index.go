package cyrusindex

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
)

// MinorVersion is the only index version read: the one Cyrus 3.6 writes.
const MinorVersion = 17

const (
	headerSize = 160 // version 17
	recordSize = 112 // version 17
	// maxUserFlags is Cyrus's MAX_USER_FLAGS: 4 words of flag bits per record.
	maxUserFlags = 128
)

// Header is the index header (cyrus.index's first 160 bytes).
type Header struct {
	Generation     uint32
	Format         uint32
	MinorVersion   uint32
	StartOffset    uint32
	RecordSize     uint32
	NumRecords     uint32
	LastAppendDate uint32
	LastUID        uint32
	QuotaUsed      uint64
	POP3LastLogin  uint32
	UIDValidity    uint32
	Options        uint32 // OPT_* bits, with POP3_NEW_UIDL set when exists is 0, as Cyrus reads it
	HighestModSeq  uint64
	DeletedModSeq  uint64
	Exists         uint32
	FirstExpunged  uint32
	LastRepackTime uint32
	HeaderFileCRC  uint32 // CRC32 of cyrus.header as this index last wrote it
	SyncCRC        uint32 // SYNC_CRC (basic) of the non-expunged records
	RecentUID      uint32
	RecentTime     uint32
	POP3ShowAfter  uint32
	SyncCRCAnnot   uint32
	Unseen         uint32
	CreatedModSeq  uint64
	ChangesEpoch   uint32
}

// Mailbox option bits (OPT_*) that travel in csync's OPTIONS.
const (
	OptPOP3NewUIDL = 1 << 0
	OptSharedSeen  = 1 << 2
	OptDupDeliver  = 1 << 3
	OptHasAlarms   = 1 << 4
)

// SyncOptions renders the options as csync's OPTIONS letters (P, S, D, A).
func (h *Header) SyncOptions() string {
	s := ""
	for _, o := range []struct {
		bit    uint32
		letter string
	}{{OptPOP3NewUIDL, "P"}, {OptSharedSeen, "S"}, {OptDupDeliver, "D"}, {OptHasAlarms, "A"}} {
		if h.Options&o.bit != 0 {
			s += o.letter
		}
	}
	return s
}

// ParseHeader checks and decodes an index header: the version must be 17, the CRC
// must match, the record layout must be version 17's.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < 12 {
		return Header{}, formatErr("index of %d bytes has no version", len(b))
	}
	be := binary.BigEndian
	h := Header{Generation: be.Uint32(b[0:]), Format: be.Uint32(b[4:]), MinorVersion: be.Uint32(b[8:])}
	if h.MinorVersion != MinorVersion {
		return h, fmt.Errorf("%w: minor version %d, only %d (Cyrus 3.6) is read", ErrVersion, h.MinorVersion, MinorVersion)
	}
	if len(b) < headerSize {
		return h, formatErr("index of %d bytes is shorter than its %d-byte header", len(b), headerSize)
	}
	if want, got := be.Uint32(b[headerSize-4:]), crc32.ChecksumIEEE(b[:headerSize-4]); want != got {
		return h, fmt.Errorf("%w: index header CRC %08x, computed %08x", ErrChecksum, want, got)
	}
	h.StartOffset = be.Uint32(b[12:])
	h.RecordSize = be.Uint32(b[16:])
	h.NumRecords = be.Uint32(b[20:])
	h.LastAppendDate = be.Uint32(b[24:])
	h.LastUID = be.Uint32(b[28:])
	h.QuotaUsed = be.Uint64(b[32:])
	h.POP3LastLogin = be.Uint32(b[40:])
	h.UIDValidity = be.Uint32(b[44:])
	h.Options = be.Uint32(b[60:])
	h.HighestModSeq = be.Uint64(b[68:])
	h.DeletedModSeq = be.Uint64(b[76:])
	h.Exists = be.Uint32(b[84:])
	h.FirstExpunged = be.Uint32(b[88:])
	h.LastRepackTime = be.Uint32(b[92:])
	h.HeaderFileCRC = be.Uint32(b[96:])
	h.SyncCRC = be.Uint32(b[100:])
	h.RecentUID = be.Uint32(b[104:])
	h.RecentTime = be.Uint32(b[108:])
	h.POP3ShowAfter = be.Uint32(b[112:])
	h.SyncCRCAnnot = be.Uint32(b[120:])
	h.Unseen = be.Uint32(b[124:])
	h.CreatedModSeq = be.Uint64(b[128:])
	h.ChangesEpoch = be.Uint32(b[136:])
	if h.StartOffset != headerSize || h.RecordSize != recordSize {
		return h, fmt.Errorf("%w: start offset %d and record size %d, version 17 has %d and %d",
			ErrVersion, h.StartOffset, h.RecordSize, headerSize, recordSize)
	}
	// As Cyrus reads it (mailbox_buf_to_index_header).
	if h.Exists == 0 {
		h.Options |= OptPOP3NewUIDL
	}
	if h.HighestModSeq == 0 {
		h.HighestModSeq = 1
	}
	return h, nil
}

// System and internal flag bits of a record.
const (
	FlagAnswered = 1 << 0
	FlagFlagged  = 1 << 1
	FlagDeleted  = 1 << 2
	FlagDraft    = 1 << 3
	FlagSeen     = 1 << 4

	FlagInternalUnlinked = 1 << 30
	FlagInternalExpunged = 1 << 31
)

// Record is one index record.
type Record struct {
	UID           uint32
	InternalDate  uint32
	SentDate      uint32
	Size          uint32
	HeaderSize    uint32
	GMTime        uint32
	LastUpdated   uint32
	SystemFlags   uint32 // FlagAnswered … FlagSeen (the low 16 bits)
	InternalFlags uint32 // FlagInternal* (the high 16 bits)
	UserFlags     [maxUserFlags / 32]uint32
	SaveDate      uint32
	GUID          [20]byte
	ModSeq        uint64
	ThrID         uint64 // conversation id (cid); 0 without conversations
	CreatedModSeq uint64
	// Flags are the record's flags as csync lists them: \Deleted \Answered \Flagged
	// \Draft \Expunged \Seen, then the set user flags in slot order (set by Read,
	// which knows the flag names).
	Flags []string
	// Annotations are the per-message annotations as csync lists them: the
	// annotation database's, then the virtual thrid, savedate and createdmodseq (set
	// by Read).
	Annotations []Annotation
}

// Annotation is one per-message annotation.
type Annotation struct {
	Entry  string
	UserID string // "" = shared
	ModSeq uint64
	Value  string
}

// GUIDHex is the GUID as csync writes it (40 lower-case hex digits).
func (r *Record) GUIDHex() string { return hex.EncodeToString(r.GUID[:]) }

// Expunged reports the internal expunged flag.
func (r *Record) Expunged() bool { return r.InternalFlags&FlagInternalExpunged != 0 }

// HasUserFlag reports whether user flag slot i is set.
func (r *Record) HasUserFlag(i int) bool {
	return i >= 0 && i < maxUserFlags && r.UserFlags[i/32]&(1<<(i%32)) != 0
}

// recordKey reads a record's UID and modseq only: enough to decide whether it is wanted.
func recordKey(b []byte) (uid uint32, modseq uint64) {
	return binary.BigEndian.Uint32(b[0:]), binary.BigEndian.Uint64(b[80:])
}

// ParseRecord checks a version 17 record's CRC and decodes it.
func ParseRecord(b []byte) (Record, error) {
	if len(b) < recordSize {
		return Record{}, formatErr("record of %d bytes, want %d", len(b), recordSize)
	}
	be := binary.BigEndian
	if want, got := be.Uint32(b[108:]), crc32.ChecksumIEEE(b[:108]); want != got {
		return Record{}, fmt.Errorf("%w: record (uid %d) CRC %08x, computed %08x", ErrChecksum, be.Uint32(b), want, got)
	}
	flags := be.Uint32(b[32:])
	r := Record{
		UID: be.Uint32(b[0:]), InternalDate: be.Uint32(b[4:]), SentDate: be.Uint32(b[8:]),
		Size: be.Uint32(b[12:]), HeaderSize: be.Uint32(b[16:]), GMTime: be.Uint32(b[20:]),
		LastUpdated: be.Uint32(b[28:]), SystemFlags: flags & 0xffff, InternalFlags: flags &^ 0xffff,
		SaveDate: be.Uint32(b[52:]), ModSeq: be.Uint64(b[80:]), ThrID: be.Uint64(b[88:]),
		CreatedModSeq: be.Uint64(b[96:]),
	}
	for i := range r.UserFlags {
		r.UserFlags[i] = be.Uint32(b[36+4*i:])
	}
	copy(r.GUID[:], b[60:80])
	return r, nil
}

// Delta is what ParseRecords keeps of an index: the wanted records and how many it
// looked at.
type Delta struct {
	Records []Record
	Scanned int // records whose UID and modseq were looked at
}

// Want selects records: those with a modseq above SinceModSeq, or a UID above AfterUID.
// The zero Want selects every record.
type Want struct {
	SinceModSeq uint64
	AfterUID    uint32
}

func (w Want) wants(uid uint32, modseq uint64) bool {
	return modseq > w.SinceModSeq || uid > w.AfterUID || (w.SinceModSeq == 0 && w.AfterUID == 0)
}

// ParseRecords scans the records that follow an index header h in recs (the bytes from
// StartOffset on): only the UID and modseq of each are read, and only the wanted ones
// are CRC-checked and decoded. UIDs must ascend; a record with UID 0 (damaged, Cyrus
// skips it) is skipped.
func ParseRecords(h Header, recs []byte, w Want) (Delta, error) {
	need := uint64(h.NumRecords) * recordSize
	if uint64(len(recs)) < need {
		return Delta{}, formatErr("%d records need %d bytes, the file has %d after the header", h.NumRecords, need, len(recs))
	}
	s := scanner{want: w}
	if err := s.scan(recs[:need]); err != nil {
		return s.delta, err
	}
	return s.delta, s.finish(h)
}

// scanner is ParseRecords over consecutive chunks of whole records.
type scanner struct {
	want  Want
	last  uint32
	delta Delta
}

func (s *scanner) scan(b []byte) error {
	for off := 0; off+recordSize <= len(b); off += recordSize {
		rb := b[off : off+recordSize]
		uid, modseq := recordKey(rb)
		s.delta.Scanned++
		if uid == 0 {
			continue
		}
		if uid <= s.last {
			return formatErr("record %d: uid %d after uid %d", s.delta.Scanned, uid, s.last)
		}
		s.last = uid
		if !s.want.wants(uid, modseq) {
			continue
		}
		r, err := ParseRecord(rb)
		if err != nil {
			return err
		}
		s.delta.Records = append(s.delta.Records, r)
	}
	return nil
}

func (s *scanner) finish(h Header) error {
	if s.last > h.LastUID {
		return formatErr("record uid %d is above the header's last_uid %d", s.last, h.LastUID)
	}
	return nil
}
