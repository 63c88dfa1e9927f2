package plan

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

var propNames = []string{
	"user.alice", "user.alice.A", "user.alice.B", "user.alice.C", "user.alice.A.X", "user.alice.D",
	"user.bob", "user.bob.A", "user.bob.B", "DELETED.user.alice.A.6B0B0001", "DELETED.user.bob.B.6B0B0002",
}

// randomCase builds a master, a replica derived from it with random renames, swaps,
// losses, stale content, and replica-only folders, and random evidence.
func randomCase(r *rand.Rand) (Input, map[string]bool) {
	perm := r.Perm(len(propNames))
	nm := r.IntN(len(propNames)) + 1
	var master []Folder
	for i := 0; i < nm; i++ {
		master = append(master, fo(fmt.Sprintf("m%d", i), propNames[perm[i]], uint64(r.IntN(5)+1)))
	}
	// Replica names: a fresh permutation so that renames, chains, cycles and
	// collisions all happen.
	rperm := r.Perm(len(propNames))
	used := 0
	var replica []Folder
	for _, m := range master {
		switch r.IntN(4) {
		case 0: // missing on replica
		case 1: // same name
			f := m
			f.HighestModSeq = uint64(r.IntN(5) + 1)
			replica = append(replica, f)
		default: // another name
			if used < len(rperm) {
				f := m
				f.Name = propNames[rperm[used]]
				used++
				replica = append(replica, f)
			}
		}
	}
	// Make replica names unique (a same-name copy may clash with a permuted one).
	seen := map[string]bool{}
	var uniq []Folder
	for _, f := range replica {
		if !seen[f.Name] {
			seen[f.Name] = true
			uniq = append(uniq, f)
		}
	}
	replica = uniq
	ev := Evidence{Tombstones: map[string]Tombstone{}, MasterLookup: map[string]string{}}
	led := ledger{}
	withEvidence := map[string]bool{}
	for i, n := 0, r.IntN(4); i < n; i++ {
		name := propNames[r.IntN(len(propNames))]
		if seen[name] {
			continue
		}
		seen[name] = true
		uid := fmt.Sprintf("r%d", i)
		replica = append(replica, fo(uid, name, uint64(r.IntN(9)+1)))
		switch r.IntN(4) {
		case 0:
			ev.Tombstones[uid] = Tombstone{UniqueID: uid, Name: name}
			withEvidence[uid] = true
		case 1:
			led[uid] = name
			ev.MasterLookup[uid] = ""
			withEvidence[uid] = true
		case 2:
			led[uid] = name // ledger without a master lookup is not enough
		}
	}
	ev.Ledger = led
	return Input{Pair: "p", Now: time.Unix(0, 0), Users: []string{"alice", "bob"},
		Master: Snapshot{Folders: master}, Replica: Snapshot{Folders: replica}, Evidence: ev}, withEvidence
}

// TestPlanProperties: for random states, applying the plan to a simulated replica
// (which enforces the server's preconditions) makes every live master folder present at
// its master name with the master's content, keeps every replica-only folder that has no
// evidence (with its content, possibly moved aside), deletes exactly the ones that have
// evidence, and a second plan is empty apart from keeps.
func TestPlanProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	blockedCases := 0
	defer func() {
		t.Logf("%d of 5000 cases had a blocked INBOX", blockedCases)
		if blockedCases > 1000 {
			t.Errorf("%d of 5000 cases had a blocked INBOX; the generator tests too little", blockedCases)
		}
	}()
	for iter := 0; iter < 5000; iter++ {
		in, withEv := randomCase(r)
		p := Compute(in)
		s := newSim(in.Replica.Folders)
		if err := s.run(p); err != nil {
			t.Fatalf("case %d: %v\nmaster %v\nreplica %v\nplan %q", iter, err, in.Master.Folders, in.Replica.Folders, ops(p))
		}
		// INBOX collisions without evidence are kept and block the master's INBOX.
		blocked := map[string]bool{}
		for _, d := range p.Decisions {
			if d.Action == report.ActionKeep && mboxname.ParseName(d.ReplicaName).Rest == "" && d.MasterName != "" {
				blocked[d.MasterName] = true
			}
		}
		for _, m := range in.Master.Folders {
			if len(blocked) > 0 {
				blockedCases++
				break // a kept INBOX can block a chain of renames; only safety is checked
			}
			got, ok := s.byName[m.Name]
			if !ok || got.UniqueID != m.UniqueID || ContentDiff(&m, &got) != "" {
				t.Fatalf("case %d: master %s@%s not replicated (got %+v)\nplan %q", iter, m.UniqueID, m.Name, got, ops(p))
			}
		}
		for _, f := range in.Replica.Folders {
			if f.UniqueID[0] != 'r' {
				continue
			}
			name, present := s.holder(f.UniqueID)
			if withEv[f.UniqueID] {
				if present {
					t.Fatalf("case %d: %s has evidence but was kept at %s", iter, f.UniqueID, name)
				}
				continue
			}
			if !present || s.byName[name].HighestModSeq != f.HighestModSeq {
				t.Fatalf("case %d: replica-only %s without evidence lost or changed\nplan %q", iter, f.UniqueID, ops(p))
			}
		}
		for uid := range s.deleted {
			if !withEv[uid] {
				t.Fatalf("case %d: deleted %s without evidence", iter, uid)
			}
		}
		// Idempotent: planning again against the result changes nothing.
		in2 := in
		in2.Replica = Snapshot{Folders: s.folders()}
		if p2 := Compute(in2); !p2.Empty() {
			t.Fatalf("case %d: second plan not empty: %q", iter, ops(p2))
		}
	}
}

func BenchmarkCompute(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	in, _ := randomCase(r)
	for b.Loop() {
		Compute(in)
	}
}
