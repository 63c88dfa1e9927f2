package replication

import (
	"slices"
	"strings"
	"testing"

	"github.com/cyrusrepl/cyrusrepl/internal/executor"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// One scenario per row of the design decision table, on the real master, in both
// delete modes: each ends with the expected replica state and decision record.

var deleteModes = []string{"delayed", "immediate"}

func names(t *testing.T, in *cyruspair.Instance, user string) []string {
	t.Helper()
	return in.List(t, user)
}

func TestCyrusRowRename(t *testing.T) {
	for _, mode := range deleteModes {
		t.Run(mode, func(t *testing.T) {
			e := startEnv(t, mode, false)
			cyruspair.SeedAlice(t, e.p.Master)
			e.sync(t, "alice")
			e.p.Master.Rename(t, "alice", "Work", "Projects")
			res := e.sync(t, "alice")
			if !hasDecision(res, report.ActionRename, report.EvidenceNameHistory, "user.alice.Work") {
				t.Fatalf("no rename decision: %+v", res.Decisions)
			}
			if res.BodiesSent != 0 {
				t.Fatalf("rename re-uploaded %d bodies", res.BodiesSent)
			}
			assertEqual(t, e.p, e.p.Replica, "alice")
		})
	}
}

func TestCyrusRowMasterOnlyAndDelete(t *testing.T) {
	for _, mode := range deleteModes {
		t.Run(mode, func(t *testing.T) {
			e := startEnv(t, mode, false)
			cyruspair.SeedAlice(t, e.p.Master)
			e.sync(t, "alice")
			e.p.Master.CreateFolder(t, "alice", "New")
			e.p.Master.Append(t, "alice", "New", cyruspair.Message("n", "new"))
			e.p.Master.Delete(t, "alice", "Sent")
			res := e.sync(t, "alice")
			if !hasDecision(res, report.ActionCreate, report.EvidenceNone, "user.alice.New") {
				t.Fatalf("no create decision: %+v", res.Decisions)
			}
			switch mode {
			case "delayed":
				if !hasDecision(res, report.ActionMirrorDelete, report.EvidenceDeletedNamespace, "user.alice.Sent") {
					t.Fatalf("no mirror-delete decision: %+v", res.Decisions)
				}
			case "immediate":
				if !hasDecision(res, report.ActionDelete, report.EvidenceTombstone, "user.alice.Sent") {
					t.Fatalf("no delete/tombstone decision: %+v", res.Decisions)
				}
			}
			if slices.Contains(names(t, e.p.Replica, "alice"), "Sent") {
				t.Fatal("Sent still live on the replica")
			}
			assertEqual(t, e.p, e.p.Replica, "alice")
		})
	}
}

func TestCyrusRowReplicaOnlyKept(t *testing.T) {
	for _, mode := range deleteModes {
		t.Run(mode, func(t *testing.T) {
			e := startEnv(t, mode, false)
			cyruspair.SeedAlice(t, e.p.Master)
			e.sync(t, "alice")
			// Split brain: mail written to the replica alone.
			e.p.Replica.CreateFolder(t, "alice", "Split")
			e.p.Replica.Append(t, "alice", "Split", cyruspair.Message("only here", "precious"))
			res := e.sync(t, "alice")
			if !hasDecision(res, report.ActionKeep, report.EvidenceNone, "user.alice.Split") || res.Kept != 1 {
				t.Fatalf("no keep decision: %+v", res.Decisions)
			}
			if st := e.p.Replica.Status(t, "alice", "Split"); st.Messages != 1 {
				t.Fatalf("replica-only folder lost mail: %+v", st)
			}
		})
	}
}

func TestCyrusRowSameNameDifferentUniqueID(t *testing.T) {
	for _, mode := range deleteModes {
		t.Run(mode, func(t *testing.T) {
			e := startEnv(t, mode, false)
			cyruspair.SeedAlice(t, e.p.Master)
			e.sync(t, "alice")
			// No evidence: both ends created "Clash" independently.
			e.p.Master.CreateFolder(t, "alice", "Clash")
			e.p.Master.Append(t, "alice", "Clash", cyruspair.Message("m", "master's"))
			e.p.Replica.CreateFolder(t, "alice", "Clash")
			e.p.Replica.Append(t, "alice", "Clash", cyruspair.Message("r", "replica's"))
			// With evidence: Work.Old deleted on the master and a new one created.
			e.p.Master.Delete(t, "alice", "Work.Old")
			e.p.Master.CreateFolder(t, "alice", "Work.Old")
			res := e.sync(t, "alice")
			if !hasDecision(res, report.ActionMoveAside, report.EvidenceNone, "user.alice.Clash") {
				t.Fatalf("no move-aside decision: %+v", res.Decisions)
			}
			// Immediate: recreating the name drops the old uniqueid's N and I records from
			// mailboxes.db (observed on 3.6.1). The ledger alone ("seen on the master, now
			// gone") never outweighs a readable mailboxes.db without a tombstone (a restored
			// master looks the same): the old folder is moved aside, kept and reported.
			wantOld := report.ActionMoveAside
			wantEv := report.EvidenceNone
			kept := 2
			if mode == "delayed" {
				kept = 1
				wantOld, wantEv = report.ActionMirrorDelete, report.EvidenceDeletedNamespace
			}
			if !hasDecision(res, wantOld, wantEv, "user.alice.Work.Old") {
				t.Fatalf("no %s/%s decision for the old Work.Old: %+v", wantOld, wantEv, res.Decisions)
			}
			var aside string
			for _, n := range names(t, e.p.Replica, "alice") {
				if strings.HasPrefix(n, "Clash-replica-") {
					aside = n
				}
			}
			if aside == "" {
				t.Fatalf("replica's Clash not moved aside: %v", names(t, e.p.Replica, "alice"))
			}
			if st := e.p.Replica.Status(t, "alice", aside); st.Messages != 1 {
				t.Fatalf("moved-aside folder lost mail: %+v", st)
			}
			// Every master folder is now on the replica; the aside folder is the only extra.
			res = e.sync(t, "alice")
			if !res.Equal || res.Kept != kept {
				t.Fatalf("after: equal=%v kept=%d %+v", res.Equal, res.Kept, res.Decisions)
			}
		})
	}
}

func TestCyrusRowCrossUserRename(t *testing.T) {
	e := startEnv(t, "delayed", false)
	m := e.p.Master
	cyruspair.SeedAlice(t, m)
	m.CreateUser(t, "bob")
	e.sync(t, "alice")
	e.sync(t, "bob")
	admin := m.IMAPAs(t, e.p.AdminUser)
	aw, b, bw := cyruspair.Quote(e.p.IMAPAdminName("alice", "Work")), cyruspair.Quote(e.p.IMAPAdminName("bob", "")), cyruspair.Quote(e.p.IMAPAdminName("bob", "Work"))
	for _, cmd := range []string{`SETACL ` + aw + ` admin lrswipkxtecda`, `SETACL ` + b + ` admin lrswipkxtecda`, `RENAME ` + aw + ` ` + bw} {
		if _, err := admin.Cmd("%s", cmd); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
	}
	res := e.sync(t, "bob") // alice must join by herself
	if !hasDecision(res, report.ActionRename, report.EvidenceNameHistory, "user.alice.Work") {
		t.Fatalf("no cross-user rename: %+v", res.Decisions)
	}
	if res.BodiesSent != 0 {
		t.Fatalf("cross-user rename uploaded %d bodies", res.BodiesSent)
	}
	var users []string
	for _, u := range res.Users {
		users = append(users, u.User)
	}
	if !slices.Equal(users, []string{"alice", "bob"}) {
		t.Fatalf("batch users %v", users)
	}
	assertEqual(t, e.p, e.p.Replica, "alice", "bob")
}

func TestCyrusRowUserDeleted(t *testing.T) {
	for _, mode := range deleteModes {
		t.Run(mode, func(t *testing.T) {
			e := startEnv(t, mode, false)
			cyruspair.SeedAlice(t, e.p.Master)
			e.sync(t, "alice")
			admin := e.p.Master.IMAPAs(t, e.p.AdminUser)
			a := cyruspair.Quote(e.p.IMAPAdminName("alice", ""))
			for _, cmd := range []string{`SETACL ` + a + ` admin lrswipkxtecda`, `DELETE ` + a} {
				if _, err := admin.Cmd("%s", cmd); err != nil {
					t.Fatalf("%s: %v", cmd, err)
				}
			}
			res := e.sync(t, "alice")
			for _, d := range res.Decisions {
				if d.UniqueID == "" {
					continue // meta (a subscription removed with the user): not a folder
				}
				if d.Action == report.ActionKeep || d.Action == report.ActionMoveAside || d.Action != report.ActionUpdate && d.Action != report.ActionCreate && d.Evidence == report.EvidenceNone {
					t.Fatalf("folder of a deleted user decided without evidence: %+v", d)
				}
			}
			if len(res.Decisions) == 0 {
				t.Fatal("no decisions for a deleted user")
			}
			res2 := e.sync(t, "alice")
			if mode == "delayed" {
				if !res2.Equal {
					t.Fatalf("not converged: %v", decisionsOf(res2))
				}
				assertEqual(t, e.p, e.p.Replica, "alice")
				return
			}
			// Immediate: 3.6.1 leaves user.alice.Work as an intermediate on the master.
			// The replica's folder (with its mail) is deleted on that evidence; the
			// intermediate APPLY is accepted but a user without INBOX does not list it,
			// so the only difference left is a mail-less intermediate (known gap).
			for _, f := range e.p.Replica.List(t, "alice") {
				t.Errorf("replica still lists %s for a deleted user", f)
			}
			for _, d := range res2.Decisions {
				if d.Action != report.ActionCreate || d.MasterName != "user.alice.Work" {
					t.Fatalf("unexpected second-pass decision %+v", d)
				}
			}
		})
	}
}

func decisionsOf(res *executor.BatchResult) []string {
	var out []string
	for _, d := range res.Decisions {
		out = append(out, string(d.Action)+"/"+string(d.Evidence)+" "+d.ReplicaName+">"+d.MasterName)
	}
	return out
}
