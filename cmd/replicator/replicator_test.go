package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/agenttest"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// The child mode of the test binary: run the replicator with the arguments in
// $CYRUSREPL_CHILD_ARGS (for the SIGKILL test).
func TestMain(m *testing.M) {
	if args := os.Getenv("CYRUSREPL_CHILD_ARGS"); args != "" {
		var argv []string
		if err := json.Unmarshal([]byte(args), &argv); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		os.Exit(run(context.Background(), viaAgent(argv), os.Stdout, os.Stderr))
	}
	code := m.Run()
	agenttest.RemoveBin()
	os.Exit(code)
}

type cli struct {
	p      *cyruspair.Pair
	common []string
	// local are the common arguments before the agent rewrite: the master's disk.
	local []string
}

func newCLI(t *testing.T, mode string) *cli {
	return newCLIOpts(t, cyruspair.Options{DeleteMode: mode})
}

func newCLIOpts(t testing.TB, opts cyruspair.Options) *cli {
	p := cyruspair.Start(t, opts)
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte(p.ReplPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"--master", p.Master.SyncAddr, "--replica", p.Replica.SyncAddr,
		"--master-password-file", pw, "--replica-password-file", pw, "--state-dir", t.TempDir(),
		"--master-config", p.Master.ConfigPath, "--pair", "test", "--workers", "2"}
	// CYRUSREPL_VIA_AGENT=1: the master's disk through its agent (--master-config
	// becomes --agent flags; viaAgent drops the --sync-log tests add).
	local := append(append([]string(nil), common...), p.ReplicatorTLSFlags()...)
	common = agenttest.Rewrite(t, p, append([]string{"sync"}, common...))[1:]
	return &cli{p: p, common: append(common, p.ReplicatorTLSFlags()...), local: local}
}

// viaAgent drops --sync-log from arguments that name an agent (CYRUSREPL_VIA_AGENT=1):
// the agent serves the channel the test named.
func viaAgent(args []string) []string {
	if !slices.Contains(args, "--agent") {
		return args
	}
	return withoutFlag(args, "--sync-log")
}

// withoutTLSFlags drops the TLS flags ReplicatorTLSFlags added, for tests that give
// their own.
func withoutTLSFlags(args []string) []string {
	for _, f := range []string{"--master-tls", "--replica-tls", "--master-ca-file", "--replica-ca-file"} {
		args = withoutFlag(args, f)
	}
	return args
}

// inspectTLSFlags are `replicator inspect`'s TLS flags for a server of p.
func inspectTLSFlags(p *cyruspair.Pair) []string {
	if !p.TLS() {
		return []string{"--tls", "none"}
	}
	return []string{"--tls", "starttls", "--ca-file", p.TLSCA}
}

func (c *cli) run(t testing.TB, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	code := run(ctx, viaAgent(append(args[:1:1], append(c.common, args[1:]...)...)), &out, &errb)
	return code, out.String(), errb.String()
}

func lines(t *testing.T, out, typ string) []map[string]any {
	t.Helper()
	var got []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("stdout line is not JSON: %q", sc.Text())
		}
		if m["type"] == typ {
			got = append(got, m)
		}
	}
	return got
}

func TestCLISyncVerify(t *testing.T) {
	c := newCLI(t, "delayed")
	m := c.p.Master
	m.CreateUser(t, "alice")
	m.CreateFolder(t, "alice", "Sent")
	m.Deliver(t, "alice", cyruspair.Message("a", "b"))
	m.CreateUser(t, "bob")

	code, out, errs := c.run(t, "verify", "--user", "alice")
	if code != exitFailed || len(lines(t, out, "mismatch")) == 0 {
		t.Fatalf("verify before sync: exit %d, stderr %s\n%s", code, errs, out)
	}
	rep := filepath.Join(t.TempDir(), "report.json")
	code, out, errs = c.run(t, "sync", "--user", "alice,bob", "--report", rep)
	if code != exitOK {
		t.Fatalf("sync: exit %d\n%s\n%s", code, errs, out)
	}
	if d := lines(t, out, "decision"); len(d) < 2 || d[0]["action"] != "create" || d[0]["pair"] != "test" {
		t.Fatalf("decision lines: %v", d)
	}
	if u := lines(t, out, "user"); len(u) != 2 {
		t.Fatalf("user lines: %v", u)
	}
	checkCsyncStats(t, out)
	b, err := os.ReadFile(rep)
	if err != nil {
		t.Fatal(err)
	}
	var s report.Summary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.Kind != report.SummaryKind || s.Mode != "sync" || s.UsersTotal != 2 || s.UsersFailed != 0 || s.Finished == nil || s.DecisionCounts["create/none"] != 3 {
		t.Fatalf("report: %+v", s)
	}
	if code, out, _ = c.run(t, "verify", "--user", "alice", "--user", "bob"); code != exitOK {
		t.Fatalf("verify after sync: exit %d\n%s", code, out)
	}
	if st := c.p.Replica.Status(t, "alice", "INBOX"); st.Messages != 1 {
		t.Fatalf("replica INBOX: %+v", st)
	}

	// A replica-only folder (split brain): kept; 'keep' counts the user as in sync,
	// 'fail' as differing.
	c.p.Replica.CreateFolder(t, "alice", "Split")
	c.p.Replica.Append(t, "alice", "Split", cyruspair.Message("r", "only on the replica"))
	if code, out, _ := c.run(t, "verify", "--user", "alice"); code != exitOK || len(lines(t, out, "mismatch")) != 1 {
		t.Fatalf("verify, keep policy: exit %d\n%s", code, out)
	}
	if code, out, _ := c.run(t, "sync", "--user", "alice", "--replica-only-policy", "fail"); code != exitFailed {
		t.Fatalf("sync, fail policy: exit %d\n%s", code, out)
	}
	if st := c.p.Replica.Status(t, "alice", "Split"); st.Messages != 1 {
		t.Fatalf("replica-only folder touched: %+v", st)
	}

	// Audit walks every user of the master's mailboxes.db.
	m.Deliver(t, "bob", cyruspair.Message("for bob", "x"))
	code, out, errs = c.run(t, "audit")
	if code != exitOK {
		t.Fatalf("audit: exit %d\n%s\n%s", code, errs, out)
	}
	if u := lines(t, out, "user"); len(u) != 2 {
		t.Fatalf("audit user lines: %v", u)
	}
	if st := c.p.Replica.Status(t, "bob", "INBOX"); st.Messages != 1 {
		t.Fatalf("audit did not sync bob: %+v", st)
	}
}

func TestCLIUsageAndConnectionErrors(t *testing.T) {
	// NoTLS: the last case needs a server that offers no STARTTLS.
	c := newCLIOpts(t, cyruspair.Options{DeleteMode: "delayed", NoTLS: true})
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"sync", "--user", "x"}, &out, &errb); code != exitUsage {
		t.Fatalf("missing --master: exit %d", code)
	}
	if code, _, _ := c.run(t, "sync"); code != exitUsage {
		t.Fatalf("no --user: exit %d", code)
	}
	if code, _, _ := c.run(t, "sync", "--user", "a", "--replica-only-policy", "delete"); code != exitUsage {
		t.Fatalf("bad policy: exit %d", code)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("wrong"), 0o600)
	args := append([]string{"sync"}, c.common...)
	args = append(args, "--replica-password-file", bad, "--user", "alice")
	if code := run(context.Background(), args, &out, &errb); code != exitUsage {
		t.Fatalf("wrong password: exit %d, %s", code, errb.String())
	}
	args = append([]string{"sync"}, c.common...)
	args = append(args, "--master", "127.0.0.1:1", "--user", "alice")
	if code := run(context.Background(), args, &out, &errb); code != exitUsage {
		t.Fatalf("unreachable master: exit %d", code)
	}
	// No TLS mode given: STARTTLS, which this pair (no certificate) does not offer.
	errb.Reset()
	args = append([]string{"sync"}, withoutFlag(c.common, "--master-tls")...)
	args = append(args, "--user", "alice")
	if code := run(context.Background(), args, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "lacks capability: STARTTLS") {
		t.Fatalf("STARTTLS by default to a server without it: exit %d, %s", code, errb.String())
	}
}

// TestCLIRollingSIGKILL kills `replicator rolling` with SIGKILL again and again while
// mail keeps arriving for several users, restarts it each time, and checks that in
// the end every message is on the replica: no log entry was lost.
func TestCLIRollingSIGKILL(t *testing.T) {
	for _, mode := range []string{"delayed", "immediate"} {
		t.Run(mode, func(t *testing.T) {
			c := newCLI(t, mode)
			m := c.p.Master
			users := []string{"alice", "bob", "carol"}
			for _, u := range users {
				m.CreateUser(t, u)
				m.CreateFolder(t, u, "Work")
			}
			logDir := m.SyncLogDir(c.p.Channel)
			args := append([]string{"rolling"}, c.common...)
			args = append(args, "--sync-log", logDir, "--interval", "20ms")
			start := func() *exec.Cmd {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				enc, _ := json.Marshal(args)
				cmd.Env = append(os.Environ(), "CYRUSREPL_CHILD_ARGS="+string(enc))
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				return cmd
			}
			kills := 0
			for round := range 12 {
				cmd := start()
				for k := range 3 {
					u := users[(round+k)%len(users)]
					m.Deliver(t, u, cyruspair.Message(fmt.Sprintf("r%d k%d", round, k), "x"))
					m.Append(t, u, "Work", cyruspair.Message(fmt.Sprintf("w%d k%d", round, k), "y"))
				}
				if round%4 == 3 {
					m.Rename(t, users[round%3], "Work", fmt.Sprintf("Work%d", round))
					m.Rename(t, users[round%3], fmt.Sprintf("Work%d", round), "Work")
				}
				time.Sleep(time.Duration(20+round*15) * time.Millisecond)
				_ = cmd.Process.Signal(syscall.SIGKILL)
				_ = cmd.Wait()
				kills++
			}
			// Restart and drain: one-shot cycles until the log and the retry queue are empty.
			for i := 0; ; i++ {
				code, out, errs := c.run(t, append(args[:1:1], "--sync-log", logDir, "--once", "--retry-base", "1ms")...)
				_, statErr := os.Stat(filepath.Join(logDir, "log"))
				if code == exitOK && errors.Is(statErr, os.ErrNotExist) {
					break
				}
				if i > 80 || testing.Verbose() && code != exitOK {
					rq, _ := os.ReadFile(filepath.Join(c.common[9], "retry.json"))
					t.Logf("drain %d: exit %d\n%s\n%s\nretry: %s", i, code, errs, out, rq)
				}
				time.Sleep(250 * time.Millisecond) // a user parked by a killed run becomes due
				if i > 80 {
					t.Fatalf("did not drain: exit %d\n%s\n%s", code, errs, out)
				}
			}
			for _, u := range users {
				for _, f := range []string{"INBOX", "Work"} {
					ms, rs := m.Status(t, u, f), c.p.Replica.Status(t, u, f)
					if ms.Messages != 12 || rs.Messages != ms.Messages || rs.UIDNext != ms.UIDNext {
						t.Fatalf("%s %s after %d SIGKILLs: master %+v replica %+v", u, f, kills, ms, rs)
					}
				}
			}
			if code, out, _ := c.run(t, "verify", "--user", "alice,bob,carol"); code != exitOK {
				t.Fatalf("verify after SIGKILLs: %s", out)
			}
		})
	}
}

// checkCsyncStats: a sync that created folders ends with one csync-stats line counting
// the GETs it sent to the master and the APPLYs it sent to the replica, with time spent.
func checkCsyncStats(t *testing.T, out string) {
	t.Helper()
	st := lines(t, out, "csync-stats")
	if len(st) != 1 {
		t.Fatalf("csync-stats lines: %v", st)
	}
	got := map[string]float64{}
	for _, c := range st[0]["commands"].([]any) {
		m := c.(map[string]any)
		got[m["end"].(string)+" "+m["command"].(string)] = m["count"].(float64)
		if m["seconds"].(float64) <= 0 {
			t.Errorf("csync-stats %v: no time recorded", m)
		}
	}
	for _, k := range []string{"master GET USER", "replica GET USER", "replica APPLY MAILBOX", "replica APPLY MESSAGE"} {
		if got[k] < 1 {
			t.Errorf("csync-stats: %q counted %v times, want at least once (all: %v)", k, got[k], got)
		}
	}
	// New folders' records: from the master's index where the run reads it, else GET FULLMAILBOX.
	if got["master GET FULLMAILBOX"]+got["master-index WHOLE"] < 1 {
		t.Errorf("csync-stats: no folder read from the master (GET FULLMAILBOX or master-index WHOLE): %v", got)
	}
	if got["master APPLY MAILBOX"] != 0 {
		t.Errorf("csync-stats: an APPLY counted on the master: %v", got)
	}
}
