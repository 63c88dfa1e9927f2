package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

func TestUsersFromList(t *testing.T) {
	lines := []string{
		`LIST (\HasNoChildren) "." user.alice`,
		`LIST (\HasChildren) "." user.bob`,
		`LIST (\HasNoChildren) "." "user.john doe"`,
		`LIST (\HasNoChildren) "." user.bob.Sent`, // not a user (a nested level)
		`LIST (\Noselect) "." shared`,
		`LIST (\HasNoChildren) "/" user/john.doe@example.com`, // default namespace, virtdomains
		`LIST (\Noselect \HasChildren) "/" user/john.doe`,     // its folders' intermediate
		`OK nothing`,
	}
	got := usersFromList(lines[:5], ".")
	if want := []string{"alice", "bob", "john doe"}; !slices.Equal(got, want) {
		t.Fatalf("users = %q, want %q", got, want)
	}
	if got := usersFromList(lines[5:], "/"); !slices.Equal(got, []string{"john.doe@example.com"}) {
		t.Fatalf("default-namespace users = %q", got)
	}
}

// TestCLIAuditListsUsersOverIMAP: without --master-config, audit lists the master's
// users through its IMAP service and syncs each of them.
func TestCLIAuditListsUsersOverIMAP(t *testing.T) {
	p := cyruspair.Start(t, cyruspair.Options{})
	m := p.Master
	for _, u := range []string{"alice", "bob"} {
		m.CreateUser(t, u)
		m.Deliver(t, u, cyruspair.Message("hello "+u, "audit me"))
	}
	m.CreateFolder(t, "bob", "Sent")
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte(p.ReplPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &cli{p: p, common: []string{"--master", m.SyncAddr, "--replica", p.Replica.SyncAddr,
		"--master-password-file", pw, "--replica-password-file", pw, "--state-dir", t.TempDir(),
		"--master-imap", m.IMAPAddr}}
	c.common = append(c.common, p.ReplicatorTLSFlags()...)
	code, out, errs := c.run(t, "audit")
	if code != exitOK {
		t.Fatalf("audit: exit %d\n%s\n%s", code, errs, out)
	}
	if got := lines(t, out, "user"); len(got) != 2 {
		t.Fatalf("audit user lines: %v", got)
	}
	for _, u := range []string{"alice", "bob"} {
		if ms, rs := m.Status(t, u, "INBOX"), p.Replica.Status(t, u, "INBOX"); ms != rs {
			t.Fatalf("%s INBOX: replica %+v, master %+v", u, rs, ms)
		}
	}
	if got := p.Replica.List(t, "bob"); !slices.Contains(got, "Sent") {
		t.Fatalf("bob's Sent not replicated: %v", got)
	}
	// a wrong IMAP address is reported, not a crash
	c.common[len(c.common)-1] = "127.0.0.1:1"
	code, _, errs = c.run(t, "audit")
	if code == exitOK {
		t.Fatalf("audit with an unreachable IMAP service exited 0: %s", errs)
	}
}
