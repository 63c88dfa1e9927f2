package fault

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/faultproxy"
)

func startProxy(t *testing.T, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// waitMessages waits until folder holds n messages on inst.
func waitMessages(t *testing.T, inst *cyruspair.Instance, user, folder string, n uint32, what string, out func() string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		if containsFolder(inst.List(t, user), folder) && inst.Status(t, user, folder).Messages == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s/%s on %s never reached %d messages\n%s", what, user, folder, inst.Name, n, out())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func containsFolder(list []string, f string) bool {
	for _, l := range list {
		if l == f {
			return true
		}
	}
	return false
}

// failedWith reports whether out has a failed "user" line for user whose error
// contains substr.
func failedWith(out, user, substr string) bool {
	for _, u := range records(out, "user") {
		if u["user"] == user && u["outcome"] == "failed" && strings.Contains(fmt.Sprint(u["error"]), substr) {
			return true
		}
	}
	return false
}

// TestRollingThroughFaultyNetwork runs `replicator rolling` with both csync streams
// going through fault proxies and, while mail keeps arriving: delays every chunk; stalls
// the replica stream (the I/O timeout must fire, the user is parked with backoff and
// the error named); cuts the master stream after a few kilobytes, i.e. inside GET FETCH
// bodies; cuts every live connection. After each fault is lifted, the mail arrives
// without a restart, and in the end the replica equals the master and no retry is owed.
func TestRollingThroughFaultyNetwork(t *testing.T) {
	e := newEnv(t, "delayed")
	m := e.p.Master
	for _, u := range []string{"alice", "bob"} {
		m.CreateUser(t, u)
		m.CreateFolder(t, u, "Work")
	}
	pm, pr := startProxy(t, e.p.Master.SyncAddr), startProxy(t, e.p.Replica.SyncAddr)
	e.Master, e.Replica = pm.Addr, pr.Addr
	logDir := m.SyncLogDir(e.p.Channel)
	roll := e.start(t, "rolling", "--sync-log", logDir, "--interval", "50ms",
		"--retry-base", "200ms", "--retry-max", "1s", "--io-timeout", "2s", "--batch-timeout", "20s")

	// 1. Every chunk delayed.
	pm.SetDelay(3 * time.Millisecond)
	pr.SetDelay(3 * time.Millisecond)
	m.DeliverMany(t, "alice", bigMessages("delay", 5, 2000))
	waitMessages(t, e.p.Replica, "alice", "INBOX", 5, "with delays", roll.output)
	// bob must exist on the replica before step 3 asserts that none of his mail got
	// through; jobs run in parallel, so his creation is not ordered with alice's mail.
	waitMessages(t, e.p.Replica, "bob", "Work", 0, "bob created", roll.output)
	pm.SetDelay(0)
	pr.SetDelay(0)

	// 2. The replica stream stalls: the I/O timeout fires and the user is parked.
	pr.Stall()
	m.Append(t, "alice", "Work", cyruspair.Message("stalled", "x"))
	waitFor(t, 60*time.Second, "a failed user line naming the timeout", func() bool {
		return failedWith(roll.output(), "alice", "timeout") || failedWith(roll.output(), "alice", "deadline")
	})
	pr.Resume()
	waitMessages(t, e.p.Replica, "alice", "Work", 1, "after the stall", roll.output)

	// 3. The master stream is cut after 6000 bytes on every new connection: inside the
	// GET FETCH of a 20 kB body.
	pm.CutAfter(6000)
	pm.CutAll()
	m.DeliverMany(t, "bob", bigMessages("cut", 3, 20_000))
	waitFor(t, 60*time.Second, "a failed user line for bob while the master stream is cut", func() bool {
		for _, u := range records(roll.output(), "user") {
			if u["user"] == "bob" && u["outcome"] == "failed" && u["error"] != "" {
				return true
			}
		}
		return false
	})
	if st := e.p.Replica.Status(t, "bob", "INBOX"); st.Messages != 0 {
		t.Fatalf("bob's INBOX on the replica has %d messages although no body can get through", st.Messages)
	}
	pm.CutAfter(0)
	waitMessages(t, e.p.Replica, "bob", "INBOX", 3, "after the cut", roll.output)

	// 4. Every live connection cut, again and again, while 1 MB of mail is in flight.
	m.DeliverMany(t, "alice", bigMessages("cutall", 10, 100_000))
	m.Append(t, "bob", "Work", cyruspair.Message("after cutall", "y"))
	n := 0
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(25 * time.Millisecond) {
		n += pm.CutAll() + pr.CutAll()
	}
	if n == 0 {
		t.Fatal("CutAll found no live connection to cut while mail was in flight")
	}
	waitMessages(t, e.p.Replica, "alice", "INBOX", 15, "after CutAll", roll.output)
	waitMessages(t, e.p.Replica, "bob", "Work", 1, "after CutAll", roll.output)

	roll.kill(syscall.SIGTERM)
	out := roll.output()
	e.drainRolling(t)
	e.assertEqual(t, "alice", "bob")
	if b, err := os.ReadFile(filepath.Join(e.stateDir, "retry.json")); err != nil || strings.TrimSpace(string(b)) != "[]" {
		t.Fatalf("retry queue not empty at the end: %s %v", b, err)
	}
	t.Logf("cut %d live connections; %d failed user lines, proxies accepted %d+%d connections",
		n, len(failedLines(out)), pm.Accepted(), pr.Accepted())
}

func failedLines(out string) []map[string]any {
	var f []map[string]any
	for _, u := range records(out, "user") {
		if u["outcome"] == "failed" {
			f = append(f, u)
		}
	}
	return f
}
