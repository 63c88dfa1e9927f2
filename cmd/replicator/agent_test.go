package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/agenttest"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/tlstest"
)

// withAgent is c.common without the master's disk and any agent, plus a's flags.
func withAgent(c *cli, a *agenttest.Agent, state string) []string {
	args := slices.Clone(c.common)
	for _, f := range []string{"--master-config", "--agent", "--agent-token-file", "--agent-ca-file", "--state-dir"} {
		args = withoutFlag(args, f)
	}
	return append(append(args, "--state-dir", state), a.Flags()...)
}

// replace sets flag's value in args.
func replace(args []string, flag, value string) []string {
	out := slices.Clone(args)
	out[slices.Index(out, flag)+1] = value
	return out
}

// errorLines are stderr's lines apart from warnings (plaintext test pairs warn).
func errorLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if l != "" && !strings.HasPrefix(l, "warning:") {
			out = append(out, l)
		}
	}
	return out
}

// TestCLIAgentRefusals: a wrong token, a CA that did not sign the agent's certificate
// and an unreachable agent each end a one-shot run with exit 2 and one line saying
// which; --agent with --master-config or --sync-log is a usage error.
func TestCLIAgentRefusals(t *testing.T) {
	c := newCLI(t, "delayed")
	a := agenttest.Start(t, c.p.Master, c.p.Channel)
	base := withAgent(c, a, t.TempDir())
	dir := t.TempDir()
	wrongTok := filepath.Join(dir, "wrong-token")
	if err := os.WriteFile(wrongTok, []byte("not-the-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	otherCA := tlstest.NewCA(t, "other").WriteFile(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "https://" + ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"wrong token", replace(base, "--agent-token-file", wrongTok), "401"},
		{"wrong CA", replace(base, "--agent-ca-file", otherCA), "not trusted"},
		{"unreachable", replace(base, "--agent", closed), "unreachable"},
		{"with --master-config", append(slices.Clone(base), "--master-config", c.p.Master.ConfigPath), "exclude each other"},
		{"http URL", replace(base, "--agent", strings.Replace(a.URL, "https", "http", 1)), "want https://HOST:PORT"},
	} {
		for _, mode := range []string{"sync", "verify", "audit", "rolling"} {
			args := append([]string{mode}, tc.args...)
			switch mode {
			case "sync", "verify":
				args = append(args, "--user", "alice")
			case "rolling":
				args = append(args, "--once")
			}
			var out, errb bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			code := run(ctx, args, &out, &errb)
			cancel()
			lines := errorLines(errb.String())
			if code != exitUsage || len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Errorf("%s, %s: exit %d, stderr %q; want exit 2 and one line saying %q", tc.name, mode, code, errb.String(), tc.want)
			}
		}
	}
	var out, errb bytes.Buffer
	args := append(append([]string{"rolling"}, base...), "--sync-log", c.p.Master.SyncLogDir(c.p.Channel), "--once")
	if code := run(context.Background(), args, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "exclude each other") {
		t.Errorf("rolling --agent --sync-log: exit %d %q", code, errb.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader in two goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// rollingProc is `replicator rolling` running in this process until stopped.
type rollingProc struct {
	out, errs syncBuffer
	cancel    context.CancelFunc
	done      chan int
	once      sync.Once
	code      int
}

func startRolling(args []string) *rollingProc {
	ctx, cancel := context.WithCancel(context.Background())
	r := &rollingProc{cancel: cancel, done: make(chan int, 1)}
	go func() { r.done <- run(ctx, append([]string{"rolling"}, args...), &r.out, &r.errs) }()
	return r
}

func (r *rollingProc) stop(t *testing.T) int {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case r.code = <-r.done:
		case <-time.After(time.Minute):
			t.Fatal("rolling did not stop within a minute")
		}
	})
	return r.code
}

func wait(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", bound, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCLIAgentRollingWrongTokenConsumesNothing: rolling with a wrong token keeps
// running, records the refusal and asks again with a growing pause, and takes nothing:
// the channel's log stays as Cyrus wrote it, with no log-run. Once its token file holds
// the right token (no restart), it replicates what waited.
func TestCLIAgentRollingWrongTokenConsumesNothing(t *testing.T) {
	c := newCLI(t, "delayed")
	m := c.p.Master
	a := agenttest.Start(t, m, c.p.Channel)
	m.CreateUser(t, "alice")
	m.Deliver(t, "alice", cyruspair.Message("waiting", "x"))
	logDir := m.SyncLogDir(c.p.Channel)
	before, err := os.ReadFile(filepath.Join(logDir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := replace(withAgent(c, a, t.TempDir()), "--agent-token-file", tok)
	roll := startRolling(append(args, "--interval", "20ms"))
	defer roll.stop(t)
	wait(t, 30*time.Second, "two refusals recorded", func() bool { return strings.Count(roll.out.String(), `"agent-unavailable"`) >= 2 })
	after, err := os.ReadFile(filepath.Join(logDir, "log"))
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("log changed under a refused replicator: %v\nbefore %q\nafter  %q", err, before, after)
	}
	if _, err := os.Stat(filepath.Join(logDir, "log-run")); err == nil {
		t.Fatal("log-run created by a refused replicator")
	}
	out := roll.out.String()
	if !strings.Contains(out, `"retryIn":"1s"`) || !strings.Contains(out, `"retryIn":"2s"`) || !strings.Contains(out, "401") {
		t.Fatalf("want refusals with a growing pause, saying 401:\n%s", out)
	}
	if err := os.WriteFile(tok, []byte(a.Token(t)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wait(t, time.Minute, "alice replicated once the token is right", func() bool {
		return strings.Contains(roll.out.String(), `"type":"user"`)
	})
	if n := c.p.Replica.Status(t, "alice", "INBOX").Messages; n != 1 {
		t.Fatalf("alice's INBOX on the replica: %d messages, want 1\n%s", n, roll.out.String())
	}
	// A token rotated on the agent but not yet in the replicator's file: its requests
	// are refused (a long-poll already open may still hand out a lease, whose
	// acknowledgement is then refused), it keeps running, and the new entry stays on the
	// master's disk until the replicator has the new token.
	a.SetToken(t, "rotated")
	m.Deliver(t, "alice", cyruspair.Message("after the rotation", "y"))
	time.Sleep(3 * time.Second) // refused passes
	held := func() bool {
		for _, name := range []string{"log", "log-run"} {
			if b, err := os.ReadFile(filepath.Join(logDir, name)); err == nil && bytes.Contains(b, []byte("alice")) {
				return true
			}
		}
		return false
	}
	if !held() {
		t.Fatalf("the entry written after the rotation left the master's disk while the replicator's token was wrong\n%s", roll.out.String())
	}
	if err := os.WriteFile(tok, []byte("rotated\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wait(t, time.Minute, "the mail written after the rotation replicated", func() bool {
		return c.p.Replica.Status(t, "alice", "INBOX").Messages == 2
	})
	if code := roll.stop(t); code != exitOK {
		t.Fatalf("rolling: exit %d\n%s", code, roll.errs.String())
	}
}

// TestCLIAgentSecondConsumerRefused: while one rolling replicator consumes the channel
// through the agent, a second one (another state directory) is refused with a message
// naming the first, and takes nothing.
func TestCLIAgentSecondConsumerRefused(t *testing.T) {
	c := newCLI(t, "delayed")
	a := agenttest.Start(t, c.p.Master, c.p.Channel)
	first := startRolling(append(withAgent(c, a, t.TempDir()), "--interval", "20ms"))
	defer first.stop(t)
	wait(t, 30*time.Second, "the first replicator started", func() bool { return first.out.Len() > 0 })
	time.Sleep(500 * time.Millisecond) // its first long-poll is open
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := run(ctx, append(append([]string{"rolling"}, withAgent(c, a, t.TempDir())...), "--once"), &out, &errb)
	errs := errb.String()
	if code != exitFailed || !strings.Contains(errs, "one consumer per channel") || !strings.Contains(errs, fmt.Sprintf("replicator rolling pid %d", os.Getpid())) {
		t.Fatalf("second consumer: exit %d\n%s", code, errs)
	}
}

func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Len()
}

// agentCheck is the agent check of the report rolling writes with --report (nil when
// none yet).
func agentCheck(t *testing.T, reportFile string) *report.Check {
	t.Helper()
	b, err := os.ReadFile(reportFile)
	if err != nil {
		return nil
	}
	var s report.Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil // being replaced
	}
	return report.FindCheck(s.Checks, report.CheckAgent)
}

// waitAgentCheck waits until the report's agent check has status (and reason).
func waitAgentCheck(t *testing.T, reportFile string, st report.CheckStatus, reason string) {
	t.Helper()
	wait(t, time.Minute, fmt.Sprintf("report check agent %s %s", st, reason), func() bool {
		c := agentCheck(t, reportFile)
		return c != nil && c.Status == st && c.Reason == reason
	})
}

// TestCLIAgentUnavailableRecords: a rolling replicator against the real agent process
// says why it cannot have the agent, in a record and in its report's agent check (the
// operator's AgentUnavailable condition), keeps running and recovers by itself: a wrong
// token is Unauthorized, then, with the right token, the agent answers
// (agent-available, mail flows); the agent stopped is Unreachable, and once it is back
// mail flows again; a second consumer of the channel is ChannelHeld. No record holds
// the token.
func TestCLIAgentUnavailableRecords(t *testing.T) {
	c := newCLI(t, "delayed")
	m := c.p.Master
	a := agenttest.Start(t, m, c.p.Channel)
	m.CreateUser(t, "alice")
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	const wrongToken = "wrong-token-0123456789"
	if err := os.WriteFile(tok, []byte(wrongToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reportFile := filepath.Join(dir, "report.json")
	args := replace(withAgent(c, a, t.TempDir()), "--agent-token-file", tok)
	roll := startRolling(append(args, "--interval", "20ms", "--report", reportFile))
	defer roll.stop(t)
	records := func(typ, reason string) int {
		n := 0
		for _, l := range strings.Split(roll.out.String(), "\n") {
			if strings.Contains(l, `"type":"`+typ+`"`) && strings.Contains(l, `"reason":"`+reason+`"`) {
				n++
			}
		}
		return n
	}

	wait(t, time.Minute, "an Unauthorized record", func() bool { return records("agent-unavailable", "Unauthorized") > 0 })
	waitAgentCheck(t, reportFile, report.CheckFailed, report.ReasonAgentUnauthorized)
	if err := os.WriteFile(tok, []byte(a.Token(t)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wait(t, time.Minute, "agent-available", func() bool { return strings.Contains(roll.out.String(), `"type":"agent-available"`) })
	waitAgentCheck(t, reportFile, report.CheckOK, "")
	m.Deliver(t, "alice", cyruspair.Message("one", "x"))
	wait(t, time.Minute, "alice's first mail replicated", func() bool { return c.p.Replica.Status(t, "alice", "INBOX").Messages == 1 })

	a.Kill(syscall.SIGTERM)
	wait(t, time.Minute, "an Unreachable record", func() bool { return records("agent-unavailable", "Unreachable") > 0 })
	waitAgentCheck(t, reportFile, report.CheckFailed, report.ReasonAgentUnreachable)
	m.Deliver(t, "alice", cyruspair.Message("two", "y")) // waits on the master's disk
	a.Restart(t)
	wait(t, time.Minute, "agent-available again", func() bool {
		return strings.Count(roll.out.String(), `"type":"agent-available"`) >= 2
	})
	waitAgentCheck(t, reportFile, report.CheckOK, "")
	wait(t, time.Minute, "alice's second mail replicated", func() bool { return c.p.Replica.Status(t, "alice", "INBOX").Messages == 2 })

	second := startRolling(append(withAgent(c, a, t.TempDir()), "--interval", "20ms"))
	wait(t, time.Minute, "a ChannelHeld record of the second consumer", func() bool {
		return strings.Contains(second.out.String(), `"reason":"ChannelHeld"`)
	})
	if code := second.stop(t); code != exitOK {
		t.Fatalf("second rolling: exit %d\n%s", code, second.errs.String())
	}
	if code := roll.stop(t); code != exitOK {
		t.Fatalf("rolling: exit %d\n%s", code, roll.errs.String())
	}
	for _, out := range []string{roll.out.String(), roll.errs.String(), second.out.String(), second.errs.String()} {
		if strings.Contains(out, wrongToken) || strings.Contains(out, a.Token(t)) {
			t.Fatalf("a token in the replicator's output:\n%s", out)
		}
	}
}

// TestCLIAgentClientCertRefused: rolling without a client certificate against an agent
// with --client-ca keeps running, records TLSFailed (naming --agent-client-cert) and
// takes nothing.
func TestCLIAgentClientCertRefused(t *testing.T) {
	c := newCLI(t, "delayed")
	m := c.p.Master
	clientCA := tlstest.NewCA(t, "clients")
	a := agenttest.Start(t, m, c.p.Channel, "--client-ca", clientCA.WriteFile(t, t.TempDir()))
	m.CreateUser(t, "alice")
	reportFile := filepath.Join(t.TempDir(), "report.json")
	roll := startRolling(append(withAgent(c, a, t.TempDir()), "--interval", "20ms", "--report", reportFile))
	defer roll.stop(t)
	wait(t, time.Minute, "a TLSFailed record", func() bool {
		out := roll.out.String()
		return strings.Contains(out, `"reason":"TLSFailed"`) && strings.Contains(out, "--agent-client-cert")
	})
	waitAgentCheck(t, reportFile, report.CheckFailed, report.ReasonAgentTLSFailed)
	if _, err := os.Stat(filepath.Join(m.SyncLogDir(c.p.Channel), "log-run")); err == nil {
		t.Fatal("log-run created for a replicator the agent refused")
	}
	if code := roll.stop(t); code != exitOK {
		t.Fatalf("rolling: exit %d\n%s", code, roll.errs.String())
	}
}
