package state

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/atomicfile"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// stateFile names the state directory's identity: written once, when a replicator finds
// the directory without one, and never changed. A replicator that has to write it knows
// its ledger and retry queue begin empty: the state is new, or was lost.
const stateFile = "state.json"

// OpenStateID returns the identity of the state directory, creating it when absent
// (New set, unless the directory already holds a ledger or retry queue). Two replicators starting on the same empty directory agree on one identity:
// it is created with link(2), which never replaces an existing file.
func OpenStateID(stateDir string, now time.Time) (report.State, error) {
	path := filepath.Join(stateDir, stateFile)
	if st, err := readStateID(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return st, err
	}
	var raw [12]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return report.State{}, fmt.Errorf("state id: %w", err)
	}
	st := report.State{ID: hex.EncodeToString(raw[:]), Created: now.UTC().Truncate(time.Second)}
	b, err := json.Marshal(st)
	if err != nil {
		return report.State{}, err
	}
	tmp := path + ".new-" + st.ID
	if err := atomicfile.WriteFile(tmp, b, 0o600); err != nil {
		return report.State{}, err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); errors.Is(err, fs.ErrExist) {
		return readStateID(path) // another replicator began it first
	} else if err != nil {
		return report.State{}, fmt.Errorf("create %s: %w", path, err)
	}
	if err := atomicfile.SyncDir(stateDir); err != nil {
		return report.State{}, err
	}
	// A directory kept by a replicator from before state ids carries its state over.
	st.New = !hasEarlierState(stateDir)
	return st, nil
}

// hasEarlierState reports whether stateDir holds a retry queue or any user's ledger.
func hasEarlierState(stateDir string) bool {
	if _, err := os.Stat(filepath.Join(stateDir, "retry.json")); err == nil {
		return true
	}
	entries, _ := os.ReadDir(filepath.Join(stateDir, "ledger"))
	for _, e := range entries {
		if filepath.Ext(e.Name()) == ".json" {
			return true
		}
	}
	return false
}

func readStateID(path string) (report.State, error) {
	var st report.State
	b, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil || st.ID == "" {
		return st, fmt.Errorf("%s is corrupt (remove it to begin a new state): %v", path, err)
	}
	return st, nil
}
