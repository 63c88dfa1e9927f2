package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/state"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// withStateDir returns the CLI with its --state-dir replaced.
func (c *cli) withStateDir(dir string) *cli {
	common := slices.Clone(c.common)
	i := slices.Index(common, "--state-dir")
	common[i+1] = dir
	return &cli{p: c.p, common: common}
}

// TestCLIFreshStateKeepsTombstonedFolder (issue #10 item 2): a folder was replicated
// and marked in step; the replicator's state is then lost (a new, empty state
// directory) and the master deletes the folder (immediate delete: a tombstone). The
// audit on the fresh state must keep the replica's folder and report keep/no-mark: it
// cannot know whether mail was written there since; so must a plain resync. Only a
// resync with --delete-unmarked (a person's explicit choice) deletes it on the
// tombstone. And once a folder has been compared in step on the fresh state, its
// delete goes through as before.
func TestCLIFreshStateKeepsTombstonedFolder(t *testing.T) {
	c := newCLI(t, "immediate")
	m, r := c.p.Master, c.p.Replica
	m.CreateUser(t, "alice")
	m.CreateFolder(t, "alice", "Old")
	m.Append(t, "alice", "Old", cyruspair.Message("old", "kept?"))
	if code, out, errs := c.run(t, "sync", "--user", "alice"); code != exitOK {
		t.Fatalf("first sync: exit %d\n%s\n%s", code, errs, out)
	}

	fresh := c.withStateDir(t.TempDir()) // the state volume was lost
	m.Delete(t, "alice", "Old")
	code, out, errs := fresh.run(t, "audit", "--user", "alice")
	if !slices.Contains(r.List(t, "alice"), "Old") {
		t.Fatalf("audit on a fresh state deleted the replica's folder on a tombstone alone (exit %d)\n%s\n%s", code, errs, out)
	}
	if code != exitOK {
		t.Fatalf("audit: exit %d\n%s\n%s", code, errs, out)
	}
	if !hasDecision(t, out, "keep", "no-mark", "user.alice.Old") {
		t.Fatalf("no keep/no-mark decision for user.alice.Old:\n%s", out)
	}
	if st := lines(t, out, "state"); len(st) != 1 || st[0]["new"] != true || st[0]["id"] == "" {
		t.Fatalf("state line of a fresh state dir: %v", st)
	}
	// The same state again is not new, and still keeps the folder.
	code, out, _ = fresh.run(t, "audit", "--user", "alice")
	if st := lines(t, out, "state"); code != exitOK || len(st) != 1 || st[0]["new"] == true {
		t.Fatalf("second audit: exit %d, state %v", code, st)
	}
	if !slices.Contains(r.List(t, "alice"), "Old") {
		t.Fatal("second audit deleted the unmarked folder")
	}

	// A plain resync keeps it too; verify --delete-unmarked shows what a resync that a
	// person allowed to would delete, and sync --delete-unmarked deletes it on the
	// tombstone.
	code, out, _ = fresh.run(t, "sync", "--user", "alice")
	if code != exitOK || !hasDecision(t, out, "keep", "no-mark", "user.alice.Old") || !slices.Contains(r.List(t, "alice"), "Old") {
		t.Fatalf("plain resync: exit %d, replica %v\n%s", code, r.List(t, "alice"), out)
	}
	code, out, _ = fresh.run(t, "verify", "--user", "alice", "--delete-unmarked")
	if !hasDecision(t, out, "delete", "tombstone", "user.alice.Old") || !slices.Contains(r.List(t, "alice"), "Old") {
		t.Fatalf("verify --delete-unmarked: exit %d, replica %v\n%s", code, r.List(t, "alice"), out)
	}
	code, out, errs = fresh.run(t, "sync", "--user", "alice", "--delete-unmarked")
	if code != exitOK || !hasDecision(t, out, "delete", "tombstone", "user.alice.Old") || slices.Contains(r.List(t, "alice"), "Old") {
		t.Fatalf("resync --delete-unmarked: exit %d, replica %v\n%s\n%s", code, r.List(t, "alice"), errs, out)
	}

	// A folder compared in step on the fresh state has its mark: its delete goes through.
	m.CreateFolder(t, "alice", "New")
	m.Append(t, "alice", "New", cyruspair.Message("new", "x"))
	if code, out, _ := fresh.run(t, "audit", "--user", "alice"); code != exitOK {
		t.Fatalf("audit creating New: %s", out)
	}
	m.Delete(t, "alice", "New")
	code, out, _ = fresh.run(t, "audit", "--user", "alice")
	if code != exitOK || !hasDecision(t, out, "delete", "tombstone", "user.alice.New") || slices.Contains(r.List(t, "alice"), "New") {
		t.Fatalf("audit after New was marked and deleted: exit %d, replica %v\n%s", code, r.List(t, "alice"), out)
	}
}

func hasDecision(t *testing.T, out, action, evidence, replicaName string) bool {
	t.Helper()
	for _, d := range lines(t, out, "decision") {
		if d["action"] == action && d["evidence"] == evidence && d["replicaName"] == replicaName {
			return true
		}
	}
	return false
}

// child runs the replicator in a child process (TestMain's child mode) and returns its
// stdout.
func child(t *testing.T, args []string) (string, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	enc, _ := json.Marshal(args)
	cmd.Env = append(os.Environ(), "CYRUSREPL_CHILD_ARGS="+string(enc))
	out, err := cmd.Output()
	return string(out), err
}

// hold is one process's hold of one user's writer lock, as its writer-lock lines say.
type hold struct {
	proc       string
	start, end time.Time
}

// holds pairs a process's held/released lines per user (a user is held by one
// executor of a process at a time, so they alternate).
func holds(t *testing.T, proc, out string) map[string][]hold {
	t.Helper()
	open := map[string]time.Time{}
	got := map[string][]hold{}
	for _, l := range lines(t, out, "writer-lock") {
		at, err := time.Parse(time.RFC3339Nano, l["at"].(string))
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range l["users"].([]any) {
			u := u.(string)
			switch l["event"] {
			case "held":
				if _, dup := open[u]; dup {
					t.Fatalf("%s: %s held twice without release", proc, u)
				}
				open[u] = at
			case "released":
				got[u] = append(got[u], hold{proc: proc, start: open[u], end: at})
				delete(open, u)
			}
		}
	}
	if len(open) > 0 {
		t.Fatalf("%s: never released %v", proc, open)
	}
	return got
}

// TestCLIRollingAndResyncOneWriterPerUser (issue #10 items 2 and 10): the rolling
// replicator and a resync run as separate processes on one state directory against the
// real pair while mail keeps arriving for the same users. Their writer-lock records
// show that no user was ever held by both at once; at the end the ledger's in-step mark
// of every folder that is in step equals the replica's state (no writer's mark lost or
// overwritten by a stale one), and verify finds every user equal.
func TestCLIRollingAndResyncOneWriterPerUser(t *testing.T) {
	c := newCLI(t, "delayed")
	m := c.p.Master
	users := []string{"alice", "bob", "carol"}
	for _, u := range users {
		m.CreateUser(t, u)
		m.CreateFolder(t, u, "Work")
	}
	logDir := m.SyncLogDir(c.p.Channel)
	rolling := append(append([]string{"rolling"}, c.common...), "--sync-log", logDir, "--once", "--retry-base", "1ms")
	resync := append(append([]string{"sync"}, c.common...), "--user", "alice,bob,carol")
	var mu sync.Mutex
	all := map[string][]hold{}
	collect := func(proc, out string) {
		mu.Lock()
		defer mu.Unlock()
		for u, hs := range holds(t, proc, out) {
			all[u] = append(all[u], hs...)
		}
	}
	const rounds = 6
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the resync, over and over, beside the rolling replicator
		defer wg.Done()
		for i := range rounds {
			out, err := child(t, resync)
			if err != nil {
				t.Errorf("resync %d: %v\n%s", i, err, out)
			}
			collect(fmt.Sprintf("resync-%d", i), out)
		}
	}()
	for i := range rounds {
		for _, u := range users {
			m.Deliver(t, u, cyruspair.Message(fmt.Sprintf("r%d", i), "x"))
			m.Append(t, u, "Work", cyruspair.Message(fmt.Sprintf("w%d", i), "y"))
		}
		out, err := child(t, rolling)
		if err != nil {
			// A user busy past --writer-lock-wait is parked for retry: not an error here.
			t.Logf("rolling %d: %v", i, err)
		}
		collect(fmt.Sprintf("rolling-%d", i), out)
	}
	wg.Wait()

	contended := 0
	for u, hs := range all {
		slices.SortFunc(hs, func(a, b hold) int { return a.start.Compare(b.start) })
		for i := 1; i < len(hs); i++ {
			if hs[i].start.Before(hs[i-1].end) {
				t.Fatalf("user %s written by %s (%s–%s) and %s (%s–%s) at once", u,
					hs[i-1].proc, hs[i-1].start.Format(time.StampMicro), hs[i-1].end.Format(time.StampMicro),
					hs[i].proc, hs[i].start.Format(time.StampMicro), hs[i].end.Format(time.StampMicro))
			}
			if hs[i].proc[:6] != hs[i-1].proc[:6] {
				contended++
			}
		}
	}
	t.Logf("writer holds: %d users, %d hand-overs between rolling and resync", len(all), contended)
	if contended == 0 {
		t.Fatal("rolling and resync never wrote the same user: the test proved nothing")
	}

	// Every folder in step has the replica's current state as its mark.
	stateDir := c.common[slices.Index(c.common, "--state-dir")+1]
	for _, u := range users {
		b, err := os.ReadFile(filepath.Join(stateDir, "ledger", "user-"+u+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var led struct {
			Entries map[string]struct {
				Name   string `json:"name"`
				InStep *struct {
					LastUID uint32 `json:"lastUid"`
				} `json:"inStep"`
			} `json:"entries"`
		}
		if err := json.Unmarshal(b, &led); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"INBOX", "Work"} {
			ms, rs := m.Status(t, u, f), c.p.Replica.Status(t, u, f)
			if ms.UIDNext != rs.UIDNext || ms.HighestModSeq != rs.HighestModSeq {
				continue // not in step (the last rolling run parked the user): no claim
			}
			name := cyruspair.InternalName(u, f)
			found := false
			for _, e := range led.Entries {
				if e.Name == name {
					found = true
					if e.InStep == nil || e.InStep.LastUID != rs.UIDNext-1 {
						t.Errorf("%s: ledger mark %+v, replica last_uid %d", name, e.InStep, rs.UIDNext-1)
					}
				}
			}
			if !found {
				t.Errorf("%s: no ledger entry", name)
			}
		}
	}
	if code, out, _ := c.run(t, "verify", "--user", "alice,bob,carol"); code != exitOK {
		t.Fatalf("verify: %s", out)
	}
}

// TestCLIRollingWaitsForTheUsersWriter: while another writer (here the test, as a
// resync would) holds bob's writer lock on the shared state directory, the rolling
// replicator writes nothing of bob — his new mail stays off the replica and he is parked
// for retry with his log entries — while alice, not held, goes through; once the lock
// is released the next cycle brings bob's mail over.
func TestCLIRollingWaitsForTheUsersWriter(t *testing.T) {
	c := newCLI(t, "delayed")
	m, r := c.p.Master, c.p.Replica
	for _, u := range []string{"alice", "bob"} {
		m.CreateUser(t, u)
	}
	if code, out, _ := c.run(t, "sync", "--user", "alice,bob"); code != exitOK {
		t.Fatalf("first sync: %s", out)
	}
	stateDir := c.common[slices.Index(c.common, "--state-dir")+1]
	locks, err := state.OpenUserLocks(stateDir, 0)
	if err != nil {
		t.Fatal(err)
	}
	release, err := locks.Lock(context.Background(), []string{"bob"})
	if err != nil {
		t.Fatal(err)
	}
	m.Deliver(t, "alice", cyruspair.Message("a", "for alice"))
	m.Deliver(t, "bob", cyruspair.Message("b", "for bob"))
	logDir := m.SyncLogDir(c.p.Channel)
	code, out, errs := c.run(t, "rolling", "--sync-log", logDir, "--once", "--writer-lock-wait", "300ms", "--retry-base", "1ms")
	if st := r.Status(t, "bob", "INBOX"); st.Messages != 0 {
		t.Fatalf("bob written on the replica while another writer held him: %+v\n%s", st, out)
	}
	if st := r.Status(t, "alice", "INBOX"); st.Messages != 1 {
		t.Fatalf("alice (not held) not replicated: %+v (exit %d)\n%s\n%s", st, code, errs, out)
	}
	rq, err := os.ReadFile(filepath.Join(stateDir, "retry.json"))
	if err != nil || !strings.Contains(string(rq), `"bob"`) {
		t.Fatalf("bob not parked for retry: %s %v", rq, err)
	}
	release()
	time.Sleep(10 * time.Millisecond) // bob's backoff (1ms) runs out
	if code, out, errs := c.run(t, "rolling", "--sync-log", logDir, "--once", "--retry-base", "1ms"); code != exitOK {
		t.Fatalf("rolling after release: exit %d\n%s\n%s", code, errs, out)
	}
	if st := r.Status(t, "bob", "INBOX"); st.Messages != 1 {
		t.Fatalf("bob after the lock was released: %+v", st)
	}
}
