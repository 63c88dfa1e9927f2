package plan

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// fuzzNames are the names a fuzzed user state can use: INBOXes, children, a nested
// folder, DELETED.* names, and the "-aside" style names the planner itself picks.
var fuzzNames = []string{
	"user.alice", "user.alice.A", "user.alice.B", "user.alice.C", "user.alice.A.X",
	"user.alice.Sent", "user.bob", "user.bob.A", "user.bob.B",
	"DELETED.user.alice.A.6B0B0001", "DELETED.user.bob.B.6B0B0002", "DELETED.user.alice.B.6B0B0003",
}

// byteSource hands out small numbers from the fuzzer's bytes (zeros once exhausted).
type byteSource struct{ b []byte }

func (s *byteSource) n(k int) int {
	if len(s.b) == 0 || k <= 1 {
		return 0
	}
	v := int(s.b[0])
	s.b = s.b[1:]
	return v % k
}

// fuzzCase decodes bytes into a batch: master folders, a replica derived from them
// (missing, stale, renamed, or the name taken by another uniqueid), replica-only
// folders, and evidence about those (tombstone, ledger plus master lookup, ledger only,
// none). It returns the uniqueids the planner is allowed to delete.
func fuzzCase(data []byte) (Input, map[string]bool) {
	s := &byteSource{b: data}
	in := Input{Pair: "fuzz", Now: time.Unix(1_800_000_000, 0), Users: []string{"alice", "bob"}}
	ev := Evidence{Tombstones: map[string]Tombstone{}, MasterLookup: map[string]string{}, History: map[string][]string{}}
	led := ledger{}
	deletable := map[string]bool{}
	mNames, rNames := map[string]bool{}, map[string]bool{}
	nm := s.n(len(fuzzNames) + 1)
	for i := 0; i < nm; i++ {
		name := fuzzNames[s.n(len(fuzzNames))]
		if mNames[name] {
			continue
		}
		mNames[name] = true
		m := fo(fmt.Sprintf("m%d", i), name, uint64(s.n(4)+1))
		in.Master.Folders = append(in.Master.Folders, m)
		switch s.n(5) {
		case 0: // missing on the replica
		case 1, 2: // same name, content maybe stale
			r := m
			r.HighestModSeq = uint64(s.n(4) + 1)
			r.LastUID = uint32(r.HighestModSeq)
			if !rNames[r.Name] {
				rNames[r.Name] = true
				in.Replica.Folders = append(in.Replica.Folders, r)
			}
		case 3: // renamed: the replica still has it under another name
			r := m
			r.Name = fuzzNames[s.n(len(fuzzNames))]
			if !rNames[r.Name] {
				rNames[r.Name] = true
				in.Replica.Folders = append(in.Replica.Folders, r)
				if s.n(2) == 0 {
					ev.History[m.UniqueID] = []string{r.Name}
				}
			}
		case 4: // the replica holds another uniqueid at this name (split-brain)
			uid := fmt.Sprintf("r%d", i)
			if !rNames[name] {
				rNames[name] = true
				in.Replica.Folders = append(in.Replica.Folders, fo(uid, name, uint64(s.n(9)+1)))
				addEvidence(s, uid, name, &ev, led, deletable)
			}
		}
	}
	for i, n := 0, s.n(5); i < n; i++ {
		name := fuzzNames[s.n(len(fuzzNames))]
		if rNames[name] {
			continue
		}
		rNames[name] = true
		uid := fmt.Sprintf("x%d", i)
		in.Replica.Folders = append(in.Replica.Folders, fo(uid, name, uint64(s.n(9)+1)))
		addEvidence(s, uid, name, &ev, led, deletable)
	}
	ev.Ledger = led
	in.Evidence = ev
	return in, deletable
}

func addEvidence(s *byteSource, uid, name string, ev *Evidence, led ledger, deletable map[string]bool) {
	switch s.n(5) {
	case 0:
		ev.Tombstones[uid] = Tombstone{UniqueID: uid, Name: name, Orphan: s.n(2) == 0}
		deletable[uid] = true
	case 1:
		led[uid] = name
		ev.MasterLookup[uid] = ""
		deletable[uid] = true
	case 2:
		led[uid] = name // seen once, but not looked up now: not evidence
	case 3:
		ev.MasterLookup[uid] = "" // looked up, never in the ledger: not evidence
	}
}

// FuzzPlan checks the planner on fuzzed pairs of user states: the plan is deterministic,
// applies cleanly to the simulated replica (which enforces sync_server's preconditions
// and the executor's uniqueid re-check), deletes only uniqueids the master gave evidence
// for, never loses or alters a replica-only folder without evidence, brings every master
// folder over unless a kept INBOX blocks it, and a second plan against the result is empty.
func FuzzPlan(f *testing.F) {
	for _, s := range []string{
		"",
		"\x03\x00\x01\x01\x01\x02\x02\x01",
		"\x05\x00\x03\x03\x01\x01\x03\x02\x00\x02\x03\x00\x01",
		"\x06\x01\x04\x01\x00\x02\x04\x00\x01\x03\x03\x05\x01\x00",
		"\x04\x02\x03\x01\x00\x03\x03\x02\x01\x04\x03\x07\x01\x00\x04\x02\x01",
		"\x08\x00\x01\x01\x01\x03\x03\x09\x02\x05\x04\x04\x01\x00\x03\x07\x02\x06\x03\x0a\x00\x01\x04\x08\x03\x03",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, deletable := fuzzCase(data)
		p := Compute(in)
		if p2 := Compute(in); !slices.Equal(ops(p), ops(p2)) || !slices.Equal(decisions(p), decisions(p2)) {
			t.Fatalf("not deterministic:\n%q\n%q", ops(p), ops(p2))
		}
		s := newSim(in.Replica.Folders)
		if err := s.run(p); err != nil {
			t.Fatalf("plan does not apply: %v\nmaster %v\nreplica %v\nplan %q", err, in.Master.Folders, in.Replica.Folders, ops(p))
		}
		for _, a := range p.Actions {
			if a.Op == OpDelete && !deletable[a.UniqueID] {
				t.Fatalf("delete of %s at %s without evidence\nplan %q", a.UniqueID, a.Name, ops(p))
			}
		}
		for _, d := range p.Decisions {
			if d.Action == report.ActionDelete && d.Evidence == report.EvidenceNone {
				t.Fatalf("delete decision without evidence: %+v", d)
			}
		}
		master := map[string]bool{}
		for _, m := range in.Master.Folders {
			master[m.UniqueID] = true
		}
		for _, f := range in.Replica.Folders {
			if master[f.UniqueID] {
				continue
			}
			name, present := s.holder(f.UniqueID)
			switch {
			case deletable[f.UniqueID] && present:
				t.Fatalf("%s has evidence of deletion but is kept at %s\nplan %q", f.UniqueID, name, ops(p))
			case !deletable[f.UniqueID] && (!present || s.byName[name].HighestModSeq != f.HighestModSeq):
				t.Fatalf("replica-only %s without evidence lost or changed\nplan %q", f.UniqueID, ops(p))
			}
		}
		blockedINBOX := false
		for _, d := range p.Decisions {
			blockedINBOX = blockedINBOX || d.Action == report.ActionKeep && d.MasterName != "" && mboxname.ParseName(d.ReplicaName).Rest == ""
		}
		if blockedINBOX && p.Blocked == 0 {
			t.Fatalf("a kept INBOX blocks the master's but the plan does not count it as blocked")
		}
		if p.Blocked == 0 {
			for _, m := range in.Master.Folders {
				got, ok := s.byName[m.Name]
				if !ok || got.UniqueID != m.UniqueID || ContentDiff(&m, &got) != "" {
					t.Fatalf("master %s@%s not replicated (got %+v)\nmaster %v\nreplica %v\nplan %q", m.UniqueID, m.Name, got, in.Master.Folders, in.Replica.Folders, ops(p))
				}
			}
		}
		in2 := in
		in2.Replica = Snapshot{Folders: s.folders()}
		if p2 := Compute(in2); !p2.Empty() {
			t.Fatalf("does not converge: second plan %q\nmaster %v\nreplica %v\nfirst plan %q", ops(p2), in.Master.Folders, in.Replica.Folders, ops(p))
		}
	})
}
