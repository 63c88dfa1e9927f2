package cyrusindex

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// File names in a mailbox's directory.
const (
	IndexFile       = "cyrus.index"
	HeaderFile      = "cyrus.header"
	AnnotationsFile = "cyrus.annotations"
)

// Dir returns the directory of the mailbox with this uniqueid on a partition whose
// directory is partitionDir (imapd.conf partition-NAME): Cyrus 3.6 keeps mailboxes by
// uniqueid, as <partition>/uuid/<c0>/<c1>/<uniqueid> (mboxname_id_hash). Mailboxes with
// legacy by-name directories (mailbox_legacy_dirs) are not found there.
func Dir(partitionDir, uniqueid string) (string, error) {
	if len(uniqueid) < 2 || strings.ContainsAny(uniqueid, "/\\.\x00") {
		return "", fmt.Errorf("cyrusindex: uniqueid %q cannot name a directory", uniqueid)
	}
	return filepath.Join(partitionDir, "uuid", uniqueid[:1], uniqueid[1:2], uniqueid), nil
}

// Options shape a Read.
type Options struct {
	Want
	// Owner is the userid the owner token in annotation keys stands for (the
	// mailbox's user, e.g. "fred" for user.fred.Sent); needed only if the mailbox has
	// private annotations of its owner.
	Owner string
	// LockWait bounds the wait for the shared lock (0: DefaultLockWait).
	LockWait time.Duration
}

// DefaultLockWait is how long Read waits for a writer to let go of the index.
const DefaultLockWait = 10 * time.Second

// Retries is how many times Read opens the files again when they were replaced
// (renamed over) between the open and the lock.
const Retries = 5

// Index is what Read returns: the index header, cyrus.header, and the wanted records
// with their flags and annotations, all as of one moment (one shared lock).
type Index struct {
	Header  Header
	Mailbox MailboxHeader
	Delta
}

// Read reads the mailbox in dir: under the shared lock on cyrus.index it reads the
// index header, cyrus.header (whose CRC must be the one the index recorded), the
// records opt wants and their per-message annotations; then it lets go.
func Read(dir string, opt Options) (*Index, error) {
	if opt.LockWait <= 0 {
		opt.LockWait = DefaultLockWait
	}
	path := filepath.Join(dir, IndexFile)
	mu := pathLock(path)
	mu.Lock()
	defer mu.Unlock()
	for attempt := 0; ; attempt++ {
		idx, err := readOnce(dir, path, opt)
		if !errors.Is(err, errReplaced) {
			return idx, err
		}
		if attempt == Retries {
			return nil, fmt.Errorf("%w: %s, %d times", ErrChanged, path, Retries+1)
		}
	}
}

// errReplaced: the path named another file once the lock was held; read again.
var errReplaced = errors.New("replaced")

func readOnce(dir, path string, opt Options) (*Index, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	// Closing the file releases the lock (fcntl locks belong to the process and file).
	defer f.Close()
	if err := lockShared(f, opt.LockWait); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer unlock(f)
	if same, err := samePath(f, path); err != nil || !same {
		if err != nil {
			return nil, err
		}
		return nil, errReplaced
	}
	return readLocked(f, dir, opt)
}

// readLocked reads everything while the lock is held.
func readLocked(f *os.File, dir string, opt Options) (*Index, error) {
	hb := make([]byte, headerSize)
	n, err := io.ReadFull(f, hb)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	h, err := ParseHeader(hb[:n]) // a short file is refused there, saying how short
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	mh, err := readMailboxHeader(filepath.Join(dir, HeaderFile), h.HeaderFileCRC)
	if err != nil {
		return nil, err
	}
	d, err := scanFile(f, h, opt.Want)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	for i := range d.Records {
		d.Records[i].Flags = flagNames(&d.Records[i], mh.UserFlags)
	}
	if err := readAnnotations(filepath.Join(dir, AnnotationsFile), d.Records, opt.Owner); err != nil {
		return nil, err
	}
	return &Index{Header: h, Mailbox: mh, Delta: d}, nil
}

func readMailboxHeader(path string, wantCRC uint32) (MailboxHeader, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return MailboxHeader{}, err
	}
	mh, err := ParseMailboxHeader(b)
	if err != nil {
		return mh, fmt.Errorf("%s: %w", path, err)
	}
	if mh.CRC != wantCRC {
		return mh, fmt.Errorf("%w: %s CRC %08x, the index recorded %08x", ErrChecksum, path, mh.CRC, wantCRC)
	}
	return mh, nil
}

// scanChunk is how many records scanFile reads at a time.
const scanChunk = 1024

// scanFile reads the records after the header in chunks, so that a large index is
// never held in memory at once.
func scanFile(f *os.File, h Header, w Want) (Delta, error) {
	s := scanner{want: w}
	buf := make([]byte, scanChunk*recordSize)
	left := uint64(h.NumRecords)
	off := int64(h.StartOffset)
	for left > 0 {
		n := min(left, scanChunk)
		b := buf[:n*recordSize]
		if _, err := f.ReadAt(b, off); err != nil {
			if errors.Is(err, io.EOF) {
				return s.delta, formatErr("%d records, the file ends within records %d to %d", h.NumRecords, s.delta.Scanned+1, s.delta.Scanned+int(n))
			}
			return s.delta, err
		}
		if err := s.scan(b); err != nil {
			return s.delta, err
		}
		left -= n
		off += int64(len(b))
	}
	return s.delta, s.finish(h)
}

// flagNames lists a record's flags as csync does (sync_print_flags).
func flagNames(r *Record, userFlags []string) []string {
	var fs []string
	for _, f := range []struct {
		set  bool
		name string
	}{
		{r.SystemFlags&FlagDeleted != 0, `\Deleted`},
		{r.SystemFlags&FlagAnswered != 0, `\Answered`},
		{r.SystemFlags&FlagFlagged != 0, `\Flagged`},
		{r.SystemFlags&FlagDraft != 0, `\Draft`},
		{r.Expunged(), `\Expunged`},
		{r.SystemFlags&FlagSeen != 0, `\Seen`},
	} {
		if f.set {
			fs = append(fs, f.name)
		}
	}
	for i, name := range userFlags {
		if name != "" && r.HasUserFlag(i) {
			fs = append(fs, name)
		}
	}
	return fs
}

// pathLocks serialise reads of one index within this process: fcntl locks belong to
// the process, so one reader closing its descriptor would drop another's lock. A
// fixed set, by hash of the path, so that a fleet's worth of mailboxes costs nothing.
var pathLocks [64]sync.Mutex

func pathLock(path string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(path))
	return &pathLocks[h.Sum32()%uint32(len(pathLocks))]
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
