package plan

import (
	"slices"
	"testing"
	"time"
)

// TestHoldUnmarked: with Input.HoldUnmarked, a tombstone or the ledger alone no longer
// deletes a replica folder whose in-step mark is unknown: it is kept and reported
// (keep/no-mark); with the mark, and the replica as it was then, it is deleted as before.
func TestHoldUnmarked(t *testing.T) {
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	tomb := map[string]Tombstone{"u2": {UniqueID: "u2", Name: "user.alice.Gone"}}
	marked := &userLedger{User: "alice", Entries: map[string]ledgerEntry{"u2": {Name: "user.alice.Gone", InStep: &FolderMark{LastUID: 3, HighestModSeq: 3}}}}
	seenOnly := &userLedger{User: "alice", Entries: map[string]ledgerEntry{"u2": {Name: "user.alice.Gone"}}}
	cases := []struct {
		name    string
		hold    bool
		ev      Evidence
		wantOps []string
		wantDec []string
		kept    int
	}{
		{"tombstone, no ledger", true, Evidence{Tombstones: tomb}, nil, []string{"keep/no-mark u2"}, 1},
		{"tombstone, ledger without mark", true, Evidence{Tombstones: tomb, Ledger: seenOnly}, nil, []string{"keep/no-mark u2"}, 1},
		{"ledger evidence, no mark", true, Evidence{Ledger: seenOnly, MasterLookup: map[string]string{"u2": ""}}, nil, []string{"keep/no-mark u2"}, 1},
		{"tombstone, mark equal to the replica", true, Evidence{Tombstones: tomb, Ledger: marked}, []string{"delete user.alice.Gone"}, []string{"delete/tombstone u2"}, 0},
		{"not held: tombstone alone decides", false, Evidence{Tombstones: tomb}, []string{"delete user.alice.Gone"}, []string{"delete/tombstone u2"}, 0},
		{"held, no evidence at all: kept as before", true, Evidence{MasterLookup: map[string]string{"u2": ""}}, nil, []string{"keep/none u2"}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := Input{Pair: "p", Now: now, Users: []string{"alice"}, HoldUnmarked: c.hold, Evidence: c.ev,
				Master:  Snapshot{Folders: []Folder{fo("u1", "user.alice", 5)}},
				Replica: Snapshot{Folders: []Folder{fo("u1", "user.alice", 5), fo("u2", "user.alice.Gone", 3)}}}
			p := Compute(in)
			if got := ops(p); !slices.Equal(got, c.wantOps) {
				t.Errorf("actions: got %q want %q", got, c.wantOps)
			}
			if got := decisions(p); !slices.Equal(got, c.wantDec) {
				t.Errorf("decisions: got %q want %q", got, c.wantDec)
			}
			if p.Kept != c.kept {
				t.Errorf("kept: got %d want %d", p.Kept, c.kept)
			}
		})
	}
}

// TestHoldUnmarkedNameWanted: a tombstoned, unmarked replica folder on a name the
// master's folder needs is moved aside (kept, the name freed), not deleted.
func TestHoldUnmarkedNameWanted(t *testing.T) {
	in := Input{Pair: "p", Now: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC), Users: []string{"alice"}, HoldUnmarked: true,
		Evidence: Evidence{Tombstones: map[string]Tombstone{"r2": {UniqueID: "r2", Name: "user.alice.X"}}},
		Master:   Snapshot{Folders: []Folder{fo("u1", "user.alice", 5), fo("m2", "user.alice.X", 4)}},
		Replica:  Snapshot{Folders: []Folder{fo("u1", "user.alice", 5), fo("r2", "user.alice.X", 9)}}}
	p := Compute(in)
	if got, want := ops(p), []string{"rename user.alice.X>user.alice.X-replica-r2", "create user.alice.X"}; !slices.Equal(got, want) {
		t.Fatalf("actions: got %q want %q", got, want)
	}
	in.HoldUnmarked = false
	if got := ops(Compute(in)); !slices.Equal(got, []string{"delete user.alice.X", "create user.alice.X"}) {
		t.Fatalf("without the hold the tombstone decides: %q", got)
	}
}

// TestHoldUnmarkedMasterIntermediate: the master's GET USER holding the uniqueid as an
// intermediate is deletion evidence like a tombstone, so with the state new or lost a
// live replica folder with no in-step mark is kept (no-mark), not deleted.
func TestHoldUnmarkedMasterIntermediate(t *testing.T) {
	in := Input{Pair: "p", Now: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC), Users: []string{"alice"}, HoldUnmarked: true,
		Master:  Snapshot{Folders: []Folder{fo("u1", "user.alice", 5), {UniqueID: "u2", Name: "user.alice.Work", Type: "i"}}},
		Replica: Snapshot{Folders: []Folder{fo("u1", "user.alice", 5), fo("u2", "user.alice.Work", 4)}}}
	p := Compute(in)
	if got := ops(p); len(got) != 0 {
		t.Fatalf("actions on an unmarked folder the master holds as an intermediate: %q (want none)", got)
	}
	if got, want := decisions(p), []string{"keep/no-mark u2"}; !slices.Equal(got, want) {
		t.Fatalf("decisions: got %q want %q", got, want)
	}
	if p.Kept != 1 {
		t.Fatalf("kept: got %d want 1", p.Kept)
	}
	in.HoldUnmarked = false
	if got, want := ops(Compute(in)), []string{"delete user.alice.Work", "create user.alice.Work"}; !slices.Equal(got, want) {
		t.Fatalf("without the hold the master's intermediate decides: got %q want %q", got, want)
	}
	in.HoldUnmarked = true
	in.Evidence.Ledger = &userLedger{User: "alice", Entries: map[string]ledgerEntry{"u2": {Name: "user.alice.Work", InStep: &FolderMark{LastUID: 4, HighestModSeq: 4}}}}
	if got, want := ops(Compute(in)), []string{"delete user.alice.Work", "create user.alice.Work"}; !slices.Equal(got, want) {
		t.Fatalf("marked and unchanged since: got %q want %q", got, want)
	}
}
