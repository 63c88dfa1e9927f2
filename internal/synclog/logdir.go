package synclog

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/cyrusrepl/cyrusrepl/internal/atomicfile"
)

// ErrNoLog means the channel has no pending log: nothing to do this cycle.
var ErrNoLog = errors.New("no sync log pending")

// Dir is one sync-log channel directory (<configdir>/sync/<channel>), consumed the way
// `sync_client -r` does: rename log → log-run, process it, unlink log-run on success. A
// log-run left by a crash is processed again first, so a SIGKILL at any point loses no
// entry (re-processing is idempotent). It is the Source of a replicator that reaches
// the master's disk.
type Dir struct {
	Path string

	mu  sync.Mutex
	lag PendingTracker // dates the oldest entry of log and log-run (Backlog)
}

// NewDir returns the channel directory at path.
func NewDir(path string) *Dir { return &Dir{Path: path} }

func (l *Dir) logPath() string { return filepath.Join(l.Path, "log") }
func (l *Dir) runPath() string { return filepath.Join(l.Path, "log-run") }

// PendingPath is the directory where the work taken from this channel's log-runs and
// not yet replicated is kept (see PendingQueue): beside the log, as durable as the log
// itself. Cyrus never touches it (its writers only open "log").
func (l *Dir) PendingPath() string { return filepath.Join(l.Path, "log-pending") }

// Begin opens what to process: a leftover log-run (reprocessed=true) or the current log
// after renaming it to log-run. ErrNoLog when neither exists. The caller reads the file
// (streamed: it may be large after an outage) and closes it.
func (l *Dir) Begin() (f *os.File, reprocessed bool, err error) {
	run := l.runPath()
	if _, err := os.Stat(run); err == nil {
		reprocessed = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("stat %s: %w", run, err)
	} else {
		if err := os.Rename(l.logPath(), run); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, false, ErrNoLog
			}
			return nil, false, fmt.Errorf("rename sync log: %w", err)
		}
		if err := atomicfile.SyncDir(l.Path); err != nil {
			return nil, false, err
		}
	}
	// Read-write: a POSIX write lock needs a descriptor open for writing.
	f, err = os.OpenFile(run, os.O_RDWR, 0)
	if err != nil {
		return nil, reprocessed, fmt.Errorf("open %s: %w", run, err)
	}
	if err := waitForWriters(f); err != nil {
		f.Close()
		return nil, reprocessed, fmt.Errorf("lock %s: %w", run, err)
	}
	return f, reprocessed, nil
}

// waitForWriters waits for any Cyrus process still appending to the renamed log. Cyrus
// writers (sync_log_base) open "log", take a POSIX record lock on the whole file
// (fcntl F_SETLKW, not flock: the two do not exclude each other on Linux), check that
// the inode is still "log", append, fsync and unlock. A writer that locked before our
// rename appends to the inode we now hold as log-run; taking the same lock once waits
// for it, and every later writer sees the inode moved and opens a new "log". This is
// what Cyrus's own consumer (sync_client) does.
func waitForWriters(f *os.File) error {
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
	for {
		err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLKW, &lk)
		if errors.Is(err, syscall.EINTR) {
			continue // a signal (Go's preemption among them) cut the wait short
		}
		if err != nil {
			return err
		}
		break
	}
	lk.Type = syscall.F_UNLCK
	return syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk)
}

// End removes log-run after everything in it was handled (replicated, or handed to the
// durable retry queue).
func (l *Dir) End() error {
	if err := os.Remove(l.runPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove log-run: %w", err)
	}
	return atomicfile.SyncDir(l.Path)
}

// ConsumeOnce runs one cycle: take the log (or a leftover log-run), hand a streaming
// scanner over it to handle, and remove log-run only when handle succeeds and the whole
// file was read. It returns ErrNoLog when there was nothing to do.
func (l *Dir) ConsumeOnce(handle func(s *Scanner, reprocessed bool) error) error {
	f, reprocessed, err := l.Begin()
	if err != nil {
		return err
	}
	defer f.Close()
	s := NewScanner(f)
	if err := handle(s, reprocessed); err != nil {
		return fmt.Errorf("processing sync log (kept as log-run for the next cycle): %w", err)
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("reading sync log (kept as log-run for the next cycle): %w", err)
	}
	if _, _, more := s.Next(); more {
		return errors.New("sync log handler stopped before the end of log-run (kept for the next cycle)")
	}
	return l.End()
}
