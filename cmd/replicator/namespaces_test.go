package main

import (
	"slices"
	"testing"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// TestCLIAuditDottedDomainUsers runs audit (then rolling, sync and verify) on a master in Cyrus 3's default namespace
// with virtual domains, listing the users from mailboxes.db and from IMAP: a user with a
// dot and a domain (john.doe@example.com) and folders with dots, a space and a non-ASCII
// name must be listed under their real userid and replicated, not a phantom
// "john@example.com".
func TestCLIAuditDottedDomainUsers(t *testing.T) {
	for _, source := range []string{"master-config", "master-imap"} {
		t.Run(source, func(t *testing.T) {
			c := newCLIOpts(t, cyruspair.Options{Namespace: cyruspair.NamespaceDefault})
			m := c.p.Master
			const john = "john.doe@example.com"
			folders := []string{"Work^2026", "Old^Stuff", "Archive", "Archive.Work^2026", "With Space", "Caf&AOk-"}
			for _, u := range []string{"alice", john} {
				m.CreateUser(t, u)
				m.Deliver(t, u, cyruspair.Message("hello "+u, "audit me"))
			}
			for _, f := range folders {
				m.CreateFolder(t, john, f)
			}
			m.Append(t, john, "Work^2026", cyruspair.Message("w", "in Work.2026"))
			common := c.common
			if source == "master-imap" {
				c.common = append(withoutFlag(c.common, "--master-config"), "--master-imap", m.IMAPAddr)
			}
			code, out, errs := c.run(t, "audit")
			if code != exitOK {
				t.Fatalf("audit: exit %d\n%s\n%s", code, errs, out)
			}
			var users []string
			for _, l := range lines(t, out, "user") {
				users = append(users, l["user"].(string))
			}
			slices.Sort(users)
			if want := []string{"alice", john}; !slices.Equal(users, want) {
				t.Fatalf("audited users = %q, want %q\n%s", users, want, out)
			}
			want := append([]string{"INBOX"}, folders...)
			slices.Sort(want)
			got := c.p.Replica.List(t, john)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("replica folders of %s = %q, want %q", john, got, want)
			}
			for _, f := range []string{"INBOX", "Work^2026"} {
				if ms, rs := m.Status(t, john, f), c.p.Replica.Status(t, john, f); ms != rs {
					t.Fatalf("%s %s: replica %+v, master %+v", john, f, rs, ms)
				}
			}
			c.common = common
			if code, out, _ := c.run(t, "verify", "--user", john); code != exitOK {
				t.Fatalf("verify %s after audit: exit %d\n%s", john, code, out)
			}
			if source != "master-config" {
				return
			}
			// Rolling: the sync log names john's folders by internal name
			// (example.com!user.john^doe.Work^2026); then a one-user sync.
			m.CreateFolder(t, john, "New^Folder")
			m.Append(t, john, "Work^2026", cyruspair.Message("w2", "second"))
			code, out, errs = c.run(t, "rolling", "--once", "--sync-log", m.SyncLogDir(c.p.Channel))
			if code != exitOK {
				t.Fatalf("rolling: exit %d\n%s\n%s", code, errs, out)
			}
			for _, f := range []string{"New^Folder", "Work^2026"} {
				if ms, rs := m.Status(t, john, f), c.p.Replica.Status(t, john, f); ms != rs {
					t.Fatalf("after rolling, %s %s: replica %+v, master %+v", john, f, rs, ms)
				}
			}
			m.Delete(t, john, "Old^Stuff")
			if code, out, errs := c.run(t, "sync", "--user", john); code != exitOK {
				t.Fatalf("sync %s: exit %d\n%s\n%s", john, code, errs, out)
			}
			if got := c.p.Replica.List(t, john); slices.Contains(got, "Old^Stuff") {
				t.Fatalf("Old.Stuff still live on the replica after sync: %q", got)
			}
			if code, out, _ := c.run(t, "verify", "--user", john); code != exitOK {
				t.Fatalf("verify %s at the end: exit %d\n%s", john, code, out)
			}
		})
	}
}

// withoutFlag drops a "--name value" pair from args.
func withoutFlag(args []string, name string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		if args[i] == name {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}
