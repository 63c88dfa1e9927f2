package agent

import (
	"crypto/sha256"
	"crypto/subtle"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// tokenFile is the bearer token, re-read whenever the file changes (size, modification
// time or inode: a Kubernetes Secret update swaps a symlink, an editor rewrites in
// place), so that a rotation needs no restart.
type tokenFile struct {
	path string

	mu    sync.Mutex
	stamp fileStamp
	sum   [sha256.Size]byte
	ok    bool // a non-empty token was read
}

type fileStamp struct {
	size  int64
	mtime time.Time
	ino   uint64
}

func stampOf(fi os.FileInfo) fileStamp {
	s := fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = st.Ino
	}
	return s
}

// refresh re-reads the token when the file changed. An unreadable or empty file leaves
// no valid token: every request is refused rather than any accepted.
func (t *tokenFile) refresh() {
	fi, err := os.Stat(t.path)
	if err != nil {
		t.ok, t.stamp = false, fileStamp{}
		return
	}
	st := stampOf(fi)
	if st == t.stamp && t.ok {
		return
	}
	b, err := os.ReadFile(t.path)
	tok := strings.TrimSpace(string(b))
	t.stamp = st
	if err != nil || tok == "" {
		t.ok = false
		return
	}
	t.sum, t.ok = sha256.Sum256([]byte(tok)), true
}

// check tells whether presented is the token, in constant time (hashes of equal length
// are compared, so neither the token nor its length leaks through timing).
func (t *tokenFile) check(presented string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refresh()
	if !t.ok || presented == "" {
		return false
	}
	p := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(p[:], t.sum[:]) == 1
}

// bearer is the token of an Authorization header ("Bearer <token>"), "" when none.
func bearer(h string) string {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}
