package cyruspair

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPairSeedAndStockReplication checks the harness end to end: seeding through IMAP
// and LMTP on the master, the cyrusrepl sync-log channel, and a stock sync_client run
// that makes the replica show the same folders and counts.
func TestPairSeedAndStockReplication(t *testing.T) {
	p := Start(t, Options{SecondReplica: true})
	m := p.Master
	m.CreateUser(t, "alice")
	m.CreateFolder(t, "alice", "Sent")
	m.CreateFolder(t, "alice", "Work")
	m.Deliver(t, "alice", Message("one", "first body"))
	m.DeliverMany(t, "alice", [][]byte{Message("two", "b2"), Message("three", "b3")})
	uid := m.Append(t, "alice", "Sent", Message("sent", "sent body"), `\Seen`)
	if uid != 1 {
		t.Fatalf("APPENDUID = %d, want 1", uid)
	}
	m.Store(t, "alice", "INBOX", "1", "+FLAGS", `\Flagged`)
	m.Subscribe(t, "alice", "Sent")
	m.SetQuota(t, "alice", 100000)
	m.SetAnnotation(t, "alice", "Sent", "/comment", "hello")
	m.Rename(t, "alice", "Work", "Projects")

	got := m.List(t, "alice")
	slices.Sort(got)
	if want := []string{"INBOX", "Projects", "Sent"}; !slices.Equal(got, want) {
		t.Fatalf("master folders = %v, want %v", got, want)
	}
	if st := m.Status(t, "alice", "INBOX"); st.Messages != 3 || st.UIDNext != 4 || st.UIDValidity == 0 {
		t.Fatalf("master INBOX status = %+v", st)
	}

	logFile := filepath.Join(m.SyncLogDir(p.Channel), "log")
	raw, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatalf("cyrusrepl channel log: %v", err)
	}
	if !strings.Contains(string(raw), "RENAME user.alice.Work user.alice.Projects") {
		t.Fatalf("channel log lacks the rename:\n%s", raw)
	}

	for _, target := range []*Instance{p.Replica, p.Replica2} {
		if out, err := p.StockSyncClient(t, target, "-u", "alice"); err != nil {
			t.Fatalf("stock sync to %s: %v\n%s\n%s", target.Name, err, out, p.SyslogTail(30))
		}
		got := target.List(t, "alice")
		slices.Sort(got)
		if want := []string{"INBOX", "Projects", "Sent"}; !slices.Equal(got, want) {
			t.Fatalf("%s folders = %v, want %v", target.Name, got, want)
		}
		ms, rs := m.Status(t, "alice", "INBOX"), target.Status(t, "alice", "INBOX")
		if ms != rs {
			t.Fatalf("%s INBOX status %+v, master %+v", target.Name, rs, ms)
		}
	}
}

// TestPairImmediateDeleteLeavesTombstone checks delete_mode immediate: the master's
// mailboxes.db keeps an "ed" tombstone and the channel log says UNMAILBOX.
func TestPairImmediateDeleteLeavesTombstone(t *testing.T) {
	p := Start(t, Options{DeleteMode: "immediate"})
	m := p.Master
	m.CreateUser(t, "bob")
	m.CreateFolder(t, "bob", "X")
	m.Delete(t, "bob", "X")
	if got := m.List(t, "bob"); slices.Contains(got, "X") {
		t.Fatalf("X still listed after delete: %v", got)
	}
	db := m.MailboxesDB(t)
	if !strings.Contains(db, "user\x1fbob\x1fX") || !strings.Contains(db, "T ed") {
		t.Fatalf("no tombstone for user.bob.X in mailboxes.db:\n%q", db)
	}
	raw, err := os.ReadFile(filepath.Join(m.SyncLogDir(p.Channel), "log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "UNMAILBOX user.bob.X") {
		t.Fatalf("channel log lacks UNMAILBOX:\n%s", raw)
	}
}
