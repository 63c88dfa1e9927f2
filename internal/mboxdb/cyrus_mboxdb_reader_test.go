package mboxdb

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// TestCyrusMailboxesDBForUsers: on a real master with renames, delayed deletes, a
// purged DELETED.* folder (orphan I record), a folder given to another user and a
// user whose name extends alice's, the per-user read agrees with the whole dump for
// every uniqueid it reports, finds every tombstone and history of alice's folders, and
// never reports a tombstone the whole dump does not have.
func TestCyrusMailboxesDBForUsers(t *testing.T) {
	p := cyruspair.Start(t, cyruspair.Options{DeleteMode: "delayed"})
	m := p.Master
	cyruspair.SeedAlice(t, m)
	for _, u := range []string{"alice2", "bob"} {
		m.CreateUser(t, u)
	}
	m.CreateFolder(t, "alice2", "Work")
	m.CreateFolder(t, "alice", "My Folder")
	m.CreateFolder(t, "alice", "Purged")
	m.CreateFolder(t, "alice", "Give")
	m.Rename(t, "alice", "Work", "Projects")
	m.Delete(t, "alice", "My Folder")
	m.Delete(t, "alice", "Purged")
	m.Tool(t, "cyr_expire", "-D", "0")      // purges DELETED.*: orphan I records remain
	m.CreateFolder(t, "alice", "My Folder") // a new folder at a deleted name
	m.Delete(t, "alice", "My Folder")
	admin, err := m.DialIMAP("", p.AdminUser, p.AdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Cmd("RENAME %s %s", cyruspair.Quote(p.IMAPAdminName("alice", "Give")), cyruspair.Quote(p.IMAPAdminName("bob", "Given"))); err != nil {
		t.Fatal(err)
	}
	admin.Close()

	full := Parse([]byte(m.MailboxesDB(t)))
	if len(full.Bad) > 0 {
		t.Fatalf("dump has bad records: %v", full.Bad)
	}
	// The replica would hold every uniqueid alice ever had: ask for all of them.
	var aliceUIDs []string
	for uid, tb := range full.Tombstones {
		if mboxname.UserOf(tb.Name) == "alice" {
			aliceUIDs = append(aliceUIDs, uid)
		}
	}
	for uid, hist := range full.History {
		for _, h := range hist {
			if mboxname.UserOf(h) == "alice" {
				aliceUIDs = append(aliceUIDs, uid)
			}
		}
	}
	r, err := NewReader("", m.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if r.Backend != BackendGo {
		t.Fatalf("default backend %q, want the Go reader", r.Backend)
	}
	if withTool := *r; withTool.UseCyrDBTool() != nil || withTool.Backend != BackendCyrDBTool {
		t.Fatalf("with Cyrus's tools in %s: %+v", r.Bin, withTool)
	}
	if noTools, err := NewReader(t.TempDir(), m.ConfigPath); err != nil || noTools.UseCyrDBTool() == nil || noTools.Backend != BackendGo || noTools.DB != r.DB {
		t.Fatalf("without cyr_dbtool: %+v %v", noTools, err)
	}
	for _, backend := range []string{BackendCyrDBTool, BackendGo} {
		t.Run(backend, func(t *testing.T) {
			r := *r
			r.Backend = backend
			forUsersAgrees(t, &r, full, aliceUIDs)
		})
	}
	// The raw answers agree too, record for record and in order, for a batch of the
	// commands ForUsers sends (and a GET of a key that is not there).
	root, deleted := mboxname.InternalToDBName(mboxname.UserRoot("alice")), mboxname.InternalToDBName(mboxname.DeletedRoot("alice"))
	cmds := []string{"GET N" + root, "SHOW N" + root + "\x1f", "SHOW N" + deleted + "\x1f", "GET Nuser\x1fnobody", "SHOW I"}
	for _, uid := range aliceUIDs {
		cmds = append(cmds, "GET I"+uid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	answers := map[string][]dbRecord{}
	for _, backend := range []string{BackendCyrDBTool, BackendGo} {
		rb := *r
		rb.Backend = backend
		if answers[backend], err = rb.batch(ctx, cmds); err != nil {
			t.Fatalf("%s: %v", backend, err)
		}
	}
	if a, b := answers[BackendCyrDBTool], answers[BackendGo]; len(a) < len(cmds) || !slices.Equal(a, b) {
		t.Fatalf("batch answers differ: cyr_dbtool %d records, go %d", len(a), len(b))
	}
}

// forUsersAgrees checks r's ForUsers for alice and Users against the whole dump.
func forUsersAgrees(t *testing.T, r *Reader, full *DB, aliceUIDs []string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	part, err := r.ForUsers(ctx, []string{"alice"}, aliceUIDs)
	if err != nil {
		t.Fatal(err)
	}
	if len(part.Bad) > 0 {
		t.Fatalf("bad records: %v", part.Bad)
	}
	orphans, given := 0, false
	for uid, tb := range full.Tombstones {
		if mboxname.UserOf(tb.Name) != "alice" {
			continue
		}
		if got, ok := part.Tombstones[uid]; !ok || got != tb {
			t.Errorf("tombstone %s: per-user %+v, whole dump %+v", uid, got, tb)
		}
		if tb.Orphan {
			orphans++
		}
	}
	for uid, tb := range part.Tombstones {
		if want, ok := full.Tombstones[uid]; !ok || want != tb {
			t.Errorf("per-user read invented tombstone %s %+v (whole dump: %+v)", uid, tb, want)
		}
	}
	for uid, name := range full.Live {
		if mboxname.UserOf(name) == "alice" && part.Live[uid] != name {
			t.Errorf("live %s at %s: per-user read has %q", uid, name, part.Live[uid])
		}
		if name == "user.bob.Given" && part.Live[uid] == name {
			given = true
		}
	}
	for uid, name := range part.Live {
		if full.Live[uid] != name {
			t.Errorf("per-user live %s at %s, whole dump %q", uid, name, full.Live[uid])
		}
	}
	for uid, hist := range part.History {
		if !slices.Equal(hist, full.History[uid]) {
			t.Errorf("history %s: %v, whole dump %v", uid, hist, full.History[uid])
		}
	}
	for uid := range full.Live {
		if mboxname.UserOf(full.Live[uid]) == "alice" && !slices.Equal(part.History[uid], full.History[uid]) {
			t.Errorf("history of live %s missing: %v", uid, full.History[uid])
		}
	}
	if orphans == 0 || !given {
		t.Fatalf("scenario not reached: %d orphan tombstones, folder given to bob seen live: %v (tombstones %v)", orphans, given, maps.Collect(maps.All(full.Tombstones)))
	}

	users, err := r.Users(ctx)
	if err != nil || !slices.Equal(users, []string{"alice", "alice2", "bob"}) {
		t.Fatalf("users %v, %v", users, err)
	}
}
