package replication

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// The seed's two "sync sheer" cases, driven by the master's real sync log split into two
// batches: the replica never lacks the mail between the batches, and no message already
// on the replica is uploaded again.

// drainLog empties the channel log (everything so far is replicated by the caller).
func drainLog(t *testing.T, dir string) {
	t.Helper()
	err := synclog.NewDir(dir).ConsumeOnce(func(sc *synclog.Scanner, _ bool) error { synclog.ScanAll(sc); return sc.Err() })
	if err != nil && !errors.Is(err, synclog.ErrNoLog) {
		t.Fatal(err)
	}
}

func takeLog(t *testing.T, dir string) []synclog.Entry {
	t.Helper()
	var out []synclog.Entry
	err := synclog.NewDir(dir).ConsumeOnce(func(sc *synclog.Scanner, _ bool) error {
		e, bad := synclog.ScanAll(sc)
		if len(bad) > 0 {
			t.Fatalf("master wrote lines we cannot parse: %+v", bad)
		}
		out = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mentions(e synclog.Entry, name string) bool { return slices.Contains(e.Args, name) }

func TestCyrusSyncSheer(t *testing.T) {
	cases := []struct {
		name     string
		from, to string
		first    string // the name whose entries form the first batch
	}{
		{"a: halves of a rename in separate batches, old name first", "A", "B", "user.alice.A"},
		{"b: rename Z to B, B entries processed first", "Z", "B", "user.alice.B"},
	}
	for _, mode := range deleteModes {
		for _, c := range cases {
			t.Run(mode+"/"+c.name, func(t *testing.T) {
				e := startEnv(t, mode, false)
				m := e.p.Master
				m.CreateUser(t, "alice")
				m.CreateFolder(t, "alice", c.from)
				for i := range 3 {
					m.Append(t, "alice", c.from, cyruspair.Message("old", string(rune('a'+i))))
				}
				e.sync(t, "alice")
				logDir := m.SyncLogDir(e.p.Channel)
				drainLog(t, logDir)

				m.Append(t, "alice", c.from, cyruspair.Message("new", "one more"))
				m.Rename(t, "alice", c.from, c.to)
				entries := takeLog(t, logDir)
				var first, second []synclog.Entry
				for _, en := range entries {
					if mentions(en, c.first) && en.Type != "RENAME" {
						first = append(first, en)
					} else {
						second = append(second, en)
					}
				}
				if len(first) == 0 || len(second) == 0 {
					t.Fatalf("could not split the log: %v", entries)
				}
				bodies := 0
				var decisions []report.Decision
				for i, part := range [][]synclog.Entry{first, second} {
					for _, b := range synclog.GroupEntries(part).Batches {
						res := e.sync(t, b.UserNames()...)
						bodies += res.BodiesSent
						decisions = append(decisions, res.Decisions...)
						for _, d := range res.Decisions {
							if d.Action == report.ActionDelete || d.Action == report.ActionCreate {
								t.Fatalf("batch %d: %s of %s: the rename was not recognised", i+1, d.Action, d.ReplicaName+d.MasterName)
							}
						}
					}
					// Between the batches the replica holds all four messages.
					if st := e.p.Replica.Status(t, "alice", c.to); st.Messages != 4 {
						t.Fatalf("after batch %d the replica's %s has %d messages", i+1, c.to, st.Messages)
					}
				}
				if bodies != 1 {
					t.Fatalf("uploaded %d bodies, want 1 (only the new message)", bodies)
				}
				if !slices.ContainsFunc(decisions, func(d report.Decision) bool { return d.Action == report.ActionRename }) {
					t.Fatalf("no rename decision: %+v", decisions)
				}
				assertEqual(t, e.p, e.p.Replica, "alice")
			})
		}
	}
}

// TestCyrusDifferential: stock `sync_client -u` into Replica2 and ours into Replica give
// the same state per user (mailboxes, uniqueids, uidvalidity, records, flags, SYNC_CRC,
// seen, subscriptions, quota).
func TestCyrusDifferential(t *testing.T) {
	e := startEnv(t, "delayed", true)
	m := e.p.Master
	cyruspair.SeedAlice(t, m)
	m.CreateUser(t, "bob")
	m.Deliver(t, "bob", cyruspair.Message("hi bob", "x"))
	m.Store(t, "bob", "INBOX", "1", "+FLAGS", `\Seen`, "$Important")
	putSieve(t, e.p, m, "alice", "vacation", "require \"fileinto\";\r\nif header :contains \"subject\" \"work\" { fileinto \"INBOX.Work\"; }\r\n")
	check := func(stage string) {
		t.Helper()
		for _, u := range []string{"alice", "bob"} {
			e.sync(t, u)
			if out, err := e.p.StockSyncClient(t, e.p.Replica2, "-u", u); err != nil {
				t.Fatalf("%s: stock sync_client: %v\n%s", stage, err, out)
			}
			ours, stock := userState(t, e.p.Replica.SyncAddr, e.p, u), userState(t, e.p.Replica2.SyncAddr, e.p, u)
			wants := []string{"MAILBOX", "RECORD", "$Important"}
			if u == "alice" {
				wants = []string{"MAILBOX", "RECORD", "QUOTA user.alice", "LSUB user.alice.Sent", "$Label1", "SIEVE vacation.script"}
			}
			if stage != "initial" {
				wants = wants[:2]
			}
			for _, want := range wants {
				if !strings.Contains(ours, want) {
					t.Fatalf("%s: state of %s has no %s, the comparison would be hollow:\n%s", stage, u, want, ours)
				}
			}
			if ours != stock {
				t.Fatalf("%s: user %s differs\nreplicator:\n%s\nstock sync_client:\n%s", stage, u, ours, stock)
			}
		}
	}
	check("initial")
	m.Rename(t, "alice", "Work", "Projects")
	m.Delete(t, "alice", "Sent")
	m.Store(t, "alice", "INBOX", "2", "+FLAGS", `\Answered`)
	m.Deliver(t, "alice", cyruspair.Message("later", "later"))
	check("after rename, delete, flags, delivery")
}
