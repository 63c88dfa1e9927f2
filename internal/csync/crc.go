package csync

import (
	"hash/crc32"
	"strconv"
	"strings"
)

// The two SYNC_CRC algorithms of Cyrus 3.6 (csync-protocol.md §3.5), computed from the
// records of a GET FULLMAILBOX reply so that two mailboxes can be compared without
// trusting either server's own figure.

// annotCRCSeed is the starting value of SYNC_CRC_ANNOT.
const annotCRCSeed = 12345678

// thridEntry is the virtual per-message annotation whose value is hex: zero-padded on
// the wire, unpadded in the CRC.
const thridEntry = "/vendor/cmu/cyrus-imapd/thrid"

// SyncCRC computes the basic SYNC_CRC of a mailbox's records.
func SyncCRC(recs []Record) uint32 {
	var crc uint32
	var b []byte
	for i := range recs {
		r := &recs[i]
		if r.Expunged() {
			continue
		}
		b = strconv.AppendUint(b[:0], uint64(r.UID), 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, r.ModSeq, 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(max(r.LastUpdated, 0)), 10)
		b = append(b, " ("...)
		b = strconv.AppendUint(b, uint64(flagCRC(r.Flags)), 10)
		b = append(b, ") "...)
		b = strconv.AppendUint(b, uint64(max(r.InternalDate, 0)), 10)
		b = append(b, ' ')
		b = append(b, strings.ToLower(r.GUID)...)
		crc ^= crc32.ChecksumIEEE(b)
	}
	return crc
}

// flagCRC is the XOR of crc32 over each set flag, lower-cased; \Expunged (and any
// other internal system flag) is not part of it.
func flagCRC(flags []string) uint32 {
	var crc uint32
	for _, f := range flags {
		lf := strings.ToLower(f)
		if strings.HasPrefix(lf, `\`) {
			switch lf {
			case `\deleted`, `\answered`, `\flagged`, `\draft`, `\seen`:
			default:
				continue
			}
		}
		crc ^= crc32.ChecksumIEEE([]byte(lf))
	}
	return crc
}

// SyncCRCAnnot computes SYNC_CRC_ANNOT: per-message annotations (virtual ones included,
// as GET FULLMAILBOX lists them) of non-expunged records; mailbox-level annotations do
// not count.
func SyncCRCAnnot(recs []Record) uint32 {
	crc := uint32(annotCRCSeed)
	var b []byte
	for i := range recs {
		r := &recs[i]
		if r.Expunged() {
			continue
		}
		for _, a := range r.Annotations {
			value := a.Value
			if a.Entry == thridEntry {
				if n, err := strconv.ParseUint(a.Value, 16, 64); err == nil {
					value = strconv.FormatUint(n, 16)
				}
			}
			b = strconv.AppendUint(b[:0], uint64(r.UID), 10)
			b = append(b, ' ')
			b = append(b, a.Entry...)
			b = append(b, ' ')
			b = append(b, a.UserID...)
			b = append(b, ' ')
			b = append(b, value...)
			crc ^= crc32.ChecksumIEEE(b)
		}
	}
	return crc
}
