package fault

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// TestKillReplicaSyncServerMidApply SIGKILLs the replica's sync_server while it is
// receiving the message upload of a large first sync (it has read more than 1 MiB of
// an ~8 MiB APPLY MESSAGE stream). The replicator must retry the user by itself with
// backoff, say why it retried, finish with exit 0, and leave the replica equal to the
// master; a second sync must find nothing to do.
func TestKillReplicaSyncServerMidApply(t *testing.T) {
	e := newEnv(t, "delayed")
	m := e.p.Master
	m.CreateUser(t, "alice")
	m.CreateFolder(t, "alice", "Archive")
	m.DeliverMany(t, "alice", bigMessages("big", 80, 100_000))
	m.Append(t, "alice", "Archive", bigMessages("arc", 1, 1000)[0])
	m.CreateUser(t, "bob")
	m.Deliver(t, "bob", bigMessages("bob", 1, 500)[0])

	// Baseline: bytes already read by the replica's idle sync_servers.
	base := map[int]int64{}
	for _, pid := range syncServers(t, e.p.Replica) {
		base[pid] = readBytes(pid)
	}
	p := e.start(t, "sync", "--user", "alice,bob", "--attempts", "4")
	var killed []int
	waitFor(t, 60*time.Second, "a replica sync_server reading the upload", func() bool {
		for _, pid := range syncServers(t, e.p.Replica) {
			if readBytes(pid)-base[pid] > 1<<20 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				killed = append(killed, pid)
			}
		}
		return len(killed) > 0
	})
	select {
	case <-p.done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("sync did not finish after the kill\n%s", p.output())
	}
	out := p.output()
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("sync after killing sync_server %v: exit %d\n%s", killed, code, out)
	}
	var alice map[string]any
	for _, u := range records(out, "user") {
		if u["user"] == "alice" {
			alice = u
		}
	}
	if alice == nil || alice["attempts"].(float64) < 2 || alice["outcome"] != "synced" {
		t.Fatalf("alice: want synced after a retry, got %v\n%s", alice, out)
	}
	retries := records(out, "retry")
	if len(retries) == 0 || fmt.Sprint(retries[0]["error"]) == "" {
		t.Fatalf("the failed attempt is not reported (no retry line naming the error)\n%s", out)
	}
	t.Logf("killed sync_server %v; retry line: %v", killed, retries[0])
	e.assertEqual(t, "alice", "bob")
	r := e.run(t, time.Minute, "sync", "--user", "alice,bob")
	if r.code != 0 || len(records(r.stdout, "decision")) != 0 {
		t.Fatalf("second sync is not a no-op\n%s", r)
	}
}
