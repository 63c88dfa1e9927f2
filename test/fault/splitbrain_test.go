package fault

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// eachLive calls fn for every live (not expunged) record of the user's folders at one
// end, read over a read-only csync session (GET USER, then GET FULLMAILBOX per folder).
func (e *env) eachLive(t *testing.T, inst *cyruspair.Instance, user string, fn func(mailbox string, r csync.Record)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := csync.DialMaster(ctx, inst.SyncAddr, csync.Options{Username: e.p.ReplUser, Password: e.p.ReplPassword, TLS: e.p.ClientTLS(), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("csync to %s: %v", inst.Name, err)
	}
	defer c.Close()
	us, err := c.GetUser(ctx, user)
	if err != nil {
		t.Fatalf("GET USER %s on %s: %v", user, inst.Name, err)
	}
	for _, mb := range us.Mailboxes {
		full, err := c.GetFullMailbox(ctx, mb.Name)
		if err != nil {
			t.Fatalf("GET FULLMAILBOX %s on %s: %v", mb.Name, inst.Name, err)
		}
		for _, r := range full.Records {
			if !r.Expunged() {
				fn(mb.Name, r)
			}
		}
	}
}

// guids maps each live GUID of a user at one end to the folders holding it.
func (e *env) guids(t *testing.T, inst *cyruspair.Instance, user string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	e.eachLive(t, inst, user, func(mailbox string, r csync.Record) { out[r.GUID] = append(out[r.GUID], mailbox) })
	return out
}

// lostFrom lists the GUIDs of before that are in no folder of after.
func lostFrom(before, after map[string][]string) []string {
	var lost []string
	for g, fs := range before {
		if len(after[g]) == 0 {
			lost = append(lost, g[:12]+"@"+strings.Join(fs, ","))
		}
	}
	sort.Strings(lost)
	return lost
}

func recordsWith(out, typ, key, value string) []map[string]any {
	var got []map[string]any
	for _, r := range records(out, typ) {
		if fmt.Sprint(r[key]) == value {
			got = append(got, r)
		}
	}
	return got
}

func hasRecord(out, typ string, kv ...string) bool {
	for _, r := range records(out, typ) {
		ok := true
		for i := 0; i+1 < len(kv); i += 2 {
			ok = ok && fmt.Sprint(r[kv[i]]) == kv[i+1]
		}
		if ok {
			return true
		}
	}
	return false
}

// seedAlice creates alice on the master with INBOX, Work, Old, Keep and Sent holding
// mail, and syncs her to the replica.
func (e *env) seedAlice(t *testing.T) {
	t.Helper()
	m := e.p.Master
	m.CreateUser(t, "alice")
	for _, f := range []string{"Work", "Old", "Keep", "Sent"} {
		m.CreateFolder(t, "alice", f)
		m.Append(t, "alice", f, cyruspair.Message("seed "+f, f))
	}
	m.DeliverMany(t, "alice", [][]byte{cyruspair.Message("m1", "a"), cyruspair.Message("m2", "b")})
	if res := e.run(t, time.Minute, "sync", "--user", "alice"); res.code != 0 {
		t.Fatalf("initial sync\n%s", res)
	}
}

// inStepOrNamed checks the outcome of a sync after a split-brain: either the user is
// in step (exit 0, and verify agrees), or it is not and that is said plainly: exit 1,
// the user's error names the split-brain, and verify exits 1 too.
func (e *env) inStepOrNamed(t *testing.T, res result) bool {
	t.Helper()
	v := e.run(t, time.Minute, "verify", "--user", "alice")
	if res.code == 0 {
		if v.code != 0 {
			t.Fatalf("sync said in step, verify disagrees\n%s\n%s", res, v)
		}
		return true
	}
	u := recordsWith(res.stdout, "user", "user", "alice")
	if res.code != 1 || len(u) != 1 || !strings.Contains(fmt.Sprint(u[0]["error"]), "split-brain") {
		t.Fatalf("user not in step and the split-brain is not named\n%s", res)
	}
	if v.code != 1 {
		t.Fatalf("verify hides the difference\n%s", v)
	}
	t.Logf("not in step, reported: %v", u[0]["error"])
	return false
}

func (e *env) assertNoLoss(t *testing.T, mb, rb map[string][]string) {
	t.Helper()
	m, r := e.p.Master, e.p.Replica
	ma, ra := e.guids(t, m, "alice"), e.guids(t, r, "alice")
	if l := lostFrom(mb, ma); len(l) > 0 {
		t.Fatalf("the master lost mail: %v", l)
	}
	if l := lostFrom(rb, ra); len(l) > 0 {
		t.Fatalf("mail delivered on the replica lost: %v", l)
	}
}

// TestSplitBrainNewFolders uses the replica as the master for a while: a new folder
// with mail, and a name also created on the master, each end's copy holding its own
// mail; meanwhile the master gets new mail. Then replication resumes with
// `replicator sync`. Nothing delivered to either end is lost (GUIDs counted at both
// ends before and after), every master message reaches the replica under its name,
// every conflict has its decision and mismatch record, and the replica-only folders are
// kept under both policies, the fail policy making the user count as differing.
// Replication resumes through `replicator sync`, or through one `rolling` cycle over
// the master's sync log.
func TestSplitBrainNewFolders(t *testing.T) {
	for _, c := range []struct{ mode, via string }{{"delayed", "sync"}, {"immediate", "sync"}, {"delayed", "rolling"}} {
		t.Run(c.mode+"-"+c.via, func(t *testing.T) {
			e := newEnv(t, c.mode)
			m, r := e.p.Master, e.p.Replica
			e.seedAlice(t)
			r.CreateFolder(t, "alice", "Fresh")
			r.Append(t, "alice", "Fresh", cyruspair.Message("fresh1", "f"))
			r.Append(t, "alice", "Fresh", cyruspair.Message("fresh2", "g"))
			r.CreateFolder(t, "alice", "Clash")
			r.Append(t, "alice", "Clash", cyruspair.Message("clash on the replica", "c"))
			m.DeliverMany(t, "alice", [][]byte{cyruspair.Message("m3", "a"), cyruspair.Message("m4", "b")})
			m.Append(t, "alice", "Keep", cyruspair.Message("keep-m", "k"))
			m.CreateFolder(t, "alice", "Clash")
			m.Append(t, "alice", "Clash", cyruspair.Message("clash on the master", "c"))

			mb, rb := e.guids(t, m, "alice"), e.guids(t, r, "alice")
			var res result
			if c.via == "rolling" {
				res = e.run(t, time.Minute, "rolling", "--sync-log", m.SyncLogDir(e.p.Channel), "--once")
			} else {
				res = e.run(t, time.Minute, "sync", "--user", "alice")
			}
			if res.code != 0 {
				t.Fatalf("%s after split-brain (keep policy)\n%s", c.via, res)
			}
			e.assertNoLoss(t, mb, rb)
			e.assertEqual(t, "alice") // every master folder, same counts and UIDs
			out := res.stdout
			for _, c := range []struct {
				typ string
				kv  []string
			}{
				{"decision", []string{"action", "keep", "evidence", "none", "replicaName", "user.alice.Fresh"}},
				{"mismatch", []string{"kind", "replica-only", "replicaName", "user.alice.Fresh"}},
				{"decision", []string{"action", "move-aside", "evidence", "none", "masterName", "user.alice.Clash"}},
				{"mismatch", []string{"kind", "uniqueid-collision", "replicaName", "user.alice.Clash"}},
				{"decision", []string{"action", "create", "masterName", "user.alice.Clash"}},
			} {
				if !hasRecord(out, c.typ, c.kv...) {
					t.Errorf("no %s record %v\n%s", c.typ, c.kv, out)
				}
			}
			if st := r.Status(t, "alice", "Fresh"); st.Messages != 2 {
				t.Fatalf("replica-only Fresh: %+v", st)
			}
			res = e.run(t, time.Minute, "sync", "--user", "alice", "--replica-only-policy", "fail")
			u := recordsWith(res.stdout, "user", "user", "alice")
			if res.code != 1 || len(u) != 1 || u[0]["outcome"] != "differs" {
				t.Fatalf("--replica-only-policy fail: want exit 1 and outcome differs\n%s", res)
			}
			if st := r.Status(t, "alice", "Fresh"); st.Messages != 2 {
				t.Fatalf("fail policy touched the replica-only folder: %+v", st)
			}
			if res := e.run(t, time.Minute, "verify", "--user", "alice", "--replica-only-policy", "fail"); res.code != 1 {
				t.Fatalf("verify --replica-only-policy fail: want exit 1\n%s", res)
			}
		})
	}
}

// TestSplitBrainRenamedAndDeleted renames and deletes folders on the replica while it
// is used as the master, and keeps delivering to the master. Replication must restore
// the master's names on the replica (decision records with their evidence), lose
// nothing at either end, bring every folder the replica did not write to up to date,
// and either end in step or say that it could not because of the split-brain.
func TestSplitBrainRenamedAndDeleted(t *testing.T) {
	for _, mode := range []string{"delayed", "immediate"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, mode)
			m, r := e.p.Master, e.p.Replica
			e.seedAlice(t)
			r.Rename(t, "alice", "Work", "WorkR")
			r.Delete(t, "alice", "Old")
			m.DeliverMany(t, "alice", [][]byte{cyruspair.Message("m3", "a"), cyruspair.Message("m4", "b")})
			m.Append(t, "alice", "Sent", cyruspair.Message("sent-m", "s"))

			mb, rb := e.guids(t, m, "alice"), e.guids(t, r, "alice")
			res := e.run(t, time.Minute, "sync", "--user", "alice", "--attempts", "1")
			e.assertNoLoss(t, mb, rb)
			if !hasRecord(res.stdout, "decision", "action", "rename", "evidence", "name-history", "masterName", "user.alice.Work", "replicaName", "user.alice.WorkR") {
				t.Errorf("no rename decision for Work\n%s", res)
			}
			if len(recordsWith(res.stdout, "decision", "masterName", "user.alice.Old")) == 0 {
				t.Errorf("no decision for Old, deleted on the replica only\n%s", res)
			}
			list := strings.Join(r.List(t, "alice"), " ")
			if !strings.Contains(list, "Work") || strings.Contains(list, "WorkR") || !strings.Contains(list, "Old") {
				t.Errorf("replica folders after sync: %s", list)
			}
			for _, f := range []string{"INBOX", "Sent"} {
				if ms, rs := m.Status(t, "alice", f), r.Status(t, "alice", f); ms.Messages != rs.Messages || ms.UIDNext != rs.UIDNext {
					t.Errorf("%s (not written on the replica) not brought up to date: master %+v replica %+v", f, ms, rs)
				}
			}
			e.inStepOrNamed(t, res)
		})
	}
}

// TestSplitBrainDivergedFolders has mail delivered on the replica into folders that
// also exist on the master (INBOX by LMTP, Keep by IMAP APPEND), while the master gets
// mail in INBOX and in Sent. The replicator never writes the master and must not
// overwrite the replica's new messages. Nothing is lost at either end, a folder that
// did not diverge (Sent) is brought up to date, and the user is either in step or
// reported as split-brain; rolling parks such a user with backoff, not in a hot loop.
func TestSplitBrainDivergedFolders(t *testing.T) {
	e := newEnv(t, "delayed")
	m, r := e.p.Master, e.p.Replica
	e.seedAlice(t)
	r.DeliverMany(t, "alice", [][]byte{cyruspair.Message("r1", "x"), cyruspair.Message("r2", "y"), cyruspair.Message("r3", "z")})
	r.Append(t, "alice", "Keep", cyruspair.Message("keep-r", "k"))
	m.DeliverMany(t, "alice", [][]byte{cyruspair.Message("m3", "a"), cyruspair.Message("m4", "b")})
	m.Append(t, "alice", "Sent", cyruspair.Message("sent-m", "s"))

	mb, rb := e.guids(t, m, "alice"), e.guids(t, r, "alice")
	res := e.run(t, 2*time.Minute, "sync", "--user", "alice", "--attempts", "1")
	rep := e.readReport(t)
	e.assertNoLoss(t, mb, rb)
	if !hasRecord(res.stdout, "mismatch", "kind", "content-differs", "masterName", "user.alice") {
		t.Errorf("no content-differs mismatch for the diverged INBOX\n%s", res)
	}
	if ms, rs := m.Status(t, "alice", "Sent"), r.Status(t, "alice", "Sent"); ms.Messages != rs.Messages {
		t.Errorf("Sent (not diverged) not brought up to date: master %+v replica %+v", ms, rs)
	}
	if e.inStepOrNamed(t, res) {
		return
	}
	if rep.UsersFailed != 1 || len(rep.Users) != 1 || !strings.Contains(rep.Users[0].Error, "split-brain") || rep.MismatchCounts["content-differs"] == 0 {
		t.Fatalf("report file does not show the split-brain: %+v", rep)
	}
	m.Deliver(t, "alice", cyruspair.Message("m5", "c"))
	res = e.run(t, time.Minute, "rolling", "--sync-log", m.SyncLogDir(e.p.Channel), "--once", "--retry-base", "1m")
	q := retryQueue(t, e.stateDir)
	if res.code != 1 || q["alice"].Attempts != 1 || !q["alice"].NextTry.After(time.Now().Add(30*time.Second)) {
		t.Fatalf("rolling: want exit 1 and alice parked for a minute; queue %+v\n%s", q, res)
	}
	e.assertNoLoss(t, mb, rb)
}

// TestSplitBrainUserCreatedAtBothEnds: during the split-brain a user is created on the
// replica and, independently, on the master (two INBOXes, two uniqueids, mail in
// each). A user's INBOX cannot be moved aside, so the replica's is kept; nothing is
// lost at either end, the collision is recorded, and the user must not be reported
// in step while the master's INBOX is not on the replica (sync and verify exit 1).
func TestSplitBrainUserCreatedAtBothEnds(t *testing.T) {
	e := newEnv(t, "delayed")
	m, r := e.p.Master, e.p.Replica
	r.CreateUser(t, "carol")
	r.Deliver(t, "carol", cyruspair.Message("to carol on the replica", "r"))
	m.CreateUser(t, "carol")
	m.Deliver(t, "carol", cyruspair.Message("to carol on the master", "m"))
	m.CreateFolder(t, "carol", "Sent")
	m.Append(t, "carol", "Sent", cyruspair.Message("sent", "s"))

	mb, rb := e.guids(t, m, "carol"), e.guids(t, r, "carol")
	res := e.run(t, time.Minute, "sync", "--user", "carol", "--attempts", "1")
	ma, ra := e.guids(t, m, "carol"), e.guids(t, r, "carol")
	if l := lostFrom(mb, ma); len(l) > 0 {
		t.Fatalf("the master lost mail: %v", l)
	}
	if l := lostFrom(rb, ra); len(l) > 0 {
		t.Fatalf("mail delivered on the replica lost: %v\n%s", l, res)
	}
	if !hasRecord(res.stdout, "mismatch", "kind", "uniqueid-collision", "replicaName", "user.carol") {
		t.Errorf("no uniqueid-collision record for the two INBOXes\n%s", res)
	}
	if !hasRecord(res.stdout, "decision", "action", "keep", "replicaName", "user.carol") {
		t.Errorf("no keep decision for the replica's INBOX\n%s", res)
	}
	if res.code != 1 {
		t.Errorf("sync reports carol in step although the master's INBOX is not on the replica\n%s", res)
	}
	if v := e.run(t, time.Minute, "verify", "--user", "carol"); v.code != 1 {
		t.Errorf("verify reports carol equal although the INBOXes differ\n%s", v)
	}
}

// TestSplitBrainWrittenAfterMasterDelete: the master deletes a folder while the replica,
// used as the master, receives mail in it. The tombstone (or DELETED.* copy) is evidence
// that the master deleted the folder, not that it deleted mail it never had: the
// replica's new messages must survive, and the outcome must be said.
func TestSplitBrainWrittenAfterMasterDelete(t *testing.T) {
	for _, mode := range []string{"delayed", "immediate"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, mode)
			m, r := e.p.Master, e.p.Replica
			e.seedAlice(t)
			m.Delete(t, "alice", "Old")
			r.Append(t, "alice", "Old", cyruspair.Message("old-r", "written on the replica after the master deleted Old"))

			mb, rb := e.guids(t, m, "alice"), e.guids(t, r, "alice")
			res := e.run(t, time.Minute, "sync", "--user", "alice", "--attempts", "1")
			e.assertNoLoss(t, mb, rb)
			// The folder is kept where it is, with the reason (a tombstone when the
			// delete was immediate, a DELETED.* copy on the master when delayed).
			if !hasRecord(res.stdout, "decision", "action", "keep", "evidence", "split-brain", "replicaName", "user.alice.Old") {
				t.Errorf("no keep/split-brain decision for Old\n%s", res)
			}
			if st := r.Status(t, "alice", "Old"); st.Messages != 2 {
				t.Errorf("replica Old: %+v, want its 2 messages", st)
			}
			if res.code != 0 {
				t.Errorf("sync failed instead of keeping the folder and going on\n%s", res)
			}
			e.inStepOrNamed(t, res)
			// Again: nothing changes, nothing is lost.
			e.run(t, time.Minute, "sync", "--user", "alice", "--attempts", "1")
			e.assertNoLoss(t, mb, rb)
		})
	}
}
