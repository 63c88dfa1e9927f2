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
	// Pace the upload (2 ms per 16 kB chunk, about a second in all) so that the kill
	// lands inside it.
	pr := startProxy(t, e.p.Replica.SyncAddr)
	pr.SetDelay(2 * time.Millisecond)
	e.Replica = pr.Addr
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
	pr.SetDelay(0)
	e.assertEqual(t, "alice", "bob")
	r := e.run(t, time.Minute, "sync", "--user", "alice,bob")
	if r.code != 0 || len(records(r.stdout, "decision")) != 0 {
		t.Fatalf("second sync is not a no-op\n%s", r)
	}
}

// TestKillReplicaSyncServerMidApplyRolling does the same under `replicator rolling`:
// the user whose upload was cut is reported failed with the error, parked with
// backoff, and replicated by the same process once due, with no restart.
func TestKillReplicaSyncServerMidApplyRolling(t *testing.T) {
	e := newEnv(t, "delayed")
	m := e.p.Master
	m.CreateUser(t, "alice")
	m.CreateUser(t, "bob")
	if r := e.run(t, time.Minute, "sync", "--user", "alice,bob"); r.code != 0 {
		t.Fatalf("initial sync\n%s", r)
	}
	base := map[int]int64{}
	for _, pid := range syncServers(t, e.p.Replica) {
		base[pid] = readBytes(pid)
	}
	pr := startProxy(t, e.p.Replica.SyncAddr)
	// The mail is logged before rolling starts, so that alice's 8 MB go up in one batch
	// (delivered while rolling ran, they went up in small batches that could all end
	// before a loaded machine saw the first MiB), paced so that the kill lands inside it.
	m.DeliverMany(t, "alice", bigMessages("big", 80, 100_000))
	m.Deliver(t, "bob", bigMessages("bob", 1, 500)[0])
	pr.SetDelay(10 * time.Millisecond)
	e.Replica = pr.Addr
	roll := e.start(t, "rolling", "--sync-log", m.SyncLogDir(e.p.Channel), "--interval", "50ms",
		"--retry-base", "300ms", "--retry-max", "2s")
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
	waitMessages(t, e.p.Replica, "alice", "INBOX", 80, "after the kill", roll.output)
	waitMessages(t, e.p.Replica, "bob", "INBOX", 1, "after the kill", roll.output)
	out := roll.output()
	roll.kill(syscall.SIGTERM)
	pr.SetDelay(0)
	if !failedWith(out, "alice", "") {
		t.Fatalf("killing sync_server %v mid-upload left no failed user line\n%s", killed, out)
	}
	e.drainRolling(t)
	e.assertEqual(t, "alice", "bob")
	t.Logf("killed %v; reported: %v", killed, failedLines(out)[0]["error"])
}
