package cyrusindex

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"strconv"

	"github.com/cyrusrepl/cyrusrepl/internal/twoskip"
)

// ownerToken stands for the mailbox owner's userid in annotation keys.
const ownerToken = "[.OwNeR.]"

// The virtual per-message annotations Cyrus lists from the index record.
const (
	annotThrID         = "/vendor/cmu/cyrus-imapd/thrid"
	annotSaveDate      = "/vendor/cmu/cyrus-imapd/savedate"
	annotCreatedModSeq = "/vendor/cmu/cyrus-imapd/createdmodseq"
)

// virtualAnnotations are the annotations csync lists from the record itself, in
// Cyrus's order (sync_support.c encode_annotations).
func virtualAnnotations(r *Record) []Annotation {
	var as []Annotation
	if r.ThrID != 0 {
		as = append(as, Annotation{Entry: annotThrID, Value: fmt.Sprintf("%016x", r.ThrID)})
	}
	if r.SaveDate != 0 {
		as = append(as, Annotation{Entry: annotSaveDate, Value: strconv.FormatUint(uint64(r.SaveDate), 10)})
	}
	if r.CreatedModSeq != 0 {
		as = append(as, Annotation{Entry: annotCreatedModSeq, Value: strconv.FormatUint(r.CreatedModSeq, 10)})
	}
	return as
}

// ParseAnnotationKey splits a per-message key "<uid>\0<entry>\0<userid>\0". ok is false
// for keys Cyrus's own listing skips (no userid part) or that are not per-message.
func ParseAnnotationKey(key []byte) (uid uint32, entry, userid string, ok bool) {
	parts := bytes.SplitN(key, []byte{0}, 3)
	if len(parts) < 3 {
		return 0, "", "", false
	}
	n, err := strconv.ParseUint(string(parts[0]), 10, 32)
	if err != nil || n == 0 {
		return 0, "", "", false
	}
	return uint32(n), string(parts[1]), string(bytes.TrimSuffix(parts[2], []byte{0})), true
}

// ParseAnnotationValue decodes an annotation value: the value, its modseq, and
// whether it is deleted (flagged so, or empty: Cyrus lists neither).
func ParseAnnotationValue(b []byte) (value []byte, modseq uint64, deleted bool, err error) {
	// The length is a host "unsigned long" holding htonl(len): on the 64-bit hosts
	// Debian builds for, 4 bytes of length then 4 bytes of padding.
	const lenField = 8
	if len(b) < lenField {
		return nil, 0, false, formatErr("annotation value of %d bytes", len(b))
	}
	n := uint64(binary.BigEndian.Uint32(b))
	rest := b[lenField:]
	if uint64(len(rest)) < n+1 {
		return nil, 0, false, formatErr("annotation value says %d bytes, has %d", n, len(rest))
	}
	value, rest = rest[:n], rest[n+1:]
	// A content type (NUL-terminated) and 8 bytes of modifiedsince follow when
	// anything does; then the modseq and the flags.
	if len(rest) > 0 {
		i := bytes.IndexByte(rest, 0)
		if i < 0 || len(rest) < i+1+lenField {
			return nil, 0, false, formatErr("annotation value: truncated metadata")
		}
		rest = rest[i+1+lenField:]
	}
	if len(rest) >= 8 {
		modseq = binary.BigEndian.Uint64(rest)
		rest = rest[8:]
	}
	if len(rest) >= 1 && rest[0]&1 != 0 {
		deleted = true
	}
	return value, modseq, deleted || len(value) == 0, nil
}

// readAnnotations fills in the database annotations of recs (sorted by UID) from the
// twoskip file at path; a missing file holds none. owner replaces the owner token.
func readAnnotations(path string, recs []Record, owner string) error {
	if len(recs) == 0 {
		return nil
	}
	byUID := make(map[uint32]int, len(recs))
	for i := range recs {
		byUID[recs[i].UID] = i
	}
	found := map[int][]Annotation{}
	pick := func(key []byte) twoskip.Action {
		if uid, _, _, ok := ParseAnnotationKey(key); ok {
			if _, want := byUID[uid]; want {
				return twoskip.Take
			}
		}
		return twoskip.Skip
	}
	collect := func(key, val []byte) error {
		uid, entry, userid, _ := ParseAnnotationKey(key)
		v, modseq, deleted, err := ParseAnnotationValue(val)
		if err != nil {
			return fmt.Errorf("%s uid %d %s: %w", path, uid, entry, err)
		}
		if deleted {
			return nil
		}
		if userid == ownerToken {
			if owner == "" {
				return formatErr("%s uid %d %s: an owner's annotation, and no owner given", path, uid, entry)
			}
			userid = owner
		}
		i := byUID[uid]
		found[i] = append(found[i], Annotation{Entry: entry, UserID: userid, ModSeq: modseq, Value: string(v)})
		return nil
	}
	err := twoskip.Walk(path, pick, func() { clear(found) }, collect)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if errors.Is(err, twoskip.ErrInconsistent) {
		err = fmt.Errorf("%w: %w", ErrChecksum, err)
	}
	if err != nil {
		return fmt.Errorf("per-message annotations: %w", err)
	}
	for i := range recs {
		recs[i].Annotations = append(found[i], virtualAnnotations(&recs[i])...)
	}
	return nil
}
