package mboxdb

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
)

// The dumps in testdata are real `cyr_dbtool … twoskip show` output from a Cyrus 3.6.1
// master after: create Work, Work.Old, "My Folder"; append to Work; rename Work →
// Projects (Work.Old follows); delete Projects.Old and "My Folder".

func readDump(t *testing.T, name string) *DB {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	db := Parse(b)
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
	db := Parse([]byte("Nuser\x1fa\t%(T e I x\n\x1fVER\x1f\t2\nIabc\tnot a kvlist\nNuser\x1fb\t%(T ed I y M 5)\n"))
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
	if _, err := NewReader("", filepath.Join(t.TempDir(), "nope.conf")); err == nil {
		t.Fatal("missing imapd.conf accepted")
	}
}

// TestReadDBToolRecords: cyr_dbtool's batch output (astrings: atoms with 0x1F, quoted
// names with spaces, {N} literals for values) parses; a garbled or cut output is an
// error, never a panic or a hang.
func TestReadDBToolRecords(t *testing.T) {
	out := "\"Nuser\x1falice\x1fMy Folder\" {16}\r\n%(T ed I u1 M 5)\nNuser\x1falice {11}\r\n%(T e I u2)\nIu2 NIL\n"
	var got []dbRecord
	if err := readDBToolRecords(bufio.NewReader(strings.NewReader(out)), func(r dbRecord) { got = append(got, r) }); err != nil {
		t.Fatal(err)
	}
	want := []dbRecord{{"Nuser\x1falice\x1fMy Folder", "%(T ed I u1 M 5)"}, {"Nuser\x1falice", "%(T e I u2)"}, {"Iu2", ""}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q", got)
	}
	for _, bad := range []string{"Nx {99}\r\nshort\n", "Nx\n", "\"Nx {3}\r\nabc\n", "Nx {3}abc\n", "Nx {-1}\r\n\n", "Nx {3}\r\nabc"} {
		if err := readDBToolRecords(bufio.NewReader(strings.NewReader(bad)), func(dbRecord) {}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestInternalToDBName(t *testing.T) {
	for _, n := range []string{"user.alice", "user.alice.Sent.2024", "example.com!user.bob.Work", "DELETED.user.al^ice.X.6B0B9E57"} {
		db := mboxname.InternalToDBName(n)
		_, path, _ := strings.Cut(db, "\x1d")
		if strings.Contains(path, ".") || mboxname.DBNameToInternal(db) != n {
			t.Errorf("%q → %q → %q", n, db, mboxname.DBNameToInternal(db))
		}
	}
	if got := mboxname.DeletedRoot("bob@example.com"); got != "example.com!DELETED.user.bob" {
		t.Errorf("deletedRoot: %q", got)
	}
	if got := mboxname.DeletedRoot("alice"); got != "DELETED.user.alice" {
		t.Errorf("deletedRoot: %q", got)
	}
}

func TestReadMasterSettings(t *testing.T) {
	p := filepath.Join(t.TempDir(), "imapd.conf")
	os.WriteFile(p, []byte("configdirectory: /c\n# deletedprefix: NO\ndeletedprefix: Trash-bin\ndelete_mode: immediate\nunixhierarchysep: no\naltnamespace: 0\nvirtdomains: userid\n"), 0o600)
	s, err := mboxname.ReadMasterSettings(p)
	want := mboxname.MasterSettings{ConfigDirectory: "/c", DeletedPrefix: "Trash-bin", DeleteMode: "immediate", VirtDomains: "userid"}
	if err != nil || s != want || s.Separator() != "." {
		t.Fatalf("got %+v %v, want %+v", s, err, want)
	}
	os.WriteFile(p, []byte("configdirectory: /c\n"), 0o600)
	if s, err := mboxname.ReadMasterSettings(p); err != nil || s.DeletedPrefix != "DELETED" || s.DeleteMode != "delayed" || s.Separator() != "/" || s.VirtDomains != "off" {
		t.Fatalf("defaults: %+v %v", s, err)
	}
	for _, bad := range []string{"deletedprefix: a.b", "delete_mode: soon", "virtdomains: maybe", "unixhierarchysep: perhaps"} {
		os.WriteFile(p, []byte("configdirectory: /c\n"+bad+"\n"), 0o600)
		if _, err := mboxname.ReadMasterSettings(p); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
