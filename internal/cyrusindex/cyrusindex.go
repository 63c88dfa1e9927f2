// Package cyrusindex reads a Cyrus IMAP 3.6 mailbox's index (cyrus.index, with
// cyrus.header and the per-message annotations of cyrus.annotations) without Cyrus's
// tools: read-only, stdlib only (plus this module's twoskip reader).
//
// The formats, as learned from Cyrus 3.6's imap/mailbox.c, mailbox.h, annotate.c and
// sync_support.c (all integers big endian):
//
//	cyrus.index: a header, then fixed-size records, one per message, in UID order.
//	  header (minor version 17: 160 bytes): generation (4), format (4), minor
//	  version (4), start offset (4), record size (4), num records (4), last
//	  appenddate (4), last uid (4), quota used (8), pop3 last login (4), uidvalidity
//	  (4), deleted/answered/flagged counts (4 each), options (4), leaked cache (4),
//	  highestmodseq (8), deletedmodseq (8), exists (4), first expunged (4), last
//	  repack time (4), CRC32 of cyrus.header (4), sync CRC basic (4), recentuid (4),
//	  recenttime (4), pop3 show after (4), annotation quota used (4), sync CRC annot
//	  (4), unseen (4), createdmodseq (8), changes epoch (4), 4 spares (4 each),
//	  CRC32 of the 156 bytes before (4).
//	  record (version 17: 112 bytes): uid, internaldate, sentdate, size, header size,
//	  gmtime, cache offset, last updated, system flags (low 16 bits) and internal
//	  flags (high 16 bits), 4 words of user flags (slot i is bit i%32 of word i/32),
//	  savedate, cache version (4 each), GUID (20), modseq (8), thrid (8),
//	  createdmodseq (8), cache CRC (4), CRC32 of the 108 bytes before (4).
//	cyrus.header: a magic line, then one dlist kvlist: T type, N name, I uniqueid,
//	  Q quotaroot, A %(userid rights …) ACL, U (user flag names by slot, NIL for a
//	  free slot).
//	cyrus.annotations: a twoskip file; key "<uid>\0<entry>\0<userid>\0" (the owner's
//	  userid stored as "[.OwNeR.]"), value: length (4) + 4 bytes of padding, the
//	  value, NUL, a content type, NUL, 8 bytes, modseq (8), flags (1; bit 0 deleted).
//
// Cyrus rewrites records and the header in place under an exclusive fcntl lock on
// cyrus.index, and replaces the files (repack, header rewrite) by renaming a new one
// over the old. A reader therefore takes the shared fcntl lock Cyrus's own readers take
// on cyrus.index, checks after locking that the path still names the file it holds
// (else reads again), reads everything it needs, and lets go: a writer waits at most
// for one read of the file.
package cyrusindex

import (
	"errors"
	"fmt"
)

// The reasons a read is refused. Every error the reader returns about the files'
// content or locking wraps one of them, so that a caller can say why it did not trust
// the index (and fall back to asking the server).
var (
	// ErrVersion: the index is not minor version 17 (Cyrus 3.6), or not of its layout.
	ErrVersion = errors.New("cyrusindex: unsupported index version")
	// ErrChecksum: a CRC32 did not match (index header, a record, cyrus.header).
	ErrChecksum = errors.New("cyrusindex: checksum mismatch")
	// ErrFormat: the files are not what Cyrus writes (too short, bad magic, UIDs out
	// of order, an unparsable header or annotation).
	ErrFormat = errors.New("cyrusindex: bad format")
	// ErrLocked: the shared lock was not granted in time.
	ErrLocked = errors.New("cyrusindex: index locked")
	// ErrChanged: the files were replaced under the reader every time it tried.
	ErrChanged = errors.New("cyrusindex: index replaced while reading")
)

// Reason names the refusal err wraps, for counters: "version", "checksum", "format",
// "lock", "changed", "missing" (no such file) or "io".
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrVersion):
		return "version"
	case errors.Is(err, ErrChecksum):
		return "checksum"
	case errors.Is(err, ErrFormat):
		return "format"
	case errors.Is(err, ErrLocked):
		return "lock"
	case errors.Is(err, ErrChanged):
		return "changed"
	case isNotExist(err):
		return "missing"
	}
	return "io"
}

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrFormat}, args...)...)
}
