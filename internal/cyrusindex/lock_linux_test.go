//go:build linux

package cyrusindex

import (
	"os"
	"syscall"
	"testing"
)

// fOFDSetLk is Linux's F_OFD_SETLK: a lock owned by the open file, which conflicts with
// this process's own fcntl locks, so a test can play the writer in-process.
const fOFDSetLk = 37

// holdExclusive takes the exclusive lock a Cyrus writer holds on path.
func holdExclusive(t *testing.T, path string) (release func()) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK}
	if err := syscall.FcntlFlock(f.Fd(), fOFDSetLk, &lk); err != nil {
		t.Fatal(err)
	}
	return func() { f.Close() }
}
