package replication

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ErrNoLog means the channel has no pending log: nothing to do this cycle.
var ErrNoLog = errors.New("no sync log pending")

// LogDir is one sync-log channel directory (<configdir>/sync/<channel>), consumed the way
// `sync_client -r` does: rename log → log-run, process it, unlink log-run on success. A
// log-run left by a crash is processed again first, so a SIGKILL at any point loses no
// entry (re-processing is idempotent).
type LogDir struct{ Dir string }

func (l LogDir) logPath() string { return filepath.Join(l.Dir, "log") }
func (l LogDir) runPath() string { return filepath.Join(l.Dir, "log-run") }

// Begin returns the content to process: a leftover log-run (reprocessed=true) or the
// current log after renaming it to log-run. ErrNoLog when neither exists.
func (l LogDir) Begin() (data []byte, reprocessed bool, err error) {
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
		if err := syncDir(l.Dir); err != nil {
			return nil, false, err
		}
	}
	f, err := os.Open(run)
	if err != nil {
		return nil, reprocessed, fmt.Errorf("open %s: %w", run, err)
	}
	defer f.Close()
	// A writer that opened "log" before the rename holds the flock while it writes and
	// then notices the inode moved; taking the lock once waits for it to finish.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return nil, reprocessed, fmt.Errorf("lock %s: %w", run, err)
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	data, err = os.ReadFile(run)
	if err != nil {
		return nil, reprocessed, fmt.Errorf("read %s: %w", run, err)
	}
	return data, reprocessed, nil
}

// End removes log-run after everything in it was handled (replicated, or handed to the
// durable retry queue).
func (l LogDir) End() error {
	if err := os.Remove(l.runPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove log-run: %w", err)
	}
	return syncDir(l.Dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// writeFileAtomic writes data to path through a temporary file, fsync and rename, so a
// reader sees the old or the new content, never a torn one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temp for %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return syncDir(dir)
}

// WriteFileAtomic is writeFileAtomic for other packages (reports).
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return writeFileAtomic(path, data, perm)
}

// ConsumeOnce runs one cycle: take the log (or a leftover log-run), parse it, hand the
// entries and malformed lines to handle, and remove log-run only when handle succeeds.
// It returns ErrNoLog when there was nothing to do.
func (l LogDir) ConsumeOnce(handle func(entries []LogEntry, bad []BadLine, reprocessed bool) error) error {
	data, reprocessed, err := l.Begin()
	if err != nil {
		return err
	}
	entries, bad := ParseLog(data)
	if err := handle(entries, bad, reprocessed); err != nil {
		return fmt.Errorf("processing sync log (kept as log-run for the next cycle): %w", err)
	}
	return l.End()
}
