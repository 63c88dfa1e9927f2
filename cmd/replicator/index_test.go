package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cyrusrepl/cyrusrepl/internal/cyrusindex"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/agenttest"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// csyncCounts maps "end command" to its count in the run's csync-stats line.
func csyncCounts(t *testing.T, out string) map[string]float64 {
	t.Helper()
	st := lines(t, out, "csync-stats")
	if len(st) != 1 {
		t.Fatalf("csync-stats lines: %v", st)
	}
	got := map[string]float64{}
	for _, c := range st[0]["commands"].([]any) {
		m := c.(map[string]any)
		got[m["end"].(string)+" "+m["command"].(string)] = m["count"].(float64)
	}
	return got
}

// TestCLIRollingIndexDeltas: with --master-config, a rolling pass after new mail updates
// the INBOX as a delta read from the master's index (csync-stats: master-index DELTA, no
// GET FULLMAILBOX on the master) and leaves the replica equal; with --index-deltas=false
// the same pass reads the folder with GET FULLMAILBOX; --master-partition says where the
// partition is mounted (a wrong place: GET FULLMAILBOX, with a warning). Through the
// agent (CYRUSREPL_VIA_AGENT=1) the same deltas come from the agent's index reads.
func TestCLIRollingIndexDeltas(t *testing.T) {
	c := newCLI(t, "delayed")
	m := c.p.Master
	user := "alice"
	m.CreateUser(t, user)
	for i := 0; i < 20; i++ {
		m.Deliver(t, user, cyruspair.Message(fmt.Sprintf("seed %d", i), "body"))
	}
	if code, out, errs := c.run(t, "sync", "--user", user); code != exitOK {
		t.Fatalf("sync: exit %d\n%s\n%s", code, errs, out)
	}
	logDir := m.SyncLogDir(c.p.Channel)
	parts, err := cyrusindex.Partitions(m.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := filepath.Join(t.TempDir(), "spool") // the partition as a pod would mount it
	if err := os.Symlink(parts["default"], elsewhere); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		flags     []string
		wantDelta bool
	}{
		{nil, true},
		{[]string{"--index-deltas=false"}, false},
		{[]string{"--master-partition", "default=" + elsewhere}, true},
		{[]string{"--master-partition", "default=/nonexistent"}, false},
	} {
		if agenttest.Enabled() && len(tc.flags) > 0 && tc.flags[0] == "--master-partition" {
			continue // the agent reads the partitions its imapd.conf names
		}
		m.Deliver(t, user, cyruspair.Message("one more", "body"))
		args := append([]string{"rolling", "--once", "--sync-log", logDir}, tc.flags...)
		code, out, errs := c.run(t, args...)
		if code != exitOK {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, errs, out)
		}
		got := csyncCounts(t, out)
		if tc.wantDelta && (got["master-index DELTA"] != 1 || got["master GET FULLMAILBOX"] != 0) {
			t.Fatalf("%v: want one delta and no GET FULLMAILBOX on the master, csync-stats %v", args, got)
		}
		if !tc.wantDelta && (got["master-index DELTA"] != 0 || got["master GET FULLMAILBOX"] != 1) {
			t.Fatalf("%v: want GET FULLMAILBOX and no delta, csync-stats %v", args, got)
		}
		if ms, rs := m.Status(t, user, "INBOX"), c.p.Replica.Status(t, user, "INBOX"); ms != rs {
			t.Fatalf("%v: replica %+v, master %+v", args, rs, ms)
		}
	}
	if code, out, _ := c.run(t, "verify", "--user", user); code != exitOK {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
}
