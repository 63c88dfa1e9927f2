package synclog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// AppendLine appends one entry to the channel directory's log the way Cyrus's
// sync_log_base does: open O_APPEND, take a POSIX record lock (fcntl) on the whole file,
// check that the inode is still "log" (else a consumer renamed it: open again), one
// write, fsync, unlock. Tests and tools use it to write what Cyrus would.
func AppendLine(dir, line string) error {
	path := filepath.Join(dir, "log")
	for range 64 {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return fmt.Errorf("open sync log: %w", err)
		}
		done, err := appendLocked(f, path, line)
		f.Close() // releases the record lock
		if done || err != nil {
			return err
		}
	}
	return errors.New("append to sync log: the log kept moving")
}

// appendLocked writes line to f under its record lock if f is still the log at path
// (done false: it was renamed meanwhile).
func appendLocked(f *os.File, path, line string) (done bool, err error) {
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
	for {
		err = syscall.FcntlFlock(f.Fd(), syscall.F_SETLKW, &lk)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		return false, fmt.Errorf("lock sync log: %w", err)
	}
	fst, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat sync log: %w", err)
	}
	if st, err := os.Stat(path); err != nil || !os.SameFile(fst, st) {
		return false, nil
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		return false, fmt.Errorf("append to sync log: %w", err)
	}
	if err := f.Sync(); err != nil {
		return false, fmt.Errorf("fsync sync log: %w", err)
	}
	return true, nil
}
