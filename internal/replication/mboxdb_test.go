package replication

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// The dumps in testdata are real `cyr_dbtool … twoskip show` output from a Cyrus 3.6.1
// master after: create Work, Work.Old, "My Folder"; append to Work; rename Work →
// Projects (Work.Old follows); delete Projects.Old and "My Folder".

func readDump(t *testing.T, name string) *MailboxesDB {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	db := ParseMailboxesDB(b)
	if len(db.Bad) != 0 {
		t.Fatalf("unparsed records: %v", db.Bad)
	}
	return db
}

func TestMailboxesDBDelayed(t *testing.T) {
	db := readDump(t, "mailboxes-delayed.dump")
	// Renamed and delayed-deleted folders are live (under their new or DELETED.* name):
	// the tombstones at their old names are not deletions.
	if len(db.Tombstones) != 0 {
		t.Fatalf("tombstones %v, want none (everything is live somewhere)", db.Tombstones)
	}
	if got := db.Live["9bra95p1d0olu2xcruyubgow"]; got != "user.alice.Projects" {
		t.Fatalf("live Projects = %q", got)
	}
	if got := db.Live["0zf6izvu8wxrllzcmo8o767j"]; got != "DELETED.user.alice.My Folder.6B0B9E57" {
		t.Fatalf("live My Folder = %q", got)
	}
	if got := db.History["j9wt033988b19fmjijvptuj4"]; !slices.Equal(got, []string{"user.alice.Projects.Old", "user.alice.Work.Old"}) {
		t.Fatalf("history %q", got)
	}
}

func TestMailboxesDBImmediate(t *testing.T) {
	db := readDump(t, "mailboxes-immediate.dump")
	want := map[string]string{
		"4edwok1rz5cb4rkecgdvqrsy": "user.alice.Projects.Old",
		"b65f0icoitvizo9jv9dopqjw": "user.alice.My Folder",
	}
	if len(db.Tombstones) != len(want) {
		t.Fatalf("tombstones %v", db.Tombstones)
	}
	for uid, name := range want {
		if tb := db.Tombstones[uid]; tb.Name != name || tb.Orphan {
			t.Errorf("tombstone %s = %+v, want at %s", uid, tb, name)
		}
	}
	if _, ok := db.Tombstones["752z4lbzf9t5gj3uyw7xazkt"]; ok {
		t.Error("renamed folder's old-name tombstone taken as a deletion")
	}
}

func TestMailboxesDBPurged(t *testing.T) {
	// After cyr_expire -D 0: the DELETED.* N records are gone, the I records orphaned.
	db := readDump(t, "mailboxes-purged.dump")
	for _, uid := range []string{"0zf6izvu8wxrllzcmo8o767j", "j9wt033988b19fmjijvptuj4"} {
		if _, ok := db.Tombstones[uid]; !ok {
			t.Errorf("purged %s has no deletion evidence: %v", uid, db.Tombstones)
		}
	}
	if _, ok := db.Tombstones["9bra95p1d0olu2xcruyubgow"]; ok {
		t.Error("live Projects taken as deleted")
	}
}

func TestMailboxesDBGarbage(t *testing.T) {
	db := ParseMailboxesDB([]byte("Nuser\x1fa\t%(T e I x\n\x1fVER\x1f\t2\nIabc\tnot a kvlist\nNuser\x1fb\t%(T ed I y M 5)\n"))
	if len(db.Bad) != 2 {
		t.Fatalf("bad records: %v", db.Bad)
	}
	if db.Tombstones["y"].Name != "user.b" {
		t.Fatalf("good record lost: %+v", db.Tombstones)
	}
}

func TestConfigDirectory(t *testing.T) {
	p := filepath.Join(t.TempDir(), "imapd.conf")
	os.WriteFile(p, []byte("servername: x\nconfigdirectory:   /var/lib/x \n"), 0o600)
	if d, err := ConfigDirectory(p); err != nil || d != "/var/lib/x" {
		t.Fatalf("got %q %v", d, err)
	}
	os.WriteFile(p, []byte("servername: x\n"), 0o600)
	if _, err := ConfigDirectory(p); err == nil {
		t.Fatal("missing configdirectory accepted")
	}
	if _, err := ReadMailboxesDB(context.Background(), "", filepath.Join(t.TempDir(), "nope.conf")); err == nil {
		t.Fatal("missing imapd.conf accepted")
	}
}

func TestCachedMailboxesDB(t *testing.T) {
	n := 0
	read := CachedMailboxesDB(time.Hour, func(context.Context) (*MailboxesDB, error) {
		n++
		return &MailboxesDB{}, nil
	})
	for range 3 {
		if _, err := read(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n != 1 {
		t.Fatalf("read %d times", n)
	}
	fresh := CachedMailboxesDB(0, func(context.Context) (*MailboxesDB, error) { n++; return &MailboxesDB{}, nil })
	fresh(context.Background())
	fresh(context.Background())
	if n != 3 {
		t.Fatalf("ttl 0 cached: %d", n)
	}
}
