package replication

import (
	"context"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/executor"
	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/state"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// nameCase is a folder created through IMAP and the user that owns it.
type nameCase struct{ user, folder string }

// namesFor are the users and folders each namespace can hold: dots, a domain, a space and
// a non-ASCII name (modified UTF-7 on IMAP, and so in Cyrus 3.6's internal names).
func namesFor(ns string) []nameCase {
	if ns == cyruspair.NamespaceNetnews {
		return []nameCase{{"alice", ""}, {"alice", "Sent"}, {"alice", "Work"}, {"alice", "Work.Old"},
			{"alice", "With Space"}, {"alice", "Caf&AOk-"}, {"bob", ""}, {"bob", "Gone"}}
	}
	return []nameCase{{"alice", ""}, {"alice", "Sent"}, {"john.doe@example.com", ""},
		{"john.doe@example.com", "Work^2026"}, {"john.doe@example.com", "Archive"},
		{"john.doe@example.com", "Archive.Work^2026"}, {"john.doe@example.com", "With Space"},
		{"john.doe@example.com", "Caf&AOk-"}, {"bob@example.com", ""}, {"bob@example.com", "Gone^Too"}}
}

var ctlName = regexp.MustCompile(`(?m)^"((?:[^"\\]|\\.)*)": \{`)

// TestCyrusNamesMatchCtlMboxlist creates users and folders with awkward names in both
// namespace configurations and checks every conversion of names.go against the names
// Cyrus's own ctl_mboxlist -d prints (internal names): the mailboxes.db keys read back,
// the internal names built from userids, the owner parsed from each name (deleted ones
// included), and the names the master's sync_server puts on the wire.
func TestCyrusNamesMatchCtlMboxlist(t *testing.T) {
	for _, ns := range cyruspair.Namespaces {
		t.Run(ns, func(t *testing.T) {
			p := cyruspair.Start(t, cyruspair.Options{Namespace: ns})
			m := p.Master
			cases := namesFor(ns)
			users := map[string]bool{}
			for _, c := range cases {
				if c.folder == "" {
					m.CreateUser(t, c.user)
					users[c.user] = true
				} else {
					m.CreateFolder(t, c.user, c.folder)
				}
			}
			gone := cases[len(cases)-1] // delayed delete: moves it to DELETED.*
			m.Delete(t, gone.user, gone.folder)

			ctl := map[string]bool{}
			for _, mt := range ctlName.FindAllStringSubmatch(m.Tool(t, "ctl_mboxlist", "-d"), -1) {
				ctl[mt[1]] = true
			}
			// mailboxes.db keys → internal names, and back.
			fromDB := map[string]bool{}
			for _, line := range strings.Split(m.MailboxesDB(t), "\n") {
				key, _, ok := strings.Cut(line, "\t")
				if !ok || !strings.HasPrefix(key, "N") {
					continue
				}
				in := mboxname.DBNameToInternal(key[1:])
				fromDB[in] = true
				if back := mboxname.InternalToDBName(in); back != key[1:] {
					t.Errorf("InternalToDBName(%q) = %q, want the key %q", in, back, key[1:])
				}
			}
			if !mapsEqual(fromDB, ctl) {
				t.Fatalf("names from mailboxes.db keys:\n%q\nctl_mboxlist -d:\n%q", slices.Sorted(maps.Keys(fromDB)), slices.Sorted(maps.Keys(ctl)))
			}
			// userid + folder → internal name, and the owner parsed back.
			var deleted []string
			for name := range ctl {
				if mboxname.IsDeletedName(name) {
					deleted = append(deleted, name)
				}
			}
			for _, c := range cases {
				want := cyruspair.InternalName(c.user, c.folder)
				if got := mboxname.FolderName(c.user, c.folder); got != want {
					t.Errorf("FolderName(%q, %q) = %q, want %q", c.user, c.folder, got, want)
				}
				if c != gone && !ctl[want] {
					t.Errorf("%s/%s: %q not in ctl_mboxlist -d: %q", c.user, c.folder, want, slices.Sorted(maps.Keys(ctl)))
				}
				if u := mboxname.UserOf(want); u != c.user {
					t.Errorf("UserOf(%q) = %q, want %q", want, u, c.user)
				}
			}
			if len(deleted) != 1 || mboxname.UserOf(deleted[0]) != gone.user || mboxname.ParseName(deleted[0]).Rest == "" {
				t.Fatalf("deleted names %q: want one of %s's", deleted, gone.user)
			}
			// What sync_server puts on the wire is the same internal name.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, err := csync.DialMaster(ctx, m.SyncAddr, csync.Options{Username: p.ReplUser, Password: p.ReplPassword, TLS: p.ClientTLS()})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for u := range users {
				st, err := c.GetUser(ctx, u)
				if err != nil {
					t.Fatal(err)
				}
				if len(st.Mailboxes) == 0 {
					t.Fatalf("GET USER %s: no mailboxes", u)
				}
				for _, mb := range st.Mailboxes {
					if !ctl[mb.Name] || mboxname.UserOf(mb.Name) != u {
						t.Errorf("GET USER %s: %q (owner %q) not in ctl_mboxlist -d or not %s's", u, mb.Name, mboxname.UserOf(mb.Name), u)
					}
				}
			}
		})
	}
}

func mapsEqual(a, b map[string]bool) bool {
	return slices.Equal(slices.Sorted(maps.Keys(a)), slices.Sorted(maps.Keys(b)))
}

// TestCyrusCustomDeletedPrefix runs a master whose deletedprefix is not DELETED. A folder
// the master deleted (delayed) is mirrored into the master's deleted namespace; one the
// replica took mail in after that delete is kept under its name (split-brain), exactly as
// with the default prefix.
func TestCyrusCustomDeletedPrefix(t *testing.T) {
	p := cyruspair.Start(t, cyruspair.Options{DeletedPrefix: "Trashed"})
	e := &env{p: p}
	e.x = e.executor(t, p.Replica)
	cyruspair.SeedAlice(t, p.Master)
	e.sync(t, "alice")
	p.Master.Delete(t, "alice", "Work.Old")
	// Not told the prefix: the user fails with a clear error, and nothing is changed.
	before := userState(t, p.Replica.SyncAddr, p, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := e.x.Sync(ctx, []string{"alice"}, false); err == nil || !strings.Contains(err.Error(), "--deleted-prefix") {
		t.Fatalf("sync with the wrong deletedprefix: err %v, want the deletedprefix error", err)
	}
	if after := userState(t, p.Replica.SyncAddr, p, "alice"); after != before {
		t.Fatalf("the replica changed although the user failed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	useMasterConfig(t, p)
	e.x = e.executor(t, p.Replica)
	p.Master.Delete(t, "alice", "Sent")
	p.Replica.Append(t, "alice", "Sent", cyruspair.Message("late", "taken by the replica after the delete"))
	res := e.sync(t, "alice")
	if !hasDecision(res, report.ActionKeep, report.EvidenceSplitBrain, "user.alice.Sent") {
		t.Fatalf("Sent, written on the replica after the master's delete: no keep/split-brain decision: %+v", res.Decisions)
	}
	if st := p.Replica.Status(t, "alice", "Sent"); st.Messages != 2 {
		t.Fatalf("replica's Sent: %+v, want its 2 messages kept under its name", st)
	}
	if !hasDecision(res, report.ActionMirrorDelete, report.EvidenceDeletedNamespace, "user.alice.Work.Old") {
		t.Fatalf("Work.Old: no mirror-delete decision: %+v", res.Decisions)
	}
	if got := p.Replica.List(t, "alice"); slices.Contains(got, "Work.Old") {
		t.Fatalf("Work.Old still live on the replica: %v", got)
	}
}

// useMasterConfig applies the master's imapd.conf settings, as the replicator does at
// start, until the test ends.
func useMasterConfig(t *testing.T, p *cyruspair.Pair) {
	t.Helper()
	s, err := mboxname.ReadMasterSettings(p.Master.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if s.DeletedPrefix != p.DeletedPrefix {
		t.Fatalf("deletedprefix read %q, pair has %q", s.DeletedPrefix, p.DeletedPrefix)
	}
	prev := mboxname.DeletedPrefix()
	if err := mboxname.SetDeletedPrefix(s.DeletedPrefix); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mboxname.SetDeletedPrefix(prev) })
}

// TestCyrusRollingSkipsSharedFolders: shared folders (no owner) are not replicated. In
// both namespaces, a rolling cycle over a log holding a new shared folder and new mail
// for alice syncs alice, leaves the shared folder off the replica, and records the skip.
func TestCyrusRollingSkipsSharedFolders(t *testing.T) {
	for _, ns := range cyruspair.Namespaces {
		t.Run(ns, func(t *testing.T) {
			p := cyruspair.Start(t, cyruspair.Options{Namespace: ns})
			e := &env{p: p}
			e.x = e.executor(t, p.Replica)
			m := p.Master
			m.CreateUser(t, "alice")
			e.sync(t, "alice")
			logDir := m.SyncLogDir(p.Channel)
			drainLog(t, logDir)
			shared := "shared.team"
			if ns == cyruspair.NamespaceDefault {
				shared = "shared/team"
			}
			admin := m.IMAPAs(t, p.AdminUser)
			if _, err := admin.Cmd("CREATE %s", cyruspair.Quote(shared)); err != nil {
				t.Fatal(err)
			}
			m.Deliver(t, "alice", cyruspair.Message("new", "for alice"))
			var skipped []skippedRecord
			retry, err := state.OpenRetryQueue(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			x := e.x
			roll := &Rolling{Log: masterLog(t, m, logDir), Retry: retry,
				Emit: func(v any) {
					if s, ok := v.(skippedRecord); ok {
						skipped = append(skipped, s)
					}
				},
				Runner: &Runner{Connect: func(context.Context) (*executor.Executor, error) { return x, nil }, Workers: 1,
					Rec: NewRecorder("rolling", "test", time.Now())}}
			if err := roll.Cycle(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(skipped, func(s skippedRecord) bool {
				return s.Entry == "MAILBOX shared.team" && strings.Contains(s.Why, "shared folders")
			}) {
				t.Fatalf("no skip record for shared.team: %+v", skipped)
			}
			assertEqual(t, p, p.Replica, "alice")
			if out := p.Replica.Tool(t, "ctl_mboxlist", "-d"); strings.Contains(out, "shared.team") {
				t.Fatalf("the shared folder reached the replica:\n%s", out)
			}
		})
	}
}
