package synclog

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzSyncLogParser checks the sync-log parser on arbitrary bytes: it never panics or hangs,
// every entry it returns has a known type and the right arity, every malformed line is
// reported on one line, an accepted entry re-formatted the way Cyrus writes it parses
// back to the same entry, and a valid line that follows garbage is never lost.
func FuzzSyncLogParser(f *testing.F) {
	for _, s := range []string{
		"MAILBOX user.alice\n",
		"APPEND user.alice.Sent\r\nUSER bob\n\nMETA bob\n",
		"RENAME user.a.X \"DELETED.user.a.X.6B0B8E30\"\nMAILBOX user.a.X\nMAILBOX \"DELETED.user.a.X.6B0B8E30\"\n",
		"MAILBOX \"user.fred.My Folder\"\nMAILBOX user.fred.&ANw-mlaut\nRENAME \"user.fred.a(b)\" \"user.fred.a\\\\b\"\n",
		"SEEN alice 5e1f3c9d-1\nSUB alice user.alice.Sent\nQUOTA user.alice\nANNOTATION \"\"\n",
		"DOUBLEMAILBOX user.a.X user.b.Y\nUNMAILBOX user.a.X\nUNUSER a\n",
		"MAILBOX {5}\nuser.\n",
		"MAILBOX {5+}\r\nab\ncd\n",
		"BOGUS x\nMAILBOX\nMAILBOX a b\n\"quoted\nMAILBOX user.tail\n",
		"MAILBOX user.alice.Tru",
		"MAILBOX \"user.alice.unterminated\nUSER carol\n",
		"MAILBOX {99999999}\nUSER dave\n",
		"  \t\r\nmailbox user.lower\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, bad := Parse(data)
		last := 0
		for _, e := range entries {
			n, ok := logArity[e.Type]
			if !ok || len(e.Args) != n {
				t.Fatalf("accepted %q with %d args", e.Type, len(e.Args))
			}
			if e.Line <= last && last != 0 {
				t.Fatalf("line numbers not increasing: %d after %d", e.Line, last)
			}
			last = e.Line
			checkRoundTrip(t, e)
		}
		for _, b := range bad {
			if strings.ContainsRune(b.Text, '\n') || b.Err == "" || b.Line < 1 {
				t.Fatalf("bad line record %+v", b)
			}
		}
		if len(entries)+len(bad) > bytes.Count(data, []byte{'\n'})+1 {
			t.Fatalf("%d entries and %d bad lines from %d lines", len(entries), len(bad), bytes.Count(data, []byte{'\n'})+1)
		}
		// A literal in the garbage may legitimately swallow what follows (Cyrus's reader
		// does the same); without one, a valid line after the garbage must come out.
		if bytes.IndexByte(data, '{') < 0 {
			tail := "MAILBOX user.fuzz.Tail"
			all := append(append(bytes.Clone(data), '\n'), tail+"\n"...)
			es, _ := Parse(all)
			if len(es) == 0 || es[len(es)-1].String() != tail {
				t.Fatalf("valid line after %q lost: %v", data, es)
			}
		}
	})
}

// checkRoundTrip formats e as Cyrus's sync_log would and parses it back.
func checkRoundTrip(t *testing.T, e Entry) {
	t.Helper()
	for _, a := range e.Args {
		if strings.ContainsAny(a, "\r\n") {
			return // Cyrus refuses to log such a name (fatal); only a literal can carry one
		}
	}
	line := e.Type
	for _, a := range e.Args {
		line += " " + QuoteArg(a)
	}
	es, bad := Parse([]byte(line + "\n"))
	if len(bad) != 0 || len(es) != 1 {
		t.Fatalf("re-formatted %q: entries %v bad %v", line, es, bad)
	}
	if es[0].Type != e.Type || strings.Join(es[0].Args, "\x00") != strings.Join(e.Args, "\x00") {
		t.Fatalf("round trip changed %q into %q", e, es[0])
	}
}

// TestParseLogCorruptLiteralKeepsFollowingLines: a corrupt line that looks like an IMAP
// literal ({N} with N larger than its own line) must not swallow the valid entries that
// follow it. Cyrus never writes literals (sync_quote_name quotes '{'), and no mailbox
// name holds a line break, so such a literal is reported as a bad line and parsing
// resumes on the next line.
func TestParseLogCorruptLiteralKeepsFollowingLines(t *testing.T) {
	data := "MAILBOX {33}\nUSER dave\nMAILBOX user.alice.Sent\nAPPEND user.bob\n"
	entries, bad := Parse([]byte(data))
	var got []string
	for _, e := range entries {
		got = append(got, e.String())
	}
	want := []string{"USER dave", "MAILBOX user.alice.Sent", "APPEND user.bob"}
	if strings.Join(got, "|") != strings.Join(want, "|") || len(bad) != 1 || bad[0].Line != 1 {
		t.Fatalf("entries %q, bad %+v; want %q and line 1 reported", got, bad, want)
	}
}
