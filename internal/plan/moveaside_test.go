package plan

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// TestMoveAsideRows covers the split-brain row of the decision table: a folder both ends
// hold (same uniqueid) whose replica copy is ahead of the master's is moved aside, not
// updated (the replica would refuse) and not left failing.
func TestMoveAsideRows(t *testing.T) {
	now := time.Date(2026, 11, 29, 5, 1, 2, 0, time.UTC)
	ahead := func(f Folder, lastUID uint32, modseq uint64, uidv uint32) Folder {
		f.LastUID, f.HighestModSeq, f.UIDValidity = lastUID, modseq, uidv
		return f
	}
	cases := []struct {
		name     string
		master   []Folder
		replica  []Folder
		diverged map[string]string
		wantOps  []string
		wantDec  []string
		wantWhy  string // in the move-aside reason
		wantKept int
	}{
		{
			name:    "replica last_uid and modseq ahead: move aside",
			master:  []Folder{fo("u0", "user.alice", 4), fo("u1", "user.alice.Keep", 2)},
			replica: []Folder{fo("u0", "user.alice", 4), ahead(fo("u1", "user.alice.Keep", 2), 3, 3, 100)},
			wantOps: []string{"move-aside user.alice.Keep"},
			wantDec: []string{"move-aside/split-brain u1"},
			wantWhy: "last_uid 3 > 2, highestmodseq 3 > 2", wantKept: 1,
		},
		{
			name:    "only flags changed on the replica (modseq ahead)",
			master:  []Folder{fo("u0", "user.alice", 4)},
			replica: []Folder{ahead(fo("u0", "user.alice", 4), 4, 6, 100)},
			wantOps: []string{"move-aside user.alice"},
			wantDec: []string{"move-aside/split-brain u0"},
			wantWhy: "highestmodseq 6 > 4", wantKept: 1,
		},
		{
			name:    "uidvalidity ahead",
			master:  []Folder{fo("u0", "user.alice", 4)},
			replica: []Folder{ahead(fo("u0", "user.alice", 4), 1, 1, 200)},
			wantOps: []string{"move-aside user.alice"},
			wantDec: []string{"move-aside/split-brain u0"},
			wantWhy: "uidvalidity 200 > 100", wantKept: 1,
		},
		{
			name:    "replica behind: a plain update",
			master:  []Folder{fo("u0", "user.alice", 6)},
			replica: []Folder{fo("u0", "user.alice", 4)},
			wantOps: []string{"update user.alice"},
			wantDec: []string{"update/none u0"},
		},
		{
			name:     "counters behind but the replica refused the master's state: move aside",
			master:   []Folder{fo("u0", "user.alice", 6)},
			replica:  []Folder{fo("u0", "user.alice", 5)},
			diverged: map[string]string{"u0": "IMAP_SYNC_CHECKSUM"},
			wantOps:  []string{"move-aside user.alice"},
			wantDec:  []string{"move-aside/split-brain u0"},
			wantWhy:  "refused the master's state: IMAP_SYNC_CHECKSUM", wantKept: 1,
		},
		{
			name:    "renamed on the replica and ahead: renamed back, then moved aside",
			master:  []Folder{fo("u0", "user.alice", 4), fo("u1", "user.alice.Work", 2)},
			replica: []Folder{fo("u0", "user.alice", 4), ahead(fo("u1", "user.alice.WorkR", 2), 2, 3, 100)},
			wantOps: []string{"rename user.alice.WorkR>user.alice.Work", "move-aside user.alice.Work"},
			wantDec: []string{"rename/name-history u1", "move-aside/split-brain u1"},
			wantWhy: "highestmodseq 3 > 2", wantKept: 1,
		},
		{
			name:     "master moved it to DELETED, replica wrote to it meanwhile: kept under its name, never moved aside into DELETED",
			master:   []Folder{fo("u0", "user.alice", 4), fo("u1", "DELETED.user.alice.Old.6B0B0001", 2)},
			replica:  []Folder{fo("u0", "user.alice", 4), ahead(fo("u1", "user.alice.Old", 2), 3, 3, 100)},
			wantDec:  []string{"keep/split-brain u1"},
			wantKept: 1,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := Input{Pair: "p", Now: now, Users: []string{"alice"}, Master: Snapshot{Folders: c.master},
				Replica: Snapshot{Folders: c.replica}, Diverged: c.diverged}
			p := Compute(in)
			if got := ops(p); !slices.Equal(got, c.wantOps) {
				t.Fatalf("ops %q, want %q", got, c.wantOps)
			}
			if got := decisions(p); !slices.Equal(got, c.wantDec) {
				t.Fatalf("decisions %q, want %q", got, c.wantDec)
			}
			if p.Kept != c.wantKept {
				t.Errorf("kept %d, want %d", p.Kept, c.wantKept)
			}
			for _, a := range p.Actions {
				if a.Op != OpMoveAside {
					continue
				}
				want := a.Name + ".cyrusrepl-conflict-20261129T050102"
				if a.NewName != want || a.Master == nil || a.Master.UniqueID != a.UniqueID {
					t.Fatalf("move-aside action %+v, want rescue %s and the master's folder", a, want)
				}
				var d *report.Decision
				for i := range p.Decisions {
					if p.Decisions[i].Action == report.ActionMoveAside {
						d = &p.Decisions[i]
					}
				}
				if d == nil || d.ReplicaName != want || d.MasterName != a.Name || !strings.Contains(d.Reason, c.wantWhy) {
					t.Fatalf("move-aside decision %+v, want rescue %s and reason with %q", d, want, c.wantWhy)
				}
				found := false
				for _, m := range p.Mismatches {
					found = found || m.Kind == report.MismatchContentDiffers && m.UniqueID == a.UniqueID && strings.Contains(m.Detail, "split-brain")
				}
				if !found {
					t.Fatalf("no split-brain mismatch: %+v", p.Mismatches)
				}
			}
			// Applied to a simulated replica, the plan converges: planning again is empty.
			s := newSim(c.replica)
			if err := s.run(p); err != nil {
				t.Fatal(err)
			}
			in.Replica, in.Diverged = Snapshot{Folders: s.folders()}, nil
			if p2 := Compute(in); !p2.Empty() {
				t.Fatalf("second plan %q", ops(p2))
			}
		})
	}
}

// TestMoveAsideReusesRescue: existing rescue folders of the folder (under its master
// name or its replica name) are offered to the executor for reuse, and the new rescue
// name avoids every name already taken.
func TestMoveAsideReusesRescue(t *testing.T) {
	now := time.Date(2026, 11, 29, 5, 1, 2, 0, time.UTC)
	taken := "user.alice.Keep.cyrusrepl-conflict-20261129T050102"
	r := fo("u1", "user.alice.Keep", 3)
	old := fo("r9", "user.alice.Keep.cyrusrepl-conflict-20261128T000000", 1)
	clash := fo("r8", taken, 1)
	child := fo("r7", "user.alice.Keep.cyrusrepl-conflict-20261128T000000.Sub", 1)
	in := Input{Now: now, Users: []string{"alice"},
		Master:  Snapshot{Folders: []Folder{fo("u1", "user.alice.Keep", 2), fo("r8", taken, 1)}},
		Replica: Snapshot{Folders: []Folder{r, old, clash, child}}}
	p := Compute(in)
	var a *Action
	for i := range p.Actions {
		if p.Actions[i].Op == OpMoveAside {
			a = &p.Actions[i]
		}
	}
	if a == nil {
		t.Fatalf("no move-aside: %q", ops(p))
	}
	if a.NewName != taken+"-2" {
		t.Errorf("rescue name %s, want %s-2", a.NewName, taken)
	}
	if want := []string{old.Name, taken}; !slices.Equal(a.Rescue, want) {
		t.Errorf("rescue candidates %q, want %q", a.Rescue, want)
	}
}
