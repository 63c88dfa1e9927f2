package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/atomicfile"
	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
	"github.com/cyrusrepl/cyrusrepl/internal/plan"
)

// Ledger is the replicator's own record of the uniqueids it has seen live on the
// master, one small JSON file per user under <state-dir>/ledger/, each written
// atomically (temp file, fsync, rename, fsync dir) so it survives SIGKILL and restarts.
// It is the weakest evidence: used only when mailboxes.db is not readable, and only
// together with a master lookup by uniqueid that finds nothing. Writers that share the
// state directory (workers, a resync beside the rolling replicator) change a user's
// file only through Update, under a lock of that user's, so no mark is lost.
type Ledger struct{ dir, locks string }

// LedgerEntry is one uniqueid seen on the master.
type LedgerEntry struct {
	Name      string    `json:"name"`
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
	// InStep is the replica folder's state the last time it matched the master's. A
	// replica folder past it was written on the replica since (a split-brain): a
	// tombstone then proves the master deleted the folder, not the replica's new mail.
	InStep *plan.FolderMark `json:"inStep,omitempty"`
	// Applied is the folder as this replicator's last accepted APPLY MAILBOX left it on
	// the replica (the master's state, which the replica checked against its SYNC_CRCs;
	// partition unknown). The mailbox-level path may plan an update from it instead of
	// reading the replica (Executor.ReplicaCache): the update's SINCE_* makes the
	// replica refuse it, before writing, if the folder changed since.
	Applied *plan.Folder `json:"applied,omitempty"`
}

// UserLedger is one user's part of the ledger.
type UserLedger struct {
	User    string                 `json:"user"`
	Entries map[string]LedgerEntry `json:"entries"` // by uniqueid
	// Sieve: the user's Sieve scripts last seen on the master, name → content digest
	// (see sieve_ledger.go).
	Sieve map[string]string `json:"sieve,omitempty"`
}

// OpenLedger opens (creating) the ledger under stateDir.
func OpenLedger(stateDir string) (*Ledger, error) {
	dir := filepath.Join(stateDir, "ledger")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create ledger dir: %w", err)
	}
	locks := filepath.Join(stateDir, lockDir)
	if err := os.MkdirAll(locks, 0o700); err != nil {
		return nil, fmt.Errorf("create lock dir: %w", err)
	}
	return &Ledger{dir: dir, locks: locks}, nil
}

// ledgerLockWait bounds the wait for another writer's ledger update (a read, a few
// changes and one small atomic write).
const ledgerLockWait = time.Minute

// Update changes a user's ledger under the user's ledger lock: it reads the file as it
// is now, lets change apply its changes (reporting whether there were any) and writes
// it back only then. Changes made by other writers in between are read, not
// overwritten. It returns the ledger as written.
func (l *Ledger) Update(user string, change func(*UserLedger) bool) (*UserLedger, error) {
	unlock, err := lockFile(context.Background(), filepath.Join(l.locks, "ledger-"+url.PathEscape(user)+".lock"), ledgerLockWait)
	if err != nil {
		return nil, fmt.Errorf("ledger of %s: %w", user, err)
	}
	defer unlock()
	u, err := l.Load(user)
	if err != nil {
		return nil, err
	}
	if !change(u) {
		return u, nil
	}
	if err := l.Save(u); err != nil {
		return nil, fmt.Errorf("save ledger of %s: %w", user, err)
	}
	return u, nil
}

func (l *Ledger) path(user string) string {
	return filepath.Join(l.dir, "user-"+url.PathEscape(user)+".json")
}

// Load reads a user's ledger; a user never seen gives an empty one.
func (l *Ledger) Load(user string) (*UserLedger, error) {
	u := &UserLedger{User: user, Entries: map[string]LedgerEntry{}}
	b, err := os.ReadFile(l.path(user))
	if errors.Is(err, fs.ErrNotExist) {
		return u, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ledger of %s: %w", user, err)
	}
	if err := json.Unmarshal(b, u); err != nil {
		return nil, fmt.Errorf("ledger of %s is corrupt: %w", user, err)
	}
	if u.Entries == nil {
		u.Entries = map[string]LedgerEntry{}
	}
	return u, nil
}

// Save writes a user's ledger atomically. It replaces the file whole: writers that may
// run concurrently use Update.
func (l *Ledger) Save(u *UserLedger) error {
	b, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(l.path(u.User), b, 0o600)
}

// Record notes every live master folder of the user; it reports whether anything changed.
func (u *UserLedger) Record(folders []plan.Folder, now time.Time) bool {
	changed := false
	for _, f := range folders {
		if f.UniqueID == "" || mboxname.UserOf(f.Name) != u.User {
			continue
		}
		e, ok := u.Entries[f.UniqueID]
		if !ok {
			e.FirstSeen = now
		}
		if !ok || e.Name != f.Name {
			changed = true
		}
		e.Name, e.LastSeen = f.Name, now
		u.Entries[f.UniqueID] = e
	}
	return changed
}

// MarkInStep notes the state of every replica folder of the user that matches the
// master's folder with the same uniqueid; it reports whether anything changed.
func (u *UserLedger) MarkInStep(master, replica []plan.Folder) bool {
	byUID := make(map[string]*plan.Folder, len(master))
	for i := range master {
		byUID[master[i].UniqueID] = &master[i]
	}
	changed := false
	for i := range replica {
		r := &replica[i]
		m := byUID[r.UniqueID]
		e, seen := u.Entries[r.UniqueID]
		if m == nil || !seen || plan.ContentDiff(m, r) != "" {
			continue
		}
		if mark := plan.MarkOf(r); e.InStep == nil || *e.InStep != mark {
			e.InStep = &mark
			u.Entries[r.UniqueID] = e
			changed = true
		}
	}
	return changed
}

// LastInStep implements LedgerView.
func (u *UserLedger) LastInStep(uid string) (plan.FolderMark, bool) {
	if e, ok := u.Entries[uid]; ok && e.InStep != nil {
		return *e.InStep, true
	}
	return plan.FolderMark{}, false
}

// SeenOnMaster implements LedgerView.
func (u *UserLedger) SeenOnMaster(uid string) (string, bool) {
	e, ok := u.Entries[uid]
	return e.Name, ok
}

// Ledgers is the LedgerView of a batch: the ledgers of all its users.
type Ledgers []*UserLedger

// SeenOnMaster implements LedgerView.
func (ls Ledgers) SeenOnMaster(uid string) (string, bool) {
	for _, u := range ls {
		if n, ok := u.SeenOnMaster(uid); ok {
			return n, true
		}
	}
	return "", false
}

// LastInStep implements LedgerView.
func (ls Ledgers) LastInStep(uid string) (plan.FolderMark, bool) {
	for _, u := range ls {
		if m, ok := u.LastInStep(uid); ok {
			return m, true
		}
	}
	return plan.FolderMark{}, false
}
