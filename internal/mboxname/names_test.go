package mboxname

import "testing"

func TestNameConversions(t *testing.T) {
	for _, tc := range []struct{ db, internal, user, rest string }{
		{"user\x1falice", "user.alice", "alice", ""},
		{"user\x1falice\x1fWork\x1fOld", "user.alice.Work.Old", "alice", "Work.Old"},
		{"example.com\x1duser\x1fjohn.doe", "example.com!user.john^doe", "john.doe@example.com", ""},
		{"example.com\x1duser\x1fjohn.doe\x1fWork.2026", "example.com!user.john^doe.Work^2026", "john.doe@example.com", "Work^2026"},
		{"example.com\x1dDELETED\x1fuser\x1fjohn.doe\x1fOld.Stuff\x1f6B153C06", "example.com!DELETED.user.john^doe.Old^Stuff.6B153C06", "john.doe@example.com", "Old^Stuff.6B153C06"},
		{"user\x1fbob\x1fWith Space", "user.bob.With Space", "bob", "With Space"},
		{"shared\x1fteam.x", "shared.team^x", "", "shared.team^x"},
	} {
		if got := DBNameToInternal(tc.db); got != tc.internal {
			t.Errorf("DBNameToInternal(%q) = %q, want %q", tc.db, got, tc.internal)
		}
		if got := InternalToDBName(tc.internal); got != tc.db {
			t.Errorf("InternalToDBName(%q) = %q, want %q", tc.internal, got, tc.db)
		}
		if n := ParseName(tc.internal); n.User != tc.user || n.Rest != tc.rest {
			t.Errorf("ParseName(%q) = %+v, want user %q rest %q", tc.internal, n, tc.user, tc.rest)
		}
	}
	if got := FolderName("john.doe@example.com", "Work^2026"); got != "example.com!user.john^doe.Work^2026" {
		t.Errorf("FolderName = %q", got)
	}
}

func TestDeletedPrefixSetting(t *testing.T) {
	t.Cleanup(func() { _ = SetDeletedPrefix("DELETED") })
	const name = "Trashed.user.alice.Sent.6B153D29"
	if n := ParseName(name); n.Deleted || n.User != "" {
		t.Fatalf("with DELETED, %q parsed as %+v", name, n)
	}
	if err := CheckOwnNames("alice", []string{"user.alice", name}); err == nil {
		t.Fatal("a name of another prefix passed CheckOwnNames")
	}
	if err := SetDeletedPrefix("Trashed"); err != nil {
		t.Fatal(err)
	}
	if n := ParseName(name); !n.Deleted || n.User != "alice" || n.Rest != "Sent.6B153D29" {
		t.Fatalf("with Trashed, %q parsed as %+v", name, n)
	}
	if err := CheckOwnNames("alice", []string{"user.alice", name}); err != nil {
		t.Fatal(err)
	}
	if got := DeletedRoot("bob@example.com"); got != "example.com!Trashed.user.bob" {
		t.Fatalf("deletedRoot = %q", got)
	}
	for _, bad := range []string{"", "a.b", "user", "x!y", "a b", "a^b", "a/b"} {
		if SetDeletedPrefix(bad) == nil {
			t.Errorf("prefix %q accepted", bad)
		}
	}
}
