package plan

import (
	"slices"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
)

func TestNeedsFullSync(t *testing.T) {
	a := fo("u1", "user.alice.A", 1)
	b := fo("u2", "user.alice.B", 1)
	if full, why := NeedsFullSync([]string{"user.alice.A"}, []Folder{a}, []Folder{a}, nil); full {
		t.Fatalf("same folder escalated: %s", why)
	}
	if full, _ := NeedsFullSync([]string{"user.alice.A"}, []Folder{a}, nil, nil); !full {
		t.Fatal("master-only not escalated")
	}
	if full, _ := NeedsFullSync([]string{"user.alice.A"}, nil, []Folder{a}, nil); !full {
		t.Fatal("replica-only not escalated")
	}
	c := fo("u9", "user.alice.A", 1)
	if full, _ := NeedsFullSync([]string{"user.alice.A"}, []Folder{a}, []Folder{c}, nil); !full {
		t.Fatal("uniqueid collision not escalated")
	}
	// A rename with both names in the batch and the same uniqueid at both ends is
	// planned at mailbox level.
	moved := b
	moved.UniqueID = "u1"
	if full, why := NeedsFullSync([]string{"user.alice.A", "user.alice.B"}, []Folder{a}, []Folder{moved}, nil); full {
		t.Fatalf("matched rename escalated: %s", why)
	}
	// Only one of the names in the batch: the other end's folder is not seen, escalate.
	if full, _ := NeedsFullSync([]string{"user.alice.A"}, []Folder{a}, nil, nil); !full {
		t.Fatal("unmatched master folder not escalated")
	}
	// The old name's folder on the replica is another folder (other uniqueid): escalate.
	other := b
	other.UniqueID = "u7"
	if full, _ := NeedsFullSync([]string{"user.alice.A", "user.alice.B"}, []Folder{a}, []Folder{other}, nil); !full {
		t.Fatal("rename with a uniqueid mismatch not escalated")
	}
	// The target name is held on the replica by another folder: escalate.
	if full, _ := NeedsFullSync([]string{"user.alice.A", "user.alice.B"}, []Folder{a}, []Folder{moved, c}, nil); !full {
		t.Fatal("occupied rename target not escalated")
	}
	// A uniqueid held twice at one end: escalate.
	twice := fo("u1", "user.alice.C", 1)
	if full, _ := NeedsFullSync([]string{"user.alice.A", "user.alice.B", "user.alice.C"}, []Folder{a}, []Folder{moved, twice}, nil); !full {
		t.Fatal("duplicate uniqueid not escalated")
	}
	// Empty uniqueids prove nothing.
	na, nb := fo("", "user.alice.A", 1), fo("", "user.alice.B", 1)
	if full, _ := NeedsFullSync([]string{"user.alice.A", "user.alice.B"}, []Folder{na}, []Folder{nb}, nil); !full {
		t.Fatal("empty uniqueids matched")
	}
	if full, _ := NeedsFullSync([]string{"user.alice.Gone"}, nil, nil, nil); full {
		t.Fatal("absent at both ends escalated")
	}
	// New on the master: created at mailbox level only once the replica, asked by
	// uniqueid, holds it nowhere, and only under a parent both ends hold.
	absent := map[string]bool{"u1": true}
	if full, why := NeedsFullSync([]string{"user.alice.A"}, []Folder{a}, nil, absent); full {
		t.Fatalf("new folder under INBOX escalated: %s", why)
	}
	if full, _ := NeedsFullSync([]string{"user.alice.A"}, []Folder{a}, nil, map[string]bool{"u1": false}); !full {
		t.Fatal("master-only folder held elsewhere on the replica not escalated")
	}
	deep := fo("u1", "user.alice.P.A", 1)
	if full, _ := NeedsFullSync([]string{"user.alice.P.A"}, []Folder{deep}, nil, absent); !full {
		t.Fatal("new folder under a parent not read at both ends not escalated")
	}
	parent := fo("u5", "user.alice.P", 1)
	if full, why := NeedsFullSync([]string{"user.alice.P", "user.alice.P.A"}, []Folder{parent, deep}, []Folder{parent}, absent); full {
		t.Fatalf("new folder under a parent held at both ends escalated: %s", why)
	}
	otherParent := fo("u6", "user.alice.P", 1)
	if full, _ := NeedsFullSync([]string{"user.alice.P", "user.alice.P.A"}, []Folder{parent, deep}, []Folder{otherParent}, absent); !full {
		t.Fatal("new folder under a parent held by different uniqueids not escalated")
	}
}

// TestMailboxLevelRenamePlan: the GET MAILBOXES answers for a logged rename (both names,
// at both ends) pass NeedsFullSync, and the plan for them is the rename plus the content
// update of that folder alone: no create, no delete.
func TestMailboxLevelRenamePlan(t *testing.T) {
	g := synclog.GroupEntries(logEntries(t, "RENAME user.alice.Old user.alice.New\nMAILBOX user.alice.Old\nMAILBOX user.alice.New\n"))
	if len(g.Batches) != 1 || g.Batches[0].Users[0].Full {
		t.Fatalf("batches %+v", g.Batches)
	}
	names := g.Batches[0].Users[0].Mailboxes
	master := []Folder{fo("u1", "user.alice.New", 3)} // renamed, then one more change
	replica := []Folder{fo("u1", "user.alice.Old", 2)}
	if full, why := NeedsFullSync(names, master, replica, nil); full {
		t.Fatalf("escalated: %s", why)
	}
	p := Compute(Input{Pair: "p", Now: time.Now(), Users: []string{"alice"},
		Master: Snapshot{Folders: master}, Replica: Snapshot{Folders: replica}})
	got := ops(p)
	want := []string{"rename user.alice.Old>user.alice.New", "update user.alice.New"}
	if !slices.Equal(got, want) {
		t.Fatalf("plan %q, want %q", got, want)
	}
	for _, d := range p.Decisions {
		if d.Action == report.ActionDelete || d.Action == report.ActionCreate {
			t.Fatalf("unexpected decision %+v", d)
		}
	}
}

func logEntries(t *testing.T, log string) []synclog.Entry {
	t.Helper()
	entries, bad := synclog.Parse([]byte(log))
	if len(bad) > 0 {
		t.Fatalf("bad lines %+v", bad)
	}
	return entries
}
