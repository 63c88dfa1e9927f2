package plan

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

func fo(uid, name string, modseq uint64) Folder {
	return Folder{UniqueID: uid, Name: name, UIDValidity: 100, LastUID: uint32(modseq), HighestModSeq: modseq, Partition: "default", ACL: "alice\tlrswipkxtecdan\t"}
}

type ledger map[string]string

func (l ledger) SeenOnMaster(uid string) (string, bool) { n, ok := l[uid]; return n, ok }

func (l ledger) LastInStep(string) (FolderMark, bool) { return FolderMark{}, false }

// ops renders a plan's actions compactly for comparison.
func ops(p Plan) []string {
	var out []string
	for _, a := range p.Actions {
		switch a.Op {
		case OpRename:
			s := "rename " + a.Name + ">" + a.NewName
			if a.Transit {
				s = "transit " + a.Name + ">" + a.NewName
			}
			out = append(out, s)
		case OpSub, OpUnsub:
			out = append(out, string(a.Op)+" "+a.Sub)
		case OpQuota, OpUnquota:
			out = append(out, string(a.Op)+" "+a.Quota.Root)
		case OpSeen:
			out = append(out, "seen "+a.Seen.UniqueID)
		case OpSieve, OpUnsieve:
			out = append(out, string(a.Op)+" "+a.Sieve.Name)
		case OpUnactivateSieve:
			out = append(out, string(a.Op))
		default:
			out = append(out, string(a.Op)+" "+a.Name)
		}
	}
	return out
}

func decisions(p Plan) []string {
	var out []string
	for _, d := range p.Decisions {
		out = append(out, string(d.Action)+"/"+string(d.Evidence)+" "+d.UniqueID)
	}
	return out
}

func mismatches(p Plan) []string {
	var out []string
	for _, m := range p.Mismatches {
		out = append(out, string(m.Kind)+" "+m.UniqueID)
	}
	return out
}

// TestDecisionTable has one case per row of the design decision table (and the
// variants the issue names), checking actions, decision records and mismatches, and
// that applying the plan to a simulated replica gives the expected folders.
func TestDecisionTable(t *testing.T) {
	now := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		users     []string
		master    []Folder
		replica   []Folder
		ev        Evidence
		wantOps   []string
		wantDec   []string
		wantMis   []string
		wantNeed  []string
		wantFinal []string // "uid@name" after applying the plan
		wantKept  int
	}{
		{
			name:      "live on both, same name, equal: nothing",
			master:    []Folder{fo("u1", "user.alice", 5), fo("u2", "user.alice.Sent", 3)},
			replica:   []Folder{fo("u1", "user.alice", 5), fo("u2", "user.alice.Sent", 3)},
			wantFinal: []string{"u1@user.alice", "u2@user.alice.Sent"},
		},
		{
			name:      "live on both, same name, modseq differs: update",
			master:    []Folder{fo("u1", "user.alice", 7)},
			replica:   []Folder{fo("u1", "user.alice", 5)},
			wantOps:   []string{"update user.alice"},
			wantDec:   []string{"update/none u1"},
			wantMis:   []string{"content-differs u1"},
			wantFinal: []string{"u1@user.alice"},
		},
		{
			name:      "live on both, names differ: rename, name history",
			master:    []Folder{fo("u1", "user.alice", 5), {UniqueID: "u2", Name: "user.alice.Projects", History: []string{"user.alice.Work"}, UIDValidity: 100, LastUID: 3, HighestModSeq: 3, Partition: "default", ACL: "alice\tlrswipkxtecdan\t"}},
			replica:   []Folder{fo("u1", "user.alice", 5), fo("u2", "user.alice.Work", 3)},
			wantOps:   []string{"rename user.alice.Work>user.alice.Projects"},
			wantDec:   []string{"rename/name-history u2"},
			wantMis:   []string{"name-differs u2"},
			wantFinal: []string{"u1@user.alice", "u2@user.alice.Projects"},
		},
		{
			name:      "live on master only: create",
			master:    []Folder{fo("u1", "user.alice", 5), fo("u2", "user.alice.Sent", 3)},
			replica:   []Folder{fo("u1", "user.alice", 5)},
			wantOps:   []string{"create user.alice.Sent"},
			wantDec:   []string{"create/none u2"},
			wantMis:   []string{"missing-on-replica u2"},
			wantFinal: []string{"u1@user.alice", "u2@user.alice.Sent"},
		},
		{
			name:      "replica-only by name, master has it under DELETED.*: mirror the delayed delete",
			master:    []Folder{fo("u1", "user.alice", 5), fo("u2", "DELETED.user.alice.Old.6B0B8E30", 3)},
			replica:   []Folder{fo("u1", "user.alice", 5), fo("u2", "user.alice.Old", 3)},
			wantOps:   []string{"rename user.alice.Old>DELETED.user.alice.Old.6B0B8E30"},
			wantDec:   []string{"mirror-delete/deleted-namespace u2"},
			wantMis:   []string{"name-differs u2"},
			wantFinal: []string{"u1@user.alice", "u2@DELETED.user.alice.Old.6B0B8E30"},
		},
		{
			name:      "master moved it to DELETED.*, replica wrote to it meanwhile: keep under its name",
			master:    []Folder{fo("u1", "user.alice", 5), fo("u2", "DELETED.user.alice.Old.6B0B8E30", 3)},
			replica:   []Folder{fo("u1", "user.alice", 5), fo("u2", "user.alice.Old", 4)},
			wantDec:   []string{"keep/split-brain u2"},
			wantMis:   []string{"content-differs u2"},
			wantKept:  1,
			wantFinal: []string{"u1@user.alice", "u2@user.alice.Old"},
		},
		{
			name:      "replica-only, master tombstone: delete",
			master:    []Folder{fo("u1", "user.alice", 5)},
			replica:   []Folder{fo("u1", "user.alice", 5), fo("u2", "user.alice.Gone", 3)},
			ev:        Evidence{Tombstones: map[string]Tombstone{"u2": {UniqueID: "u2", Name: "user.alice.Gone"}}},
			wantOps:   []string{"delete user.alice.Gone"},
			wantDec:   []string{"delete/tombstone u2"},
			wantMis:   []string{"replica-only u2"},
			wantFinal: []string{"u1@user.alice"},
		},
		{
			name:    "replica-only, master tombstone, written on the replica since last in step: keep",
			master:  []Folder{fo("u1", "user.alice", 5)},
			replica: []Folder{fo("u1", "user.alice", 5), fo("u2", "user.alice.Gone", 5)},
			ev: Evidence{Tombstones: map[string]Tombstone{"u2": {UniqueID: "u2", Name: "user.alice.Gone"}},
				Ledger: &userLedger{User: "alice", Entries: map[string]ledgerEntry{"u2": {Name: "user.alice.Gone", InStep: &FolderMark{LastUID: 3, HighestModSeq: 3}}}}},
			wantDec:   []string{"keep/split-brain u2"},
			wantMis:   []string{"replica-only u2"},
			wantKept:  1,
			wantFinal: []string{"u1@user.alice", "u2@user.alice.Gone"},
		},
		{
			name:    "replica-only, master tombstone, replica as it was when last in step: delete",
			master:  []Folder{fo("u1", "user.alice", 5)},
			replica: []Folder{fo("u1", "user.alice", 5), fo("u2", "user.alice.Gone", 3)},
			ev: Evidence{Tombstones: map[string]Tombstone{"u2": {UniqueID: "u2", Name: "user.alice.Gone"}},
				Ledger: &userLedger{User: "alice", Entries: map[string]ledgerEntry{"u2": {Name: "user.alice.Gone", InStep: &FolderMark{LastUID: 3, HighestModSeq: 3}}}}},
			wantOps:   []string{"delete user.alice.Gone"},
			wantDec:   []string{"delete/tombstone u2"},
			wantMis:   []string{"replica-only u2"},
			wantFinal: []string{"u1@user.alice"},
		},
		{
			name:    "replica-only intermediate, master tombstone, in-step mark from when it was live: delete (an intermediate holds no mail)",
			master:  []Folder{fo("u1", "user.alice", 5)},
			replica: []Folder{fo("u1", "user.alice", 5), {UniqueID: "u2", Name: "user.alice.Gone", Type: "i"}},
			ev: Evidence{Tombstones: map[string]Tombstone{"u2": {UniqueID: "u2", Name: "user.alice.Gone"}},
				Ledger: &userLedger{User: "alice", Entries: map[string]ledgerEntry{"u2": {Name: "user.alice.Gone", InStep: &FolderMark{LastUID: 3, HighestModSeq: 3}}}}},
			wantOps:   []string{"delete user.alice.Gone"},
			wantDec:   []string{"delete/tombstone u2"},
			wantMis:   []string{"replica-only u2"},
			wantFinal: []string{"u1@user.alice"},
		},
		{
			name:    "master holds the uniqueid as an intermediate, replica written since last in step: keep",
			master:  []Folder{fo("u1", "user.alice", 5), {UniqueID: "u2", Name: "user.alice.Work", Type: "i"}},
			replica: []Folder{fo("u1", "user.alice", 5), fo("u2", "user.alice.Work", 4)},
			ev: Evidence{Ledger: &userLedger{User: "alice", Entries: map[string]ledgerEntry{"u2": {Name: "user.alice.Work",
				InStep: &FolderMark{LastUID: 3, HighestModSeq: 3}}}}},
			wantDec:   []string{"keep/split-brain u2"},
			wantMis:   []string{"content-differs u2"},
			wantKept:  1,
			wantFinal: []string{"u1@user.alice", "u2@user.alice.Work"},
		},
		{
			name:    "master holds the uniqueid as an intermediate, replica as when last in step: delete, create the intermediate",
			master:  []Folder{fo("u1", "user.alice", 5), {UniqueID: "u2", Name: "user.alice.Work", Type: "i"}},
			replica: []Folder{fo("u1", "user.alice", 5), fo("u2", "user.alice.Work", 3)},
			ev: Evidence{Ledger: &userLedger{User: "alice", Entries: map[string]ledgerEntry{"u2": {Name: "user.alice.Work",
				InStep: &FolderMark{LastUID: 3, HighestModSeq: 3}}}}},
			wantOps:   []string{"delete user.alice.Work", "create user.alice.Work"},
			wantDec:   []string{"delete/master-intermediate u2", "create/none u2"},
			wantMis:   []string{"content-differs u2"},
			wantFinal: []string{"u1@user.alice", "u2@user.alice.Work"},
		},
		{
			name:      "replica-only, purged DELETED.* (orphan I record): delete",
			master:    []Folder{fo("u1", "user.alice", 5)},
			replica:   []Folder{fo("u1", "user.alice", 5), fo("u2", "DELETED.user.alice.X.6B0B0001", 3)},
			ev:        Evidence{Tombstones: map[string]Tombstone{"u2": {UniqueID: "u2", Name: "DELETED.user.alice.X.6B0B0001", Orphan: true}}},
			wantOps:   []string{"delete DELETED.user.alice.X.6B0B0001"},
			wantDec:   []string{"delete/tombstone u2"},
			wantMis:   []string{"replica-only u2"},
			wantFinal: []string{"u1@user.alice"},
		},
		{
			name:      "replica-only, master never had it: keep and report",
			master:    []Folder{fo("u1", "user.alice", 5)},
			replica:   []Folder{fo("u1", "user.alice", 5), fo("u9", "user.alice.Split", 3)},
			ev:        Evidence{Tombstones: map[string]Tombstone{}, MasterLookup: map[string]string{"u9": ""}, Ledger: ledger{}},
			wantDec:   []string{"keep/none u9"},
			wantMis:   []string{"replica-only u9"},
			wantFinal: []string{"u1@user.alice", "u9@user.alice.Split"},
			wantKept:  1,
		},
		{
			name:      "replica-only, ledger saw it on the master, master lookup by uniqueid empty: delete",
			master:    []Folder{fo("u1", "user.alice", 5)},
			replica:   []Folder{fo("u1", "user.alice", 5), fo("u2", "user.alice.Gone", 3)},
			ev:        Evidence{Ledger: ledger{"u2": "user.alice.Gone"}, MasterLookup: map[string]string{"u2": ""}},
			wantOps:   []string{"delete user.alice.Gone"},
			wantDec:   []string{"delete/ledger u2"},
			wantMis:   []string{"replica-only u2"},
			wantFinal: []string{"u1@user.alice"},
		},
		{
			name:      "replica-only, ledger saw it on the master, but mailboxes.db read without a tombstone: keep",
			master:    []Folder{fo("u1", "user.alice", 5)},
			replica:   []Folder{fo("u1", "user.alice", 5), fo("u2", "user.alice.Gone", 3)},
			ev:        Evidence{Ledger: ledger{"u2": "user.alice.Gone"}, MasterLookup: map[string]string{"u2": ""}, MailboxesDBRead: true},
			wantDec:   []string{"keep/none u2"},
			wantMis:   []string{"replica-only u2"},
			wantFinal: []string{"u1@user.alice", "u2@user.alice.Gone"},
			wantKept:  1,
		},
		{
			name:      "replica-only, ledger entry but master not looked up: keep",
			master:    []Folder{fo("u1", "user.alice", 5)},
			replica:   []Folder{fo("u1", "user.alice", 5), fo("u2", "user.alice.Gone", 3)},
			ev:        Evidence{Ledger: ledger{"u2": "user.alice.Gone"}},
			wantDec:   []string{"keep/none u2"},
			wantMis:   []string{"replica-only u2"},
			wantFinal: []string{"u1@user.alice", "u2@user.alice.Gone"},
			wantKept:  1,
		},
		{
			name:      "one name, different uniqueids, no evidence: move replica's aside, create master's",
			master:    []Folder{fo("u1", "user.alice", 5), fo("m2", "user.alice.Split", 4)},
			replica:   []Folder{fo("u1", "user.alice", 5), fo("r2", "user.alice.Split", 9)},
			wantOps:   []string{"rename user.alice.Split>user.alice.Split-replica-r2", "create user.alice.Split"},
			wantDec:   []string{"move-aside/none r2", "create/none m2"},
			wantMis:   []string{"missing-on-replica m2", "uniqueid-collision r2"},
			wantFinal: []string{"u1@user.alice", "m2@user.alice.Split", "r2@user.alice.Split-replica-r2"},
			wantKept:  1,
		},
		{
			name:      "one name, different uniqueids, tombstone for replica's: delete then create",
			master:    []Folder{fo("u1", "user.alice", 5), fo("m2", "user.alice.Work", 4)},
			replica:   []Folder{fo("u1", "user.alice", 5), fo("r2", "user.alice.Work", 9)},
			ev:        Evidence{Tombstones: map[string]Tombstone{"r2": {UniqueID: "r2", Name: "user.alice.Work"}}},
			wantOps:   []string{"delete user.alice.Work", "create user.alice.Work"},
			wantDec:   []string{"delete/tombstone r2", "create/none m2"},
			wantMis:   []string{"missing-on-replica m2", "replica-only r2"},
			wantFinal: []string{"u1@user.alice", "m2@user.alice.Work"},
		},
		{
			name:      "INBOX held by different uniqueids, no evidence: kept, nothing destroyed",
			master:    []Folder{fo("m1", "user.alice", 5)},
			replica:   []Folder{fo("r1", "user.alice", 9)},
			wantDec:   []string{"keep/none r1"},
			wantMis:   []string{"missing-on-replica m1", "uniqueid-collision r1"},
			wantFinal: []string{"r1@user.alice"},
			wantKept:  1,
		},
		{
			name:      "cross-user rename, other user outside the batch: ask for it",
			users:     []string{"alice"},
			master:    []Folder{fo("u1", "user.alice", 5), fo("u2", "user.alice.FromBob", 3)},
			replica:   []Folder{fo("u1", "user.alice", 5)},
			ev:        Evidence{ReplicaLookup: map[string]string{"u2": "user.bob.Shared"}},
			wantMis:   []string{"name-differs u2"},
			wantNeed:  []string{"bob"},
			wantFinal: []string{"u1@user.alice"},
		},
		{
			name:      "cross-user rename, both users in the batch: rename across users",
			users:     []string{"alice", "bob"},
			master:    []Folder{fo("u1", "user.alice", 5), fo("u2", "user.alice.FromBob", 3), fo("b1", "user.bob", 2)},
			replica:   []Folder{fo("u1", "user.alice", 5), fo("b1", "user.bob", 2), fo("u2", "user.bob.Shared", 3)},
			wantOps:   []string{"rename user.bob.Shared>user.alice.FromBob"},
			wantDec:   []string{"rename/name-history u2"},
			wantMis:   []string{"name-differs u2"},
			wantFinal: []string{"u1@user.alice", "u2@user.alice.FromBob", "b1@user.bob"},
		},
		{
			name:      "replica-only folder the master holds under another user: ask for that user, keep",
			users:     []string{"bob"},
			master:    []Folder{fo("b1", "user.bob", 2)},
			replica:   []Folder{fo("b1", "user.bob", 2), fo("u2", "user.bob.Shared", 3)},
			ev:        Evidence{MasterLookup: map[string]string{"u2": "user.alice.FromBob"}, Ledger: ledger{"u2": "user.bob.Shared"}},
			wantMis:   []string{"name-differs u2"},
			wantNeed:  []string{"alice"},
			wantFinal: []string{"b1@user.bob", "u2@user.bob.Shared"},
		},
		{
			name:      "user renamed as a whole (alice -> carol)",
			users:     []string{"alice", "carol"},
			master:    []Folder{fo("u1", "user.carol", 5), fo("u2", "user.carol.Sent", 3)},
			replica:   []Folder{fo("u1", "user.alice", 5), fo("u2", "user.alice.Sent", 3)},
			wantOps:   []string{"rename user.alice>user.carol", "rename user.alice.Sent>user.carol.Sent"},
			wantDec:   []string{"rename/name-history u1", "rename/name-history u2"},
			wantMis:   []string{"name-differs u1", "name-differs u2"},
			wantFinal: []string{"u1@user.carol", "u2@user.carol.Sent"},
		},
		{
			name:      "rename chain A->B, B->C: B moves first",
			master:    []Folder{fo("u1", "user.alice", 5), fo("a", "user.alice.B", 1), fo("b", "user.alice.C", 2)},
			replica:   []Folder{fo("u1", "user.alice", 5), fo("a", "user.alice.A", 1), fo("b", "user.alice.B", 2)},
			wantOps:   []string{"rename user.alice.B>user.alice.C", "rename user.alice.A>user.alice.B"},
			wantDec:   []string{"rename/name-history a", "rename/name-history b"},
			wantMis:   []string{"name-differs a", "name-differs b"},
			wantFinal: []string{"u1@user.alice", "a@user.alice.B", "b@user.alice.C"},
		},
		{
			name:      "rename cycle A<->B: through a temporary name",
			master:    []Folder{fo("u1", "user.alice", 5), fo("a", "user.alice.B", 1), fo("b", "user.alice.A", 2)},
			replica:   []Folder{fo("u1", "user.alice", 5), fo("a", "user.alice.A", 1), fo("b", "user.alice.B", 2)},
			wantOps:   []string{"transit user.alice.A>user.alice.cyrusrepl-tmp-a", "rename user.alice.B>user.alice.A", "rename user.alice.cyrusrepl-tmp-a>user.alice.B"},
			wantDec:   []string{"rename/name-history a", "rename/name-history b"},
			wantMis:   []string{"name-differs a", "name-differs b"},
			wantFinal: []string{"u1@user.alice", "b@user.alice.A", "a@user.alice.B"},
		},
		{
			name: "sync sheer (a): rename A->B seen with only the old name in the replica: rename, no delete, no re-upload",
			master: []Folder{fo("u1", "user.alice", 5),
				{UniqueID: "x", Name: "user.alice.B", History: []string{"user.alice.A"}, UIDValidity: 100, LastUID: 3, HighestModSeq: 3, Partition: "default", ACL: "alice\tlrswipkxtecdan\t"}},
			replica:   []Folder{fo("u1", "user.alice", 5), fo("x", "user.alice.A", 3)},
			ev:        Evidence{Tombstones: map[string]Tombstone{}},
			wantOps:   []string{"rename user.alice.A>user.alice.B"},
			wantDec:   []string{"rename/name-history x"},
			wantMis:   []string{"name-differs x"},
			wantFinal: []string{"u1@user.alice", "x@user.alice.B"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			users := c.users
			if users == nil {
				users = []string{"alice"}
			}
			in := Input{Pair: "p", Now: now, Users: users,
				Master: Snapshot{Folders: c.master}, Replica: Snapshot{Folders: c.replica}, Evidence: c.ev}
			p := Compute(in)
			if got := ops(p); !slices.Equal(got, c.wantOps) {
				t.Errorf("actions:\n got %q\nwant %q", got, c.wantOps)
			}
			if got := decisions(p); !sameSet(got, c.wantDec) {
				t.Errorf("decisions:\n got %q\nwant %q", got, c.wantDec)
			}
			if got := mismatches(p); !sameSet(got, c.wantMis) {
				t.Errorf("mismatches:\n got %q\nwant %q", got, c.wantMis)
			}
			if !slices.Equal(p.NeedUsers, c.wantNeed) {
				t.Errorf("need users: got %q want %q", p.NeedUsers, c.wantNeed)
			}
			if p.Kept != c.wantKept {
				t.Errorf("kept: got %d want %d", p.Kept, c.wantKept)
			}
			for _, d := range p.Decisions {
				if d.Reason == "" || d.Evidence == "" || d.Pair != "p" || d.User == "" || d.ID == "" {
					t.Errorf("incomplete decision record %+v", d)
				}
			}
			s := newSim(c.replica)
			if err := s.run(p); err != nil {
				t.Fatalf("applying plan: %v", err)
			}
			var final []string
			for _, f := range s.folders() {
				final = append(final, f.UniqueID+"@"+f.Name)
			}
			if !sameSet(final, c.wantFinal) {
				t.Errorf("final replica:\n got %q\nwant %q", final, c.wantFinal)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestDeleteNeedsEvidence(t *testing.T) {
	// Even a tombstone at the replica folder's *name* (3.6.1 sync_client's test) is no
	// evidence when it belongs to another uniqueid.
	p := Compute(Input{Users: []string{"alice"},
		Master:   Snapshot{Folders: []Folder{fo("u1", "user.alice", 1), fo("new", "user.alice.Projects", 2)}},
		Replica:  Snapshot{Folders: []Folder{fo("u1", "user.alice", 1), fo("other", "user.alice.Work", 4)}},
		Evidence: Evidence{Tombstones: map[string]Tombstone{"old": {UniqueID: "old", Name: "user.alice.Work"}}}})
	for _, a := range p.Actions {
		if a.Op == OpDelete {
			t.Fatalf("planned %v without evidence for its uniqueid", a)
		}
	}
	if !slices.Contains(decisions(p), "keep/none other") {
		t.Fatalf("decisions %q lack keep/none other", decisions(p))
	}
}

func TestMetaPlanning(t *testing.T) {
	mm := &Meta{
		Quotas: []Quota{{Root: "user.alice", Limits: map[string]uint64{"STORAGE": 1000}}},
		Seen:   []Seen{{UniqueID: "u1", LastUID: 3, SeenUIDs: "1:3"}},
		Subs:   []string{"user.alice.Sent", "user.alice.Work"},
		Sieve:  []SieveScript{{Name: "main.script", LastUpdate: 20, Active: true}},
	}
	rm := &Meta{
		Quotas: []Quota{{Root: "user.alice", Limits: map[string]uint64{"STORAGE": 500}}},
		Seen:   []Seen{{UniqueID: "u1", LastUID: 2, SeenUIDs: "1:2"}},
		Subs:   []string{"user.alice.Sent", "user.alice.Old"},
		Sieve:  []SieveScript{{Name: "main.script", LastUpdate: 10, Active: true}, {Name: "old.script", LastUpdate: 1, Digest: "d-old"}},
	}
	in := Input{Users: []string{"alice"},
		Master:  Snapshot{Folders: []Folder{fo("u1", "user.alice", 1)}, Meta: map[string]*Meta{"alice": mm}},
		Replica: Snapshot{Folders: []Folder{fo("u1", "user.alice", 1)}, Meta: map[string]*Meta{"alice": rm}}}
	// No evidence the master ever had old.script: kept and reported.
	p := Compute(in)
	want := []string{"quota user.alice", "seen u1", "sub user.alice.Work", "unsub user.alice.Old", "sieve main.script"}
	if got := ops(p); !slices.Equal(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
	if d := decisions(p); !slices.Contains(d, "keep/none ") || p.Kept != 1 {
		t.Fatalf("no keep decision for the replica-only script: %q kept=%d", d, p.Kept)
	}
	// The ledger saw it on the master with this content: the master deleted it.
	in.Evidence.Ledger = userLedgers{{User: "alice", Sieve: map[string]string{"old.script": "d-old"}}}
	want = append(want, "unsieve old.script")
	if got := ops(Compute(in)); !slices.Equal(got, want) {
		t.Fatalf("with the ledger: got %q want %q", got, want)
	}
	// Seen on the master with other content: written on the replica since, kept.
	in.Evidence.Ledger = userLedgers{{User: "alice", Sieve: map[string]string{"old.script": "d-other"}}}
	if got := ops(Compute(in)); slices.Contains(got, "unsieve old.script") {
		t.Fatalf("replica-changed script deleted: %q", got)
	}
	// Equal meta: nothing. Unknown master user: nothing, even with replica meta.
	p = Compute(Input{Users: []string{"alice"},
		Master:  Snapshot{Meta: map[string]*Meta{"alice": mm}},
		Replica: Snapshot{Meta: map[string]*Meta{"alice": mm}}})
	if len(p.Actions) != 0 {
		t.Fatalf("equal meta planned %q", ops(p))
	}
	p = Compute(Input{Users: []string{"alice"}, Replica: Snapshot{Meta: map[string]*Meta{"alice": rm}}})
	if len(p.Actions) != 0 {
		t.Fatalf("unknown master user planned %q", ops(p))
	}
}

func TestNames(t *testing.T) {
	for in, want := range map[string]mboxname.Name{
		"user.alice":                        {User: "alice"},
		"user.john^doe.Sent":                {User: "john.doe", Rest: "Sent"},
		"DELETED.user.alice.Work.6B0B8E30":  {User: "alice", Deleted: true, Rest: "Work.6B0B8E30"},
		"example.com!user.bob.A.B":          {Domain: "example.com", User: "bob@example.com", Rest: "A.B"},
		"shared.folder":                     {Rest: "shared.folder"},
		"example.com!DELETED.user.bob.X.1F": {Domain: "example.com", Deleted: true, User: "bob@example.com", Rest: "X.1F"},
	} {
		if got := mboxname.ParseName(in); got != want {
			t.Errorf("ParseName(%q) = %+v, want %+v", in, got, want)
		}
	}
	if got := mboxname.UserRoot("john.doe@example.com"); got != "example.com!user.john^doe" {
		t.Errorf("UserRoot = %q", got)
	}
	if got := mboxname.DBNameToInternal("user\x1fbob\x1fX"); got != "user.bob.X" {
		t.Errorf("DBNameToInternal = %q", got)
	}
	if got := mboxname.DBNameToInternal("example.com\x1duser\x1fbob"); got != "example.com!user.bob" {
		t.Errorf("DBNameToInternal domain = %q", got)
	}
	if !strings.HasPrefix(tempName("user.alice.A", "x"), "user.alice.") {
		t.Errorf("tempName must stay under the user")
	}
	_ = report.ActionNone
}

// TestDestructiveActionsCarryExpect: every action that drops a replica folder's mail
// carries the folder's state the plan saw (the executor's compare-and-delete); a plain
// rename carries none.
func TestDestructiveActionsCarryExpect(t *testing.T) {
	gone := fo("u2", "user.alice.Gone", 3)
	mirrored := fo("u3", "user.alice.Old", 4)
	renamed := fo("u4", "user.alice.A", 2)
	p := Compute(Input{Users: []string{"alice"},
		Master: Snapshot{Folders: []Folder{fo("u1", "user.alice", 5),
			fo("u3", "DELETED.user.alice.Old.6B0B0001", 4), fo("u4", "user.alice.B", 2)}},
		Replica:  Snapshot{Folders: []Folder{fo("u1", "user.alice", 5), gone, mirrored, renamed}},
		Evidence: Evidence{Tombstones: map[string]Tombstone{"u2": {UniqueID: "u2", Name: "user.alice.Gone"}}}})
	want := map[string]*FolderMark{"u2": Mark(&gone), "u3": Mark(&mirrored), "u4": nil}
	for _, a := range p.Actions {
		w, ok := want[a.UniqueID]
		if !ok {
			continue
		}
		delete(want, a.UniqueID)
		if (w == nil) != (a.Expect == nil) || w != nil && *w != *a.Expect {
			t.Errorf("%s: Expect %+v, want %+v", a, a.Expect, w)
		}
	}
	if len(want) > 0 {
		t.Fatalf("actions missing for %v: %q", want, ops(p))
	}
}
