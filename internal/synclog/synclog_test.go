package synclog

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
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
	entries, bad := Parse([]byte(in))
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
		entries, bad := Parse([]byte("MAILBOX " + QuoteArg(s) + "\n"))
		if len(bad) != 0 || len(entries) != 1 || entries[0].Args[0] != s {
			t.Errorf("round trip %q: %+v %+v", s, entries, bad)
		}
	}
}

func FuzzParseLog(f *testing.F) {
	f.Add([]byte("MAILBOX user.a\nRENAME a \"b c\"\n"))
	f.Add([]byte("MAILBOX {3}\nabc\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, bad := Parse(data)
		for _, e := range entries {
			if n := logArity[e.Type]; n != len(e.Args) {
				t.Fatalf("entry %+v has wrong arity", e)
			}
		}
		_ = bad
	})
}

func TestGroupEntries(t *testing.T) {
	entries, _ := Parse([]byte(strings.Join([]string{
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
		"RENAME user.kim.A user.kim.B",
		"MAILBOX user.kim.A",
		"MAILBOX user.kim.B",
		"RENAME user.lee user.lee.Old",
		"RENAME user.mo.X \"DELETED.user.mo.X.6B0B8E30\"",
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
		"kim[user.kim.A,user.kim.B]",
		"lee+full[user.lee,user.lee.Old]",
		"mo[DELETED.user.mo.X.6B0B8E30,user.mo.X]",
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

func mustParse(t *testing.T, log string) []Entry {
	t.Helper()
	entries, bad := Parse([]byte(log))
	if len(bad) > 0 {
		t.Fatalf("bad lines %+v", bad)
	}
	return entries
}

// parseLogWhole is the former in-memory parser, kept as the reference the streaming
// Scanner must agree with.
func parseLogWhole(data []byte) (entries []Entry, bad []BadLine) {
	line := 1
	for len(data) > 0 {
		start, startLine := data, line
		e, rest, lines, err := parseEntry(data)
		if err == nil && e == nil { // blank line
			data, line = rest, line+lines
			continue
		}
		if err == nil {
			e.Type = strings.ToUpper(e.Type)
			if n, ok := logArity[e.Type]; !ok {
				err = fmt.Errorf("unknown entry type %q", e.Type)
			} else if len(e.Args) != n {
				err = fmt.Errorf("%s takes %d argument(s), got %d", e.Type, n, len(e.Args))
			}
		}
		if err != nil {
			// Skip to the end of the physical line where the entry started.
			i := bytes.IndexByte(start, '\n')
			text := start
			if i >= 0 {
				text, data = start[:i], start[i+1:]
			} else {
				data = nil
			}
			bad = append(bad, BadLine{Line: startLine, Text: strings.TrimRight(string(text), "\r"), Err: err.Error()})
			line = startLine + 1
			continue
		}
		e.Line = startLine
		entries = append(entries, *e)
		data, line = rest, line+lines
	}
	return entries, bad
}

// FuzzLogScannerMatchesWhole: reading a log through the streaming scanner, whatever the
// read sizes, gives exactly the entries and malformed lines of parsing it whole.
func FuzzLogScannerMatchesWhole(f *testing.F) {
	f.Add([]byte("MAILBOX user.a\nMAILBOX {6}\nuser.b\nBOGUS\n\nRENAME user.a.X \"user.b.Y Z\"\nMAILBOX user.t"), 3)
	f.Add([]byte("MAILBOX {5+}\r\nab\ncd\nUSER x\r\n"), 1)
	f.Add([]byte("MAILBOX {99}\nUSER dave\nMAILBOX {12\n}\nUSER erin\n"), 7)
	f.Fuzz(func(t *testing.T, data []byte, chunk int) {
		wantE, wantB := parseLogWhole(data)
		s := NewScanner(iotest.HalfReader(&chunkReader{data: data, n: max(chunk%17, 1)}))
		var gotE []Entry
		var gotB []BadLine
		for {
			e, b, ok := s.Next()
			if !ok {
				break
			}
			if b != nil {
				gotB = append(gotB, *b)
			} else {
				gotE = append(gotE, e)
			}
		}
		if s.Err() != nil {
			t.Fatal(s.Err())
		}
		if !reflect.DeepEqual(gotE, wantE) || !reflect.DeepEqual(gotB, wantB) {
			t.Fatalf("scanner differs from the whole-buffer parse\n got %+v %+v\nwant %+v %+v", gotE, gotB, wantE, wantB)
		}
	})
}

type chunkReader struct {
	data []byte
	n    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.n)], c.data)
	c.data = c.data[n:]
	return n, nil
}

// TestLogScannerLongLine: a line longer than the scanner holds is one malformed line
// with its number; the lines around it are read as usual.
func TestLogScannerLongLine(t *testing.T) {
	long := "MAILBOX user.x" + strings.Repeat("y", maxLogLine+10)
	in := "MAILBOX user.a\n" + long + "\nMAILBOX user.b\nMAILBOX {3}\n" + long + "\nUSER c\n"
	entries, bad := Parse([]byte(in))
	var got []string
	for _, e := range entries {
		got = append(got, fmt.Sprint(e.Line, " ", e.Args[0]))
	}
	if fmt.Sprint(got) != "[1 user.a 3 user.b 6 c]" {
		t.Fatalf("entries %v", got)
	}
	if len(bad) != 3 || bad[0].Line != 2 || bad[1].Line != 4 || bad[2].Line != 5 || !strings.Contains(bad[0].Err, "longer than") {
		t.Fatalf("bad lines %+v", bad)
	}
}
