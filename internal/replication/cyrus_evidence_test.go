package replication

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/executor"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// Tests of the evidence a destructive action needs, against a real Cyrus pair.

// liveGUIDs maps every live GUID of the user's folders at one end to the folders
// holding it (read over a fresh read-only csync session).
func liveGUIDs(t *testing.T, p *cyruspair.Pair, in *cyruspair.Instance, user string) map[string][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := csync.DialMaster(ctx, in.SyncAddr, csync.Options{Username: p.ReplUser, Password: p.ReplPassword, TLS: p.ClientTLS()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	us, err := c.GetUser(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, mb := range us.Mailboxes {
		if strings.ContainsAny(mb.Type, "di") {
			continue
		}
		full, err := c.GetFullMailbox(ctx, mb.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range full.Records {
			if !r.Expunged() {
				out[r.GUID] = append(out[r.GUID], mb.Name)
			}
		}
	}
	return out
}

// assertKept fails when a GUID of before is in no folder of the user on the replica.
func assertKept(t *testing.T, p *cyruspair.Pair, user string, before map[string][]string) {
	t.Helper()
	after := liveGUIDs(t, p, p.Replica, user)
	var lost []string
	for g, fs := range before {
		if len(after[g]) == 0 {
			lost = append(lost, g[:12]+"@"+strings.Join(fs, ","))
		}
	}
	sort.Strings(lost)
	if len(lost) > 0 {
		t.Fatalf("mail on the replica lost: %v", lost)
	}
}

func deleteUser(t *testing.T, in *cyruspair.Instance, admin, user string) {
	t.Helper()
	c := in.IMAPAs(t, admin)
	name := cyruspair.Quote(in.AdminName(user, ""))
	for _, cmd := range []string{"SETACL " + name + " " + admin + " lrswipkxtecda", "DELETE " + name} {
		if _, err := c.Cmd("%s", cmd); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
	}
}

// onceAt returns a BeforeRecheck hook that runs fn the first time name is re-checked.
func onceAt(name string, fn func()) func(string) {
	done := false
	return func(n string) {
		if n == name && !done {
			done = true
			fn()
		}
	}
}

// syncWithLateWrite syncs alice with write run on the replica right before the executor
// re-checks folder for a destructive action, and fails the test unless that re-check
// happened and every message the replica held after the write is still there.
func syncWithLateWrite(t *testing.T, e *env, folder string, write func()) *executor.BatchResult {
	t.Helper()
	var before map[string][]string
	e.x.BeforeRecheck = onceAt(folder, func() {
		write()
		before = liveGUIDs(t, e.p, e.p.Replica, "alice")
	})
	res := e.sync(t, "alice")
	if before == nil {
		t.Fatalf("the destructive action on %s was never re-checked: %v", folder, decisionsOf(res))
	}
	assertKept(t, e.p, "alice", before)
	return res
}

// TestCyrusCompareAndDeleteDelivery: the master deletes a user (tombstone); between the
// plan and the replica's UNMAILBOX, mail is delivered over LMTP to the replica's INBOX.
// The delete must not go ahead on the plan's stale view: the delivered mail stays and
// the folder is kept and reported as a split-brain.
func TestCyrusCompareAndDeleteDelivery(t *testing.T) {
	e := startEnv(t, "immediate", false)
	m, r := e.p.Master, e.p.Replica
	m.CreateUser(t, "alice")
	m.Deliver(t, "alice", cyruspair.Message("first", "one"))
	e.sync(t, "alice")
	deleteUser(t, m, e.p.AdminUser, "alice")
	res := syncWithLateWrite(t, e, "user.alice", func() {
		r.Deliver(t, "alice", cyruspair.Message("late", "delivered on the replica after the plan"))
	})
	if !hasDecision(res, report.ActionKeep, report.EvidenceSplitBrain, "user.alice") {
		t.Fatalf("no keep/split-brain decision: %v", decisionsOf(res))
	}
}

// TestCyrusCompareAndDeleteMoveAside: a split-brained folder is moved aside (the
// replica's extra mail rescued, the copy deleted and recreated from the master); a
// message appended on the replica after the rescue was read and before the delete must
// not be lost.
func TestCyrusCompareAndDeleteMoveAside(t *testing.T) {
	e := startEnv(t, "delayed", false)
	m, r := e.p.Master, e.p.Replica
	m.CreateUser(t, "alice")
	m.CreateFolder(t, "alice", "Work")
	m.Append(t, "alice", "Work", cyruspair.Message("seed", "w"))
	e.sync(t, "alice")
	r.Append(t, "alice", "Work", cyruspair.Message("r1", "replica one"))
	r.Append(t, "alice", "Work", cyruspair.Message("r2", "replica two"))
	m.Append(t, "alice", "Work", cyruspair.Message("m1", "master one"))
	res := syncWithLateWrite(t, e, "user.alice.Work", func() {
		r.Append(t, "alice", "Work", cyruspair.Message("late", "appended on the replica after the rescue"))
	})
	if !hasDecision(res, report.ActionMoveAside, report.EvidenceSplitBrain, "user.alice.Work") {
		t.Fatalf("no move-aside decision: %v", decisionsOf(res))
	}
}

// TestCyrusCompareAndDeleteMirroredDelete: the master deletes a folder in delayed mode
// (moves it to DELETED.*); between the plan and the replica's rename into DELETED.*, a
// message is appended to the replica's folder. The rename must not go ahead on the
// plan's view: the folder stays under its name, kept and reported.
func TestCyrusCompareAndDeleteMirroredDelete(t *testing.T) {
	e := startEnv(t, "delayed", false)
	m, r := e.p.Master, e.p.Replica
	m.CreateUser(t, "alice")
	m.CreateFolder(t, "alice", "Work")
	m.Append(t, "alice", "Work", cyruspair.Message("w", "work"))
	e.sync(t, "alice")
	m.Delete(t, "alice", "Work")
	hooked := false
	e.x.BeforeRecheck = onceAt("user.alice.Work", func() {
		hooked = true
		r.Append(t, "alice", "Work", cyruspair.Message("late", "appended on the replica after the plan"))
	})
	res := e.sync(t, "alice")
	if !hooked {
		t.Fatalf("the rename of Work into DELETED.* was never re-checked: %v", decisionsOf(res))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if got := replicaUIDs(ctx, t, e.x, "user.alice.Work"); got["user.alice.Work"] == "" {
		t.Fatalf("the folder written after the plan was mirrored into DELETED.*: %v", decisionsOf(res))
	}
	if st := r.Status(t, "alice", "Work"); st.Messages != 2 {
		t.Fatalf("replica's Work: %+v, want 2 messages", st)
	}
	if !hasDecision(res, report.ActionKeep, report.EvidenceSplitBrain, "user.alice.Work") {
		t.Fatalf("no keep/split-brain decision: %v", decisionsOf(res))
	}
}

// TestCyrusCompareAndDeleteResyncBeside: a rolling cycle replays the master's real sync
// log after the master deleted a user; between its plan and its delete, mail reaches the
// replica and a user resync (a second executor with the same state) runs the user. Neither
// may delete the replica's INBOX, and both report the kept folder.
func TestCyrusCompareAndDeleteResyncBeside(t *testing.T) {
	e := startEnv(t, "immediate", false)
	m, r := e.p.Master, e.p.Replica
	m.CreateUser(t, "alice")
	m.Deliver(t, "alice", cyruspair.Message("first", "one"))
	e.sync(t, "alice")
	logDir := m.SyncLogDir(e.p.Channel)
	drainLog(t, logDir)
	resync := e.executor(t, r)
	resync.Ledger = e.x.Ledger
	deleteUser(t, m, e.p.AdminUser, "alice")
	var before map[string][]string
	var resyncRes *executor.BatchResult
	e.x.BeforeRecheck = onceAt("user.alice", func() {
		r.Deliver(t, "alice", cyruspair.Message("late", "delivered on the replica"))
		before = liveGUIDs(t, e.p, r, "alice")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var err error
		if resyncRes, err = resync.Sync(ctx, []string{"alice"}, false); err != nil {
			t.Fatalf("resync beside: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	records, rec := rollOnce(ctx, t, e.x, m, logDir)
	if u := rec.Outcomes()["alice"]; u.Outcome == "" || u.Outcome == "failed" {
		t.Fatalf("rolling: alice %+v\n%v", u, records)
	}
	if before == nil {
		t.Fatalf("the delete of user.alice was never re-checked: %v", records)
	}
	assertKept(t, e.p, "alice", before)
	if !recordsHave(records, report.ActionKeep, report.EvidenceSplitBrain, "user.alice") {
		t.Fatalf("rolling: no keep/split-brain decision: %v", records)
	}
	if !hasDecision(resyncRes, report.ActionKeep, report.EvidenceSplitBrain, "user.alice") {
		t.Fatalf("resync: no keep/split-brain decision: %v", decisionsOf(resyncRes))
	}
}

// seedWork gives alice Work and Work.Old, each with a message, on the master.
func seedWork(t *testing.T, m *cyruspair.Instance) {
	t.Helper()
	m.CreateUser(t, "alice")
	m.CreateFolder(t, "alice", "Work")
	m.CreateFolder(t, "alice", "Work.Old")
	m.Append(t, "alice", "Work", cyruspair.Message("w", "work"))
	m.Append(t, "alice", "Work.Old", cyruspair.Message("o", "old"))
}

// TestCyrusMasterIntermediateSplitBrain: in immediate delete mode the master deletes a
// user, and Cyrus 3.6 keeps the uniqueid of a folder with a child as an intermediate;
// the replica's copy took mail first. The replica's folder is past its in-step mark:
// kept and reported, like a tombstone's folder, not deleted for the intermediate.
func TestCyrusMasterIntermediateSplitBrain(t *testing.T) {
	e := startEnv(t, "immediate", false)
	m, r := e.p.Master, e.p.Replica
	seedWork(t, m)
	e.sync(t, "alice")
	r.Append(t, "alice", "Work", cyruspair.Message("r", "written on the replica"))
	before := liveGUIDs(t, e.p, r, "alice")
	for g, fs := range before {
		if fs[0] != "user.alice.Work" {
			delete(before, g) // only Work's mail was written on the replica
		}
	}
	deleteUser(t, m, e.p.AdminUser, "alice")
	res := e.sync(t, "alice")
	if !hasDecision(res, report.ActionKeep, report.EvidenceSplitBrain, "user.alice.Work") {
		t.Fatalf("no keep/split-brain decision: %v", decisionsOf(res))
	}
	assertKept(t, e.p, "alice", before)
	// Still a split-brain on the next pass (nothing resolved it), still kept.
	res = e.sync(t, "alice")
	assertKept(t, e.p, "alice", before)
	if !hasDecision(res, report.ActionKeep, report.EvidenceSplitBrain, "user.alice.Work") {
		t.Fatalf("second pass: no keep/split-brain decision: %v", decisionsOf(res))
	}
}

// TestCyrusMasterIntermediateInStep: the same user deletion with no write on the
// replica: the replica's folder is deleted for the master's intermediate, and later
// passes never report the intermediate as a split-brain.
func TestCyrusMasterIntermediateInStep(t *testing.T) {
	e := startEnv(t, "immediate", false)
	m := e.p.Master
	seedWork(t, m)
	e.sync(t, "alice")
	deleteUser(t, m, e.p.AdminUser, "alice")
	res := e.sync(t, "alice")
	if !hasDecision(res, report.ActionDelete, report.EvidenceIntermediate, "user.alice.Work") {
		t.Fatalf("no delete/master-intermediate decision: %v", decisionsOf(res))
	}
	for pass := 1; pass <= 2; pass++ {
		res = e.sync(t, "alice")
		for _, d := range res.Decisions {
			if d.Evidence == report.EvidenceSplitBrain || d.Action == report.ActionDelete {
				t.Fatalf("pass %d: intermediate acted on or reported as a split-brain: %v", pass, decisionsOf(res))
			}
		}
	}
}

// TestCyrusMailboxLevelSplitBrainDeleted: the master deletes a folder (delayed: renamed
// into DELETED.*) that took mail on the replica since it was last in step, the master
// having taken more meanwhile (the replica's counters are not ahead, only the ledger's
// in-step mark tells). Replayed from the real sync log, the mailbox-level path must keep
// the folder under its name and report it, like the full path, not rename it into
// DELETED.* and then fail on checksum errors.
func TestCyrusMailboxLevelSplitBrainDeleted(t *testing.T) {
	e := startEnv(t, "delayed", false)
	m, r := e.p.Master, e.p.Replica
	m.CreateUser(t, "alice")
	m.CreateFolder(t, "alice", "Work")
	m.Append(t, "alice", "Work", cyruspair.Message("w", "work"))
	e.sync(t, "alice")
	logDir := m.SyncLogDir(e.p.Channel)
	drainLog(t, logDir)
	r.Append(t, "alice", "Work", cyruspair.Message("r", "written on the replica"))
	m.Append(t, "alice", "Work", cyruspair.Message("m1", "master one"))
	m.Append(t, "alice", "Work", cyruspair.Message("m2", "master two"))
	m.Delete(t, "alice", "Work")
	before := liveGUIDs(t, e.p, r, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for pass := 1; pass <= 2; pass++ {
		records, rec := rollOnce(ctx, t, e.x, m, logDir)
		if u := rec.Outcomes()["alice"]; pass == 1 && (u.Outcome == "" || u.Outcome == "failed") {
			t.Fatalf("pass %d: alice %+v\n%v", pass, u, records)
		}
		assertKept(t, e.p, "alice", before)
		if got := replicaUIDs(ctx, t, e.x, "user.alice.Work"); got["user.alice.Work"] == "" {
			t.Fatalf("pass %d: the split-brained Work is no longer under its name on the replica\n%v", pass, records)
		}
		if pass == 1 && !recordsHave(records, report.ActionKeep, report.EvidenceSplitBrain, "user.alice.Work") {
			t.Fatalf("no keep/split-brain decision for Work: %v", records)
		}
		m.Deliver(t, "alice", cyruspair.Message("more", "so that the log has a line"))
	}
}

// recordsHave reports whether the emitted records hold a decision on replica name rname.
func recordsHave(records []any, a report.Action, ev report.Evidence, rname string) bool {
	for _, r := range records {
		if d, ok := r.(executor.DecisionLine); ok && d.Action == a && d.Evidence == ev && d.ReplicaName == rname {
			return true
		}
	}
	return false
}

// manageSieve runs ManageSieve commands (each answered OK) for user on an instance,
// authenticating as the admin on the user's behalf.
func manageSieve(t *testing.T, p *cyruspair.Pair, in *cyruspair.Instance, user string, cmds ...string) {
	t.Helper()
	in.ManageSieve(t, user, cmds...)
}

func putScript(name, script string) string {
	return fmt.Sprintf("PUTSCRIPT \"%s\" {%d+}\r\n%s", name, len(script), script)
}

// sieveNames lists the user's sieve scripts (NAME.script) at one end.
func sieveNames(t *testing.T, p *cyruspair.Pair, in *cyruspair.Instance, user string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := csync.DialMaster(ctx, in.SyncAddr, csync.Options{Username: p.ReplUser, Password: p.ReplPassword, TLS: p.ClientTLS()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	u, err := c.GetUser(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range u.Sieve {
		if strings.HasSuffix(s.Filename, ".script") {
			out = append(out, s.Filename)
		}
	}
	sort.Strings(out)
	return out
}

// TestCyrusMetaSplitBrain: after a split-brain, a Sieve script and a subscription exist
// only on the replica. The replica-only script is kept (the master never had it) and
// reported; the subscription the master lacks is removed with a decision record. A
// script the master had and deleted, unchanged on the replica, is deleted there too.
func TestCyrusMetaSplitBrain(t *testing.T) {
	e := startEnv(t, "delayed", false)
	m, r := e.p.Master, e.p.Replica
	m.CreateUser(t, "alice")
	m.CreateFolder(t, "alice", "Work")
	manageSieve(t, e.p, m, "alice", putScript("main", "keep;\r\n"), putScript("old", "discard;\r\n"), `SETACTIVE "main"`)
	e.sync(t, "alice")
	if got := sieveNames(t, e.p, r, "alice"); strings.Join(got, ",") != "main.script,old.script" {
		t.Fatalf("sieve not replicated: %v", got)
	}
	manageSieve(t, e.p, r, "alice", putScript("vacation", "require \"vacation\";\r\nvacation \"away\";\r\n"))
	r.Subscribe(t, "alice", "Work")
	manageSieve(t, e.p, m, "alice", `DELETESCRIPT "old"`)

	res := e.sync(t, "alice")
	if got := sieveNames(t, e.p, r, "alice"); strings.Join(got, ",") != "main.script,vacation.script" {
		t.Fatalf("replica's sieve scripts after the split-brain: %v (want main and the replica-only vacation; old deleted on the master)", got)
	}
	has := func(a report.Action, subject string) bool {
		for _, d := range res.Decisions {
			if d.Action == a && d.User == "alice" && strings.Contains(d.ReplicaName, subject) {
				return true
			}
		}
		return false
	}
	for _, c := range []struct {
		a       report.Action
		subject string
	}{{report.ActionKeep, "vacation.script"}, {report.ActionDelete, "old.script"}, {report.ActionDelete, "user.alice.Work"}} {
		if !has(c.a, c.subject) {
			t.Errorf("no %s decision naming %s: %+v", c.a, c.subject, res.Decisions)
		}
	}
}

// TestCyrusDeletedFolderRefusedKept: without in-step marks (no ledger: state lost), a
// folder the master deleted (delayed) is mirrored into DELETED.* although the replica
// took mail in it; the replica then refuses the master's state for it. The batch must
// keep the copy and report it, not fail on the checksum error on every run.
func TestCyrusDeletedFolderRefusedKept(t *testing.T) {
	e := startEnv(t, "delayed", false)
	m, r := e.p.Master, e.p.Replica
	e.x.Ledger = nil
	m.CreateUser(t, "alice")
	m.CreateFolder(t, "alice", "Work")
	m.Append(t, "alice", "Work", cyruspair.Message("w", "work"))
	e.sync(t, "alice")
	r.Append(t, "alice", "Work", cyruspair.Message("r", "written on the replica"))
	m.Append(t, "alice", "Work", cyruspair.Message("m1", "master one"))
	m.Append(t, "alice", "Work", cyruspair.Message("m2", "master two"))
	m.Delete(t, "alice", "Work")
	before := liveGUIDs(t, e.p, r, "alice")
	for pass := 1; pass <= 2; pass++ {
		res := e.sync(t, "alice")
		assertKept(t, e.p, "alice", before)
		if !hasDecision(res, report.ActionKeep, report.EvidenceSplitBrain, "") {
			t.Fatalf("pass %d: no keep/split-brain decision: %v", pass, decisionsOf(res))
		}
	}
}

// TestCyrusMetaFlagsAndAnnotationOnReplica: after a split-brain, a flag and a folder
// annotation changed only on the replica. The folder is past the master's (its
// highestmodseq): it is moved aside and recreated from the master, and the decision
// record says that the replica's flag and annotation changes become the master's.
func TestCyrusMetaFlagsAndAnnotationOnReplica(t *testing.T) {
	e := startEnv(t, "delayed", false)
	m, r := e.p.Master, e.p.Replica
	m.CreateUser(t, "alice")
	m.CreateFolder(t, "alice", "Work")
	m.Append(t, "alice", "Work", cyruspair.Message("w", "work"))
	e.sync(t, "alice")
	r.SetAnnotation(t, "alice", "Work", "/comment", "replica note")
	r.Store(t, "alice", "Work", "1", "+FLAGS", `\Flagged`)
	res := e.sync(t, "alice")
	for _, d := range res.Decisions {
		if d.Action == report.ActionMoveAside && d.MasterName == "user.alice.Work" && strings.Contains(d.Reason, "flags and annotations changed on the replica") {
			assertEqual(t, e.p, r, "alice")
			return
		}
	}
	t.Fatalf("no decision records that the replica's flag and annotation changes are replaced: %+v", res.Decisions)
}
