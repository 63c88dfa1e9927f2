package replication

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseLog(t *testing.T) {
	in := "MAILBOX user.alice\n" +
		"MAILBOX \"user.fred.My Folder\"\r\n" +
		"\n" +
		"RENAME \"user.fred.a(b)\" \"DELETED.user.fred.a(b).6B0B8EED\"\n" +
		"APPEND user.fred.&ANw-mlaut\n" +
		"MAILBOX \"user.x.q\\\"uote\\\\back\\{b\\}\"\n" +
		"seen bob 5qb988epx9doxrsagmoc2f7b\n" +
		"MAILBOX {5+}\nuser.\n" +
		"BOGUS x\n" +
		"MAILBOX\n" +
		"MAILBOX a b\n" +
		"MAILBOX \"unterminated\n" +
		"MAILBOX ok)garbage\n" +
		"SUB bob user.bob.Sent\n" +
		"MAILBOX torn"
	entries, bad := ParseLog([]byte(in))
	var got []string
	for _, e := range entries {
		got = append(got, e.Type+"|"+strings.Join(e.Args, "|"))
	}
	want := []string{
		"MAILBOX|user.alice",
		"MAILBOX|user.fred.My Folder",
		"RENAME|user.fred.a(b)|DELETED.user.fred.a(b).6B0B8EED",
		"APPEND|user.fred.&ANw-mlaut",
		`MAILBOX|user.x.q"uote\back{b}`,
		"SEEN|bob|5qb988epx9doxrsagmoc2f7b",
		"MAILBOX|user.",
		"SUB|bob|user.bob.Sent",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("entries:\n got %q\nwant %q", got, want)
	}
	var badLines []int
	for _, b := range bad {
		badLines = append(badLines, b.Line)
		if b.Err == "" {
			t.Errorf("bad line %d without a reason", b.Line)
		}
	}
	if wantBad := []int{10, 11, 12, 13, 14, 16}; !slices.Equal(badLines, wantBad) {
		t.Fatalf("bad lines %v (%+v), want %v", badLines, bad, wantBad)
	}
	if entries[7].Line != 15 {
		t.Errorf("line numbers: SUB at %d, want 15", entries[7].Line)
	}
}

func TestQuoteLogArgRoundTrip(t *testing.T) {
	for _, s := range []string{"user.a", "user.a.My Folder", `user.a.q"x`, `b\s`, "{}", "", "tab\there", "8bit-\xc3\xbc", "a(b)"} {
		entries, bad := ParseLog([]byte("MAILBOX " + QuoteLogArg(s) + "\n"))
		if len(bad) != 0 || len(entries) != 1 || entries[0].Args[0] != s {
			t.Errorf("round trip %q: %+v %+v", s, entries, bad)
		}
	}
}

func FuzzParseLog(f *testing.F) {
	f.Add([]byte("MAILBOX user.a\nRENAME a \"b c\"\n"))
	f.Add([]byte("MAILBOX {3}\nabc\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, bad := ParseLog(data)
		for _, e := range entries {
			if n := logArity[e.Type]; n != len(e.Args) {
				t.Fatalf("entry %+v has wrong arity", e)
			}
		}
		_ = bad
	})
}

func TestGroupEntries(t *testing.T) {
	entries, _ := ParseLog([]byte(strings.Join([]string{
		"MAILBOX user.alice.A",
		"APPEND user.alice.A",
		"MAILBOX user.bob",
		"RENAME user.carol.X user.dave.Y",
		"MAILBOX user.carol.X",
		"MAILBOX user.dave.Y",
		"DOUBLEMAILBOX user.erin user.frank.Z",
		"UNMAILBOX user.gina.Old",
		"SEEN hank abc",
		"QUOTA user.ivy",
		"MAILBOX shared.stuff",
		"ANNOTATION \"\"",
		"USER jack",
	}, "\n") + "\n"))
	g := GroupEntries(entries)
	var got []string
	for _, b := range g.Batches {
		var us []string
		for _, u := range b.Users {
			s := u.User
			if u.Full {
				s += "+full"
			}
			if u.Meta {
				s += "+meta"
			}
			if len(u.Mailboxes) > 0 {
				s += "[" + strings.Join(u.Mailboxes, ",") + "]"
			}
			us = append(us, s)
		}
		got = append(got, strings.Join(us, " & "))
	}
	want := []string{
		"alice[user.alice.A]",
		"bob[user.bob]",
		"carol+full[user.carol.X] & dave+full[user.dave.Y]",
		"erin[user.erin] & frank[user.frank.Z]",
		"gina+full[user.gina.Old]",
		"hank+meta",
		"ivy+meta",
		"jack+full",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("batches:\n got %q\nwant %q", got, want)
	}
	var skipped []string
	for _, e := range g.Skipped {
		skipped = append(skipped, e.String())
	}
	if !reflect.DeepEqual(skipped, []string{"MAILBOX shared.stuff", "ANNOTATION "}) {
		t.Fatalf("skipped %q", skipped)
	}
}

func TestNeedsFullSync(t *testing.T) {
	a := fo("u1", "user.alice.A", 1)
	b := fo("u2", "user.alice.B", 1)
	if full, why := NeedsFullSync([]string{"user.alice.A"}, []Folder{a}, []Folder{a}); full {
		t.Fatalf("same folder escalated: %s", why)
	}
	if full, _ := NeedsFullSync([]string{"user.alice.A"}, []Folder{a}, nil); !full {
		t.Fatal("master-only not escalated")
	}
	if full, _ := NeedsFullSync([]string{"user.alice.A"}, nil, []Folder{a}); !full {
		t.Fatal("replica-only not escalated")
	}
	c := fo("u9", "user.alice.A", 1)
	if full, _ := NeedsFullSync([]string{"user.alice.A"}, []Folder{a}, []Folder{c}); !full {
		t.Fatal("uniqueid collision not escalated")
	}
	moved := b
	moved.UniqueID = "u1"
	if full, _ := NeedsFullSync([]string{"user.alice.A", "user.alice.B"}, []Folder{a}, []Folder{moved}); !full {
		t.Fatal("rename not escalated")
	}
	if full, _ := NeedsFullSync([]string{"user.alice.Gone"}, nil, nil); full {
		t.Fatal("absent at both ends escalated")
	}
}
