// The record of the seeding pass: the first full pass over every master user that fills
// a new or empty replica before rolling replication begins. It records when the pass
// began, each user done (so a pass cut by a restart resumes where it stopped), and when
// it completed (so it never runs again on this state).
//
// Files, under <state-dir>/seed/:
//
//	seed.json  the record (begun, completed or skipped, why), replaced atomically
//	done       one JSON string per line, a user the pass has done; appended and fsynced
//	           per user, removed once the pass completed. A torn last line (a crash
//	           mid-append) is ignored: that user is done again, which is harmless.
package state

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/atomicfile"
)

// SeedRecord is what seed.json holds.
type SeedRecord struct {
	// Started is when the pass began (kept across restarts).
	Started time.Time `json:"started"`
	// Reason says why the pass runs (or, with Skipped, why it was not needed).
	Reason string `json:"reason"`
	// Completed is when the pass ended (or was found not needed); nil while it runs.
	Completed *time.Time `json:"completed,omitempty"`
	// Skipped: no pass was needed.
	Skipped bool `json:"skipped,omitempty"`
	// Users and Failed: the master users of the pass, and those that failed (handed to
	// the retry queue). Set on completion.
	Users  int `json:"users,omitempty"`
	Failed int `json:"failed,omitempty"`
}

// Seed is the seed record of one state directory. MarkDone is safe for concurrent use.
type Seed struct {
	dir string

	mu   sync.Mutex
	rec  *SeedRecord // nil: no pass recorded
	done map[string]bool
	f    *os.File // the done file, open for appending while the pass runs
}

// OpenSeed reads the seed record of stateDir (none yet is not an error).
func OpenSeed(stateDir string) (*Seed, error) {
	s := &Seed{dir: filepath.Join(stateDir, "seed"), done: map[string]bool{}}
	b, err := os.ReadFile(s.path("seed.json"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("read seed record: %w", err)
	}
	var r SeedRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("seed record %s is corrupt (remove it to seed again): %w", s.path("seed.json"), err)
	}
	s.rec = &r
	if r.Completed == nil {
		if err := s.readDone(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Seed) path(name string) string { return filepath.Join(s.dir, name) }

// readDone loads the users done; a line that does not parse (the torn last line of a
// crash) is skipped.
func (s *Seed) readDone() error {
	f, err := os.Open(s.path("done"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read seed progress: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		var u string
		if json.Unmarshal(sc.Bytes(), &u) == nil && u != "" {
			s.done[u] = true
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read seed progress: %w", err)
	}
	return nil
}

// Record returns the record (nil: no pass was ever begun on this state).
func (s *Seed) Record() *SeedRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rec == nil {
		return nil
	}
	r := *s.rec
	return &r
}

// Begin records that a pass begins at now for reason, unless one was begun already
// (then the pass resumes, and its first start and reason are kept).
func (s *Seed) Begin(now time.Time, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rec != nil {
		return nil
	}
	r := SeedRecord{Started: now.UTC().Truncate(time.Second), Reason: reason}
	if err := s.write(r); err != nil {
		return err
	}
	s.rec = &r
	return nil
}

// Skip records that no pass is needed, for reason.
func (s *Seed) Skip(now time.Time, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := now.UTC().Truncate(time.Second)
	r := SeedRecord{Started: t, Completed: &t, Skipped: true, Reason: reason}
	if err := s.write(r); err != nil {
		return err
	}
	s.rec = &r
	return nil
}

// Done reports whether the running pass has done user already.
func (s *Seed) Done(user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done[user]
}

// MarkDone records, durably (fsynced) before it returns, that the pass has done user.
func (s *Seed) MarkDone(user string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done[user] {
		return nil
	}
	if s.f == nil {
		f, err := os.OpenFile(s.path("done"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("seed progress: %w", err)
		}
		s.f = f
		if err := atomicfile.SyncDir(s.dir); err != nil { // the new file's name survives a crash
			return fmt.Errorf("seed progress: %w", err)
		}
	}
	line, _ := json.Marshal(user) // a string: cannot fail
	if _, err := s.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("seed progress: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("seed progress: fsync: %w", err)
	}
	s.done[user] = true
	return nil
}

// Complete records that the pass ended at now over users, failed of them failed, and
// drops the list of users done (no longer needed).
func (s *Seed) Complete(now time.Time, users, failed int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rec == nil {
		return errors.New("seed record: Complete without Begin")
	}
	r := *s.rec
	t := now.UTC().Truncate(time.Second)
	r.Completed, r.Users, r.Failed = &t, users, failed
	if err := s.write(r); err != nil {
		return err
	}
	s.rec = &r
	s.closeDone()
	_ = os.Remove(s.path("done")) // the record says complete: a leftover list is ignored
	s.done = map[string]bool{}
	return nil
}

// Close releases the done file.
func (s *Seed) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeDone()
}

func (s *Seed) closeDone() {
	if s.f != nil {
		_ = s.f.Close()
		s.f = nil
	}
}

// write replaces seed.json atomically (temporary file, fsync, rename, fsync of the
// directory).
func (s *Seed) write(r SeedRecord) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("seed record: %w", err)
	}
	b, _ := json.Marshal(r) // plain fields: cannot fail
	if err := atomicfile.WriteFile(s.path("seed.json"), b, 0o600); err != nil {
		return fmt.Errorf("seed record: %w", err)
	}
	return nil
}
