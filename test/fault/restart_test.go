package fault

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/state"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// TestReplicaRestartUnderRolling stops the whole replica instance (its master, by PID)
// while `replicator rolling` runs and mail keeps arriving, then starts it again. While
// it is down the users fail with the connection error named, and are parked in the
// durable retry queue with a growing backoff (no hot loop); once it is back, every
// message arrives without restarting the replicator.
func TestReplicaRestartUnderRolling(t *testing.T) {
	e := newEnv(t, "delayed")
	m := e.p.Master
	for _, u := range []string{"alice", "bob"} {
		m.CreateUser(t, u)
		m.Deliver(t, u, cyruspair.Message("before", "x"))
	}
	roll := e.start(t, "rolling", "--sync-log", m.SyncLogDir(e.p.Channel), "--interval", "50ms",
		"--retry-base", "300ms", "--retry-max", "2s", "--io-timeout", "5s")
	waitMessages(t, e.p.Replica, "bob", "INBOX", 1, "before the restart", roll.output)

	stopInstance(t, e.p.Replica)
	m.Deliver(t, "alice", cyruspair.Message("while down 1", "x"))
	m.CreateFolder(t, "bob", "Down")
	m.Append(t, "bob", "Down", cyruspair.Message("while down 2", "y"))
	waitFor(t, 60*time.Second, "alice failing with the connection error", func() bool {
		return failedWith(roll.output(), "alice", "connection refused")
	})
	// Backoff, not a hot loop: the queue holds alice with a next try in the future,
	// after at least two failures.
	waitFor(t, 60*time.Second, "alice backing off in retry.json", func() bool {
		q := retryQueue(t, e.stateDir)
		a, ok := q["alice"]
		return ok && a.Attempts >= 2 && a.NextTry.After(time.Now().Add(-time.Second)) && a.LastError != ""
	})
	waitFor(t, 30*time.Second, "the report file naming the connection error", func() bool {
		s := e.readReport(t)
		return s.UsersFailed > 0 && strings.Contains(s.LastError, "connection refused")
	})
	m.Deliver(t, "alice", cyruspair.Message("while down 3", "z"))
	startInstance(t, e.p.Replica)

	waitMessages(t, e.p.Replica, "alice", "INBOX", 3, "after the restart", roll.output)
	waitMessages(t, e.p.Replica, "bob", "Down", 1, "after the restart", roll.output)
	waitFor(t, 30*time.Second, "the report file showing no failed user", func() bool { return e.readReport(t).UsersFailed == 0 })
	roll.kill(syscall.SIGTERM)
	e.drainRolling(t)
	e.assertEqual(t, "alice", "bob")
	t.Logf("%d failed user lines while the replica was down", len(failedLines(roll.output())))
}

func retryQueue(t *testing.T, stateDir string) map[string]state.RetryEntry {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stateDir, "retry.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var list []state.RetryEntry
	if err := json.Unmarshal(b, &list); err != nil {
		return nil // caught between writes is impossible (atomic), but be lenient
	}
	out := map[string]state.RetryEntry{}
	for _, e := range list {
		out[e.User] = e
	}
	return out
}

// TestRollingSIGKILLMidBatch kills `replicator rolling` with SIGKILL mid-batch, five
// times, with more mail, folder creations and renames logged each round. Each kill is
// proven to land mid-batch: the log was taken, at least one user's new mail was already
// applied on the replica in this run, and another user's was not yet (the upload is
// paced by a throttling proxy and one worker takes the users in turn); at that moment
// the unfinished work is durable (in log-run or the pending queue). A restarted
// replicator picks it up, and in the end every message is on the replica and verify
// finds no difference.
func TestRollingSIGKILLMidBatch(t *testing.T) {
	e := newEnv(t, "delayed")
	m := e.p.Master
	users := []string{"alice", "bob", "carol"}
	for _, u := range users {
		m.CreateUser(t, u)
		m.CreateFolder(t, u, "Work")
	}
	logDir := m.SyncLogDir(e.p.Channel)
	e.drainRolling(t) // the users exist on the replica: their INBOX counts can be read
	pr := startProxy(t, e.p.Replica.SyncAddr)
	pr.SetDelay(25 * time.Millisecond) // ~0.6 MB/s: each user's 600 kB take about a second
	e.Replica = pr.Addr
	want := map[string]uint32{}
	count := func() map[string]uint32 {
		got := map[string]uint32{}
		for _, u := range users {
			got[u] = e.p.Replica.Status(t, u, "INBOX").Messages
		}
		return got
	}
	for round := range 5 {
		for _, u := range users {
			m.DeliverMany(t, u, bigMessages(fmt.Sprintf("r%d", round), 6, 100_000))
			want[u] += 6
		}
		u := users[round%len(users)]
		m.CreateFolder(t, u, fmt.Sprintf("New%d", round))
		m.Append(t, u, fmt.Sprintf("New%d", round), cyruspair.Message("new", "x"))
		m.Rename(t, u, "Work", fmt.Sprintf("Work%d", round))
		m.Rename(t, u, fmt.Sprintf("Work%d", round), "Work")
		before := count()
		roll := e.start(t, "rolling", "--sync-log", logDir, "--interval", "20ms", "--retry-base", "100ms", "--workers", "1")
		var done, behind []string
		mid := func() bool {
			if _, err := os.Stat(filepath.Join(logDir, "log")); err == nil {
				return false // not taken yet
			}
			now := count()
			done, behind = nil, nil
			for _, u := range users {
				if now[u] > before[u] {
					done = append(done, u)
				}
				if now[u] < want[u] {
					behind = append(behind, u)
				}
			}
			return len(done) > 0 && len(behind) > 0
		}
		waitFor(t, 2*time.Minute, "a batch half applied (one user's new mail on the replica, another's not yet)", mid)
		roll.kill(syscall.SIGKILL)
		if !mid() {
			t.Fatalf("round %d: the batch ended before the SIGKILL landed; the kill proved nothing\n%s", round, roll.output())
		}
		if !durable(t, behind, logDir, e.stateDir) {
			t.Fatalf("round %d: killed with %v behind, but their work is neither in log-run nor in the pending queue (log-pending/)", round, behind)
		}
		t.Logf("round %d: SIGKILL with %v applied and %v behind", round, done, behind)
	}
	pr.SetDelay(0)
	e.drainRolling(t)
	for _, u := range users {
		if st := e.p.Replica.Status(t, u, "INBOX"); st.Messages != want[u] {
			t.Fatalf("%s INBOX on the replica: %d messages, want %d", u, st.Messages, want[u])
		}
	}
	e.assertEqual(t, users...)
}

// durable reports whether every user's work is held by log-run or the pending queue
// (beside the log, or in the state directory when the log comes through the agent).
func durable(t *testing.T, users []string, logDir, stateDir string) bool {
	t.Helper()
	paths := []string{filepath.Join(logDir, "log-run")}
	segs, _ := filepath.Glob(filepath.Join(logDir, "log-pending", "*.json"))
	more, _ := filepath.Glob(filepath.Join(stateDir, "log-pending", "*.json"))
	segs = append(segs, more...)
	var held []byte
	for _, p := range append(paths, segs...) {
		b, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		held = append(held, b...)
	}
	for _, u := range users {
		if !strings.Contains(string(held), "user."+u) && !strings.Contains(string(held), `"`+u+`"`) {
			return false
		}
	}
	return true
}
