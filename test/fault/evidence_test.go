package fault

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// copyTree copies dir to dst with owners, modes and times (the cyrus user must still own
// the files once copied back).
func copyTree(t *testing.T, dir, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", dir, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v\n%s", dir, dst, err, out)
	}
}

// TestMasterRestoredFromBackup: the master is restored from a backup (its config
// directory and spool) taken before a folder was created and replicated. The replica
// then holds the only copy of that folder; the ledger says "seen on the master, now
// gone", but the master's mailboxes.db is readable and has no tombstone for it: the
// folder is kept and reported, never deleted on the ledger's word.
func TestMasterRestoredFromBackup(t *testing.T) {
	e := newEnv(t, "delayed")
	m, r := e.p.Master, e.p.Replica
	m.CreateUser(t, "alice")
	m.Deliver(t, "alice", cyruspair.Message("before the backup", "x"))
	if res := e.run(t, time.Minute, "sync", "--user", "alice"); res.code != 0 {
		t.Fatalf("first sync\n%s", res)
	}

	backup := t.TempDir()
	stopInstance(t, m)
	for _, d := range []string{"conf", "spool"} {
		copyTree(t, filepath.Join(m.Dir, d), filepath.Join(backup, d))
	}
	startInstance(t, m)

	m.CreateFolder(t, "alice", "Project")
	m.Append(t, "alice", "Project", cyruspair.Message("after the backup", "only the replica will hold this"))
	if res := e.run(t, time.Minute, "sync", "--user", "alice"); res.code != 0 {
		t.Fatalf("sync of the new folder\n%s", res)
	}
	if st := r.Status(t, "alice", "Project"); st.Messages != 1 {
		t.Fatalf("Project not replicated: %+v", st)
	}
	rb := e.guids(t, r, "alice")

	stopInstance(t, m)
	for _, d := range []string{"conf", "spool"} {
		if err := os.RemoveAll(filepath.Join(m.Dir, d)); err != nil {
			t.Fatal(err)
		}
		copyTree(t, filepath.Join(backup, d), filepath.Join(m.Dir, d))
	}
	startInstance(t, m)

	res := e.run(t, time.Minute, "sync", "--user", "alice")
	if l := lostFrom(rb, e.guids(t, r, "alice")); len(l) > 0 {
		t.Fatalf("the replica's only copy was deleted after the master's restore: %v\n%s", l, res)
	}
	if !hasRecord(res.stdout, "decision", "action", "keep", "replicaName", "user.alice.Project") ||
		!hasRecord(res.stdout, "mismatch", "kind", "replica-only", "replicaName", "user.alice.Project") {
		t.Fatalf("the kept folder is not reported\n%s", res)
	}
}
