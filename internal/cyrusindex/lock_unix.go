//go:build unix

package cyrusindex

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockShared takes the shared (read) fcntl lock on the whole file, as Cyrus's readers
// do (lib/lock_fcntl.c lock_shared), polling so that a writer holding the exclusive
// lock for longer than wait makes the read fail rather than hang.
func lockShared(f *os.File, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	lk := syscall.Flock_t{Type: syscall.F_RDLCK, Whence: 0, Start: 0, Len: 0}
	for delay := time.Millisecond; ; delay = min(delay*2, 50*time.Millisecond) {
		err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("%w: fcntl F_RDLCK: %w", ErrLocked, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: a writer held it for more than %s", ErrLocked, wait)
		}
		time.Sleep(delay)
	}
}

func unlock(f *os.File) {
	lk := syscall.Flock_t{Type: syscall.F_UNLCK, Whence: 0, Start: 0, Len: 0}
	_ = syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk)
}

// samePath reports whether path still names the open file f (not replaced by a rename).
func samePath(f *os.File, path string) (bool, error) {
	a, err := f.Stat()
	if err != nil {
		return false, err
	}
	b, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(a, b), nil
}
