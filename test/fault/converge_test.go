package fault

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

const rescueMark = ".cyrusrepl-conflict-"

// liveRecords reads every live record of the user's folders at one end by GUID (the
// last record wins for a GUID held twice).
func (e *env) liveRecords(t *testing.T, inst *cyruspair.Instance, user string) map[string]csync.Record {
	t.Helper()
	out := map[string]csync.Record{}
	e.eachLive(t, inst, user, func(_ string, r csync.Record) { out[r.GUID] = r })
	return out
}

// onlyIn lists the GUIDs of a that are not in b, sorted.
func onlyIn(a, b map[string][]string) []string {
	var out []string
	for g := range a {
		if len(b[g]) == 0 {
			out = append(out, g)
		}
	}
	sort.Strings(out)
	return out
}

func systemFlags(fs []string) string {
	var out []string
	for _, f := range fs {
		out = append(out, strings.ToLower(f))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// assertConverged checks the end state of a split-brain convergence on the replica:
//   - every GUID that was only on the replica (rb minus mb) is now in a rescue folder
//     of the folder that held it, with its flags and internaldate;
//   - every master GUID is in the replica folder of the same name (and, per folder,
//     the replica holds nothing else outside rescue folders);
//   - verify exits 0 and the master's folders match by count, UIDNEXT and UIDVALIDITY.
//
// It returns the rescue folders found.
func (e *env) assertConverged(t *testing.T, mb, rb map[string][]string, rrec map[string]csync.Record) []string {
	t.Helper()
	m, r := e.p.Master, e.p.Replica
	e.assertNoLoss(t, mb, rb)
	ra, rnow := e.guids(t, r, "alice"), e.liveRecords(t, r, "alice")
	for _, g := range onlyIn(rb, mb) {
		var inRescue []string
		for _, f := range ra[g] {
			for _, orig := range rb[g] {
				if strings.HasPrefix(f, orig+rescueMark) || strings.HasPrefix(f, "user.alice.Work"+rescueMark) && strings.HasPrefix(orig, "user.alice.WorkR") {
					inRescue = append(inRescue, f)
				}
			}
		}
		if len(inRescue) == 0 {
			t.Fatalf("replica-only message %s (was in %v) is not in a rescue folder: now in %v", g[:12], rb[g], ra[g])
		}
		was, now := rrec[g], rnow[g]
		if was.InternalDate != now.InternalDate || systemFlags(was.Flags) != systemFlags(now.Flags) {
			t.Errorf("rescued %s: internaldate %d flags %q, was %d %q", g[:12], now.InternalDate, now.Flags, was.InternalDate, was.Flags)
		}
	}
	ma := e.guids(t, m, "alice")
	byFolder := func(gs map[string][]string) map[string][]string {
		out := map[string][]string{}
		for g, fs := range gs {
			for _, f := range fs {
				if !strings.Contains(f, rescueMark) {
					out[f] = append(out[f], g)
				}
			}
		}
		for f := range out {
			sort.Strings(out[f])
		}
		return out
	}
	mf, rf := byFolder(ma), byFolder(ra)
	for f, gs := range mf {
		if !slices.Equal(gs, rf[f]) {
			t.Errorf("%s: master holds %d GUIDs, replica %d (not the same set)", f, len(gs), len(rf[f]))
		}
	}
	e.assertEqual(t, "alice")
	var rescues []string
	for _, f := range r.List(t, "alice") {
		if strings.Contains(f, strings.TrimPrefix(rescueMark, ".")) {
			rescues = append(rescues, f)
		}
	}
	sort.Strings(rescues)
	return rescues
}

// assertNoop runs sync again and checks that it changes nothing: exit 0, no decision
// other than keeping the rescue folders, no body sent, and the replica's folders the
// same as before.
func (e *env) assertNoop(t *testing.T, before []string) {
	t.Helper()
	res := e.run(t, time.Minute, "sync", "--user", "alice")
	if res.code != 0 {
		t.Fatalf("second sync\n%s", res)
	}
	for _, d := range records(res.stdout, "decision") {
		if d["action"] != "keep" || !strings.Contains(fmt.Sprint(d["replicaName"]), rescueMark) {
			t.Errorf("second sync decided %v", d)
		}
	}
	if rep := e.readReport(t); len(rep.Users) != 1 || rep.Users[0].BodiesSent != 0 {
		t.Errorf("second sync sent bodies: %+v", rep.Users)
	}
	if after := e.p.Replica.List(t, "alice"); !slices.Equal(after, before) {
		t.Errorf("second sync changed the replica's folders: %v, was %v", after, before)
	}
}

// TestConvergeDivergedFolders: while the replica served as the master, mail was
// delivered into folders both ends share (INBOX by LMTP, Keep by IMAP APPEND with a
// flag) and flags changed (Work), while the master got mail in INBOX and Sent. The
// replicator moves the replica's copies aside: the replica's extra messages end up in
// rescue folders (flags and internaldate kept), the master's folders are recreated with
// every master message, verify exits 0, the only bodies uploaded are the master's
// messages the replica never had, and a second run is a no-op. Under
// --replica-only-policy fail the replica converges the same way, but the user counts as
// differing (exit 1).
func TestConvergeDivergedFolders(t *testing.T) {
	for _, c := range []struct{ policy, via string }{{"keep", "sync"}, {"fail", "sync"}, {"keep", "rolling"}} {
		policy := c.policy
		t.Run(c.policy+"-"+c.via, func(t *testing.T) {
			e := newEnv(t, "delayed")
			m, r := e.p.Master, e.p.Replica
			e.seedAlice(t)
			r.DeliverMany(t, "alice", [][]byte{cyruspair.Message("r1", "x"), cyruspair.Message("r2", "y"), cyruspair.Message("r3", "z")})
			r.Append(t, "alice", "Keep", cyruspair.Message("keep-r", "k"), `\Flagged`)
			r.Store(t, "alice", "Work", "1:*", "+FLAGS", `\Seen`)
			m.DeliverMany(t, "alice", [][]byte{cyruspair.Message("m3", "a"), cyruspair.Message("m4", "b")})
			m.Append(t, "alice", "Sent", cyruspair.Message("sent-m", "s"))

			mb, rb := e.guids(t, m, "alice"), e.guids(t, r, "alice")
			rrec := e.liveRecords(t, r, "alice")
			if n := len(onlyIn(rb, mb)); n != 4 {
				t.Fatalf("setup: %d replica-only GUIDs, want 4", n)
			}
			var res result
			if c.via == "rolling" {
				// The master's log names INBOX and Sent only: the mailbox-level pass
				// finds INBOX ahead and escalates to a full user sync.
				res = e.run(t, 2*time.Minute, "rolling", "--sync-log", m.SyncLogDir(e.p.Channel), "--once", "--replica-only-policy", policy)
				if len(records(res.stdout, "escalation")) == 0 {
					t.Errorf("rolling did not escalate to a user sync\n%s", res)
				}
			} else {
				res = e.run(t, 2*time.Minute, "sync", "--user", "alice", "--attempts", "1", "--replica-only-policy", policy)
			}
			u := recordsWith(res.stdout, "user", "user", "alice")
			switch {
			case policy == "keep" && (res.code != 0 || len(u) != 1 || u[0]["outcome"] != "synced"):
				t.Fatalf("sync after split-brain: want exit 0, alice synced\n%s", res)
			case policy == "fail" && (res.code != 1 || len(u) != 1 || u[0]["outcome"] != "differs"):
				t.Fatalf("sync --replica-only-policy fail: want exit 1, alice differs\n%s", res)
			}
			for _, f := range []string{"user.alice", "user.alice.Keep", "user.alice.Work"} {
				if !hasRecord(res.stdout, "decision", "action", "move-aside", "evidence", "split-brain", "masterName", f) {
					t.Errorf("no move-aside/split-brain decision for %s\n%s", f, res)
				}
				found := false
				for _, mm := range recordsWith(res.stdout, "mismatch", "masterName", f) {
					found = found || mm["kind"] == "content-differs" && strings.Contains(fmt.Sprint(mm["detail"]), "split-brain")
				}
				if !found {
					t.Errorf("no split-brain mismatch for %s\n%s", f, res)
				}
			}
			for name, n := range map[string]string{"user.alice": "3", "user.alice.Keep": "1"} {
				if !hasRecord(res.stdout, "rescue", "mboxname", name, "messages", n, "done", "true") {
					t.Errorf("no rescue record for %s with %s messages\n%s", name, n, res)
				}
			}
			if len(recordsWith(res.stdout, "rescue", "mboxname", "user.alice.Work")) != 0 {
				t.Errorf("a rescue folder for Work, whose replica copy only changed flags\n%s", res)
			}
			rep := e.readReport(t)
			want := len(onlyIn(mb, rb)) // the master's messages the replica never had
			if len(rep.Users) != 1 || rep.Users[0].BodiesSent != want {
				t.Errorf("bodies sent %+v, want %d (only the master's new messages)", rep.Users, want)
			}
			rescues := e.assertConverged(t, mb, rb, rrec)
			// INBOX and Keep had new mail; Work only had flags changed: no rescue folder.
			if len(rescues) != 2 || !strings.HasPrefix(rescues[0], "Keep"+rescueMark) || !strings.HasPrefix(rescues[1], strings.TrimPrefix(rescueMark, ".")) {
				t.Fatalf("rescue folders %v, want one of Keep and one of INBOX", rescues)
			}
			for f, n := range map[string]uint32{rescues[0]: 1, rescues[1]: 3} {
				if st := r.Status(t, "alice", f); st.Messages != n {
					t.Errorf("rescue folder %s holds %d messages, want %d", f, st.Messages, n)
				}
			}
			if policy == "keep" && c.via == "sync" {
				e.assertNoop(t, r.List(t, "alice"))
			}
		})
	}
}

// TestConvergeRenamedAndDeleted: on the replica a folder was renamed (and got mail under
// its new name) and another was deleted, while the master got mail in both. The renamed
// folder comes back under the master's name with the replica's new message rescued, the
// deleted one comes back with all the master's mail, verify exits 0 and a second run is
// a no-op. Delayed and immediate delete.
func TestConvergeRenamedAndDeleted(t *testing.T) {
	for _, mode := range []string{"delayed", "immediate"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, mode)
			m, r := e.p.Master, e.p.Replica
			e.seedAlice(t)
			r.Rename(t, "alice", "Work", "WorkR")
			r.Append(t, "alice", "WorkR", cyruspair.Message("work on the replica", "w"))
			r.Delete(t, "alice", "Old")
			m.Append(t, "alice", "Work", cyruspair.Message("work on the master", "w"))
			m.Append(t, "alice", "Old", cyruspair.Message("old on the master", "o"))
			m.Deliver(t, "alice", cyruspair.Message("m3", "a"))

			mb, rb := e.guids(t, m, "alice"), e.guids(t, r, "alice")
			rrec := e.liveRecords(t, r, "alice")
			res := e.run(t, 2*time.Minute, "sync", "--user", "alice", "--attempts", "1")
			if res.code != 0 {
				t.Fatalf("sync after rename/delete on the replica\n%s", res)
			}
			if !hasRecord(res.stdout, "decision", "action", "move-aside", "evidence", "split-brain", "masterName", "user.alice.Work") {
				t.Errorf("no move-aside decision for Work\n%s", res)
			}
			rescues := e.assertConverged(t, mb, rb, rrec)
			list := r.List(t, "alice")
			if !slices.Contains(list, "Work") || !slices.Contains(list, "Old") || slices.Contains(list, "WorkR") {
				t.Fatalf("replica folders %v", list)
			}
			if len(rescues) != 1 || !strings.HasPrefix(rescues[0], "Work"+rescueMark) || r.Status(t, "alice", rescues[0]).Messages != 1 {
				t.Fatalf("rescue folders %v, want one of Work holding the replica's message", rescues)
			}
			if ms, rs := m.Status(t, "alice", "Old"), r.Status(t, "alice", "Old"); rs.Messages != 2 || ms.Messages != rs.Messages {
				t.Fatalf("Old (deleted on the replica) did not come back with the master's mail: master %+v replica %+v", ms, rs)
			}
			e.assertNoop(t, list)
		})
	}
}

// TestConvergeReusesRescueFolder: a rescue folder left by an earlier run that stopped
// after the rescue (it already holds the replica's extra message) is reused, not
// duplicated.
func TestConvergeReusesRescueFolder(t *testing.T) {
	e := newEnv(t, "delayed")
	m, r := e.p.Master, e.p.Replica
	e.seedAlice(t)
	r.Append(t, "alice", "Keep", cyruspair.Message("keep-r", "k"), `\Flagged`)
	old := "Keep" + rescueMark + "20000101T000000"
	r.CreateFolder(t, "alice", old)
	c := r.IMAPAs(t, "alice")
	if _, err := c.Cmd("SELECT %s", cyruspair.Quote(e.p.IMAPFolder("Keep"))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cmd("COPY * %s", cyruspair.Quote(e.p.IMAPFolder(old))); err != nil {
		t.Fatal(err)
	}
	m.Append(t, "alice", "Keep", cyruspair.Message("keep-m", "k"))

	mb, rb := e.guids(t, m, "alice"), e.guids(t, r, "alice")
	rrec := e.liveRecords(t, r, "alice")
	res := e.run(t, 2*time.Minute, "sync", "--user", "alice", "--attempts", "1")
	if res.code != 0 {
		t.Fatalf("sync\n%s", res)
	}
	if !hasRecord(res.stdout, "rescue", "mboxname", "user.alice.Keep", "rescue", "user.alice.Keep.cyrusrepl-conflict-20000101T000000", "messages", "1", "done", "true") {
		t.Errorf("the existing rescue folder was not reused\n%s", res)
	}
	rescues := e.assertConverged(t, mb, rb, rrec)
	if !slices.Equal(rescues, []string{old}) || r.Status(t, "alice", old).Messages != 1 {
		t.Fatalf("rescue folders %v, want only %s with one message", rescues, old)
	}
	e.assertNoop(t, r.List(t, "alice"))
}

// TestConvergeSameUIDDifferentMail: the replica got one message in INBOX and the master
// two, so the master's counters are ahead but UID 3 holds different mail at the two
// ends. Only the replica's refusal (IMAP_SYNC_CHECKSUM) shows the split-brain; the
// replicator plans again, moves the replica's INBOX aside and converges.
func TestConvergeSameUIDDifferentMail(t *testing.T) {
	e := newEnv(t, "delayed")
	m, r := e.p.Master, e.p.Replica
	e.seedAlice(t)
	r.Deliver(t, "alice", cyruspair.Message("r1", "x"))
	m.DeliverMany(t, "alice", [][]byte{cyruspair.Message("m3", "a"), cyruspair.Message("m4", "b")})
	if ms, rs := m.Status(t, "alice", "INBOX"), r.Status(t, "alice", "INBOX"); ms.UIDNext <= rs.UIDNext || ms.HighestModSeq <= rs.HighestModSeq {
		t.Fatalf("setup: want the master's INBOX counters ahead: master %+v replica %+v", ms, rs)
	}
	mb, rb := e.guids(t, m, "alice"), e.guids(t, r, "alice")
	rrec := e.liveRecords(t, r, "alice")
	res := e.run(t, 2*time.Minute, "sync", "--user", "alice", "--attempts", "1")
	if res.code != 0 {
		t.Fatalf("sync\n%s", res)
	}
	if !hasRecord(res.stdout, "decision", "action", "move-aside", "evidence", "split-brain", "masterName", "user.alice") {
		t.Errorf("no move-aside decision for INBOX\n%s", res)
	}
	if !hasRecord(res.stdout, "rescue", "mboxname", "user.alice", "messages", "1", "done", "true") {
		t.Errorf("no rescue record for INBOX with one message\n%s", res)
	}
	rescues := e.assertConverged(t, mb, rb, rrec)
	if len(rescues) != 1 || r.Status(t, "alice", rescues[0]).Messages != 1 {
		t.Fatalf("rescue folders %v, want one holding the replica's message", rescues)
	}
	e.assertNoop(t, r.List(t, "alice"))
}
