package fault

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// garbage are corrupt sync-log lines of the kinds a crash, a full disk or a stray
// writer leave behind. Each is one physical line.
var garbage = []string{
	"BOGUS user.alice",
	"MAILBOX",
	"MAILBOX user.a user.b user.c",
	"RENAME user.alice.Only",
	`MAILBOX "user.alice.unterminated`,
	"\x00\x00\x00\x00\x00\x00\x00\x00",
	"\xff\xfe\x01binary\x7f noise",
	"MAILBOX {99}",
	"MAILBOX {12}",
	"MAILBOX user.alice )",
	"  \t ",
}

// TestMalformedSyncLog fills the master's sync-log channel with corrupt lines between
// the lines Cyrus wrote, plus a hand-written entry that only survives if parsing resumes
// after the corrupt line before it, and a torn last line. One rolling cycle must exit 0,
// name every corrupt line (line number, text, error) in a "bad-log-line" record,
// replicate every user the valid lines name, and remove log-run.
func TestMalformedSyncLog(t *testing.T) {
	e := newEnv(t, "delayed")
	m := e.p.Master
	for _, u := range []string{"alice", "bob", "dave"} {
		m.CreateUser(t, u)
	}
	m.CreateFolder(t, "alice", "Sent")
	m.Append(t, "alice", "Sent", cyruspair.Message("sent", "x"))
	m.Deliver(t, "bob", cyruspair.Message("bob", "y"))
	m.Deliver(t, "dave", cyruspair.Message("dave", "z"))

	logDir := m.SyncLogDir(e.p.Channel)
	logFile := filepath.Join(logDir, "log")
	orig, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	// Keep Cyrus's lines except dave's; dave is then named only by the hand-written
	// USER line below, placed right after corrupt lines.
	var b bytes.Buffer
	valid, blank := 0, 0
	for i, l := range strings.Split(strings.TrimSuffix(string(orig), "\n"), "\n") {
		if strings.Contains(l, "dave") {
			continue
		}
		g := garbage[i%len(garbage)]
		b.WriteString(g + "\n")
		if strings.TrimSpace(g) == "" {
			blank++
		}
		b.WriteString(l + "\n")
		valid++
	}
	b.WriteString("MAILBOX {10}\nUSER dave\n")
	b.WriteString("MAILBOX user.erin.Torn") // torn last line: no LF
	if err := os.WriteFile(logFile, b.Bytes(), 0o640); err != nil {
		t.Fatal(err)
	}
	lines := strings.Count(b.String(), "\n") + 1
	wantBad := valid - blank + 2 // one corrupt line before each valid one, the literal, the torn line

	r := e.run(t, 2*time.Minute, "rolling", "--sync-log", logDir, "--once")
	if r.code != 0 {
		t.Fatalf("rolling --once over a corrupt log\n%s", r)
	}
	bad := records(r.stdout, "bad-log-line")
	if len(bad) != wantBad {
		t.Fatalf("%d bad-log-line records for %d corrupt lines (of %d)\n%s", len(bad), wantBad, lines, r.stdout)
	}
	for _, rec := range bad {
		if rec["line"].(float64) < 1 || rec["error"] == "" {
			t.Fatalf("bad-log-line record without line or error: %v", rec)
		}
	}
	if last := bad[len(bad)-1]; last["text"] != "MAILBOX user.erin.Torn" {
		t.Fatalf("torn last line not reported last: %v", last)
	}
	if s := e.readReport(t); s.BadLogLines != len(bad) {
		t.Fatalf("report file counts %d bad log lines, want %d", s.BadLogLines, len(bad))
	}
	if _, err := os.Stat(filepath.Join(logDir, "log-run")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("log-run left behind after a successful cycle: %v", err)
	}
	e.assertEqual(t, "alice", "bob", "dave")
	t.Logf("%d lines, %d corrupt, all named; alice, bob and dave replicated", lines, len(bad))
}
