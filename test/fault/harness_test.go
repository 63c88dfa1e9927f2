package fault

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/agenttest"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	agenttest.RemoveBin()
	os.Exit(code)
}

// replicatorBin builds cmd/replicator once per test binary.
func replicatorBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "cyrusrepl-fault-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "replicator")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", binPath, "github.com/cyrusrepl/cyrusrepl/cmd/replicator").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build cmd/replicator: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// env is a real pair plus the replicator's flags. Master and Replica are the
// addresses the replicator is given; a test may point them at a proxy.
type env struct {
	t               testing.TB
	p               *cyruspair.Pair
	bin             string
	pw, stateDir    string
	Master, Replica string
	reportFile      string
	extra           []string
	// plain are addresses that need the plain csync stream (garblers rewrite its
	// lines): the side pointed at one talks without TLS even when the pair has it.
	plain map[string]bool
}

func newEnv(t *testing.T, deleteMode string) *env {
	t.Helper()
	p := cyruspair.Start(t, cyruspair.Options{DeleteMode: deleteMode})
	bin := replicatorBin(t)
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte(p.ReplPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, p: p, bin: bin, pw: pw, stateDir: filepath.Join(dir, "state"),
		Master: p.Master.SyncAddr, Replica: p.Replica.SyncAddr, reportFile: filepath.Join(dir, "report.json")}
}

func (e *env) args(mode string, extra ...string) []string {
	a := []string{mode, "--master", e.Master, "--replica", e.Replica,
		"--master-password-file", e.pw, "--replica-password-file", e.pw, "--state-dir", e.stateDir,
		"--master-config", e.p.Master.ConfigPath, "--pair", "fault", "--workers", "2", "--report", e.reportFile,
		// The fault proxies read and rewrite csync lines: they need the plain stream.
		"--compress=false"}
	a = append(a, e.tlsFlags()...)
	a = append(a, e.extra...)
	// CYRUSREPL_VIA_AGENT=1: --master-config and --sync-log become the master's agent.
	return agenttest.Rewrite(e.t, e.p, append(a, extra...))
}

// tlsFlags are the pair's TLS flags (STARTTLS against the pair's CA when it has TLS),
// with plaintext for a side whose address is in e.plain.
func (e *env) tlsFlags() []string {
	flags := e.p.ReplicatorTLSFlags()
	for side, addr := range map[string]string{"master": e.Master, "replica": e.Replica} {
		if e.plain[addr] {
			flags = append(withoutFlag(withoutFlag(flags, "--"+side+"-tls"), "--"+side+"-ca-file"), "--"+side+"-tls", "none")
		}
	}
	return flags
}

// withoutFlag drops a flag and its value from args.
func withoutFlag(args []string, name string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		if args[i] == name {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// usePlain marks addr (a garbler's) as needing the plain csync stream.
func (e *env) usePlain(addr string) {
	if e.plain == nil {
		e.plain = map[string]bool{}
	}
	e.plain[addr] = true
	e.p.AllowPlainLogins()
}

// result is one finished replicator run.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d after %v\nstdout:\n%s\nstderr:\n%s", r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// run runs the replicator to completion (bounded: a hang fails the test).
func (e *env) run(t *testing.T, timeout time.Duration, mode string, extra ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, e.bin, e.args(mode, extra...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("replicator %s did not finish within %v (a hang)\n%s", mode, timeout, r)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("replicator %s: %v", mode, err)
	}
	if strings.Contains(r.stderr, "panic:") || strings.Contains(r.stderr, "goroutine ") {
		t.Fatalf("replicator %s panicked\n%s", mode, r)
	}
	return r
}

// proc is a replicator running in the background (rolling).
type proc struct {
	cmd  *exec.Cmd
	out  *os.File
	done chan struct{}
}

func (e *env) start(t *testing.T, mode string, extra ...string) *proc {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stdout-*")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(e.bin, e.args(mode, extra...)...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, out: f, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill(syscall.SIGKILL) })
	return p
}

func (p *proc) kill(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) output() string {
	b, _ := os.ReadFile(p.out.Name())
	return string(b)
}

// readReport reads the report.Summary file the replicator wrote (zero value if absent
// or caught mid-write, which the atomic rename makes impossible).
func (e *env) readReport(t *testing.T) report.Summary {
	t.Helper()
	var s report.Summary
	if b, err := os.ReadFile(e.reportFile); err == nil {
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("report file %s is not a report.Summary: %v", e.reportFile, err)
		}
	}
	return s
}

// records returns the JSON lines of one type from a replicator's output.
func records(out, typ string) []map[string]any {
	var got []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["type"] == typ {
			got = append(got, m)
		}
	}
	return got
}

// waitFor polls cond until it holds or the bound passes.
func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", bound, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// assertEqual checks, against the real servers, that replicator verify finds the
// users equal and that every folder has the same message count and UIDNEXT.
func (e *env) assertEqual(t *testing.T, users ...string) {
	t.Helper()
	saved := [2]string{e.Master, e.Replica}
	e.Master, e.Replica = e.p.Master.SyncAddr, e.p.Replica.SyncAddr
	defer func() { e.Master, e.Replica = saved[0], saved[1] }()
	r := e.run(t, 2*time.Minute, "verify", "--user", strings.Join(users, ","))
	if r.code != 0 {
		t.Fatalf("verify: replica differs from master\n%s", r)
	}
	for _, u := range users {
		for _, f := range e.p.Master.List(t, u) {
			ms, rs := e.p.Master.Status(t, u, f), e.p.Replica.Status(t, u, f)
			if ms.Messages != rs.Messages || ms.UIDNext != rs.UIDNext || ms.UIDValidity != rs.UIDValidity {
				t.Fatalf("%s %s: master %+v replica %+v", u, f, ms, rs)
			}
		}
	}
}

// drainRolling runs one-shot rolling cycles until the log is consumed and no user is
// owed a retry. It returns every output.
func (e *env) drainRolling(t *testing.T) string {
	t.Helper()
	logDir := e.p.Master.SyncLogDir(e.p.Channel)
	var all strings.Builder
	for i := 0; ; i++ {
		r := e.run(t, 2*time.Minute, "rolling", "--sync-log", logDir, "--once", "--retry-base", "1ms")
		all.WriteString(r.stdout)
		_, errLog := os.Stat(filepath.Join(logDir, "log"))
		_, errRun := os.Stat(filepath.Join(logDir, "log-run"))
		if r.code == 0 && errors.Is(errLog, os.ErrNotExist) && errors.Is(errRun, os.ErrNotExist) {
			return all.String()
		}
		if i >= 30 {
			t.Fatalf("rolling did not drain after %d cycles\n%s", i, r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// masterPID reads an instance's master.pid.
func masterPID(t *testing.T, inst *cyruspair.Instance) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(inst.Dir, "run", "master.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("master.pid: %v", err)
	}
	return pid
}

// children lists the PIDs whose parent is ppid, walking /proc.
func children(ppid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name may hold spaces and parentheses: fields follow the last ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 {
			if pp, _ := strconv.Atoi(f[1]); pp == ppid {
				out = append(out, pid)
			}
		}
	}
	return out
}

// syncServers returns the sync_server children of an instance's master (by the
// executable each child runs, not by a process-name search).
func syncServers(t *testing.T, inst *cyruspair.Instance) []int {
	t.Helper()
	want := filepath.Join(cyruspair.CyrusBin, "sync_server")
	var out []int
	for _, pid := range children(masterPID(t, inst)) {
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && exe == want {
			out = append(out, pid)
		}
	}
	return out
}

// readBytes is /proc/<pid>/io rchar: bytes the process has read.
func readBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "rchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}

// stopInstance stops one instance's master (and its children) by PID.
func stopInstance(t *testing.T, inst *cyruspair.Instance) {
	t.Helper()
	pid := masterPID(t, inst)
	kids := children(pid)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if syscall.Kill(pid, 0) == nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, c := range kids {
		_ = syscall.Kill(c, syscall.SIGKILL)
	}
	_ = os.Remove(filepath.Join(inst.Dir, "run", "master.pid"))
	waitFor(t, 10*time.Second, inst.Name+" sync port closed", func() bool {
		c, err := net.DialTimeout("tcp", inst.SyncAddr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}

// startInstance starts one instance's master again, the way hack/cyrus-pair.sh does.
func startInstance(t *testing.T, inst *cyruspair.Instance) {
	t.Helper()
	d := inst.Dir
	out, err := exec.Command(filepath.Join(cyruspair.CyrusBin, "master"), "-C", filepath.Join(d, "imapd.conf"),
		"-M", filepath.Join(d, "cyrus.conf"), "-p", filepath.Join(d, "run", "master.pid"), "-L", filepath.Join(d, "master.log"), "-d").CombinedOutput()
	if err != nil {
		t.Fatalf("start %s: %v\n%s", inst.Name, err, out)
	}
	waitFor(t, 30*time.Second, inst.Name+" sync port open", func() bool {
		c, err := net.DialTimeout("tcp", inst.SyncAddr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// bigMessages returns n messages of about size bytes each.
func bigMessages(prefix string, n, size int) [][]byte {
	line := strings.Repeat("0123456789abcdef", 4) + "\r\n"
	body := strings.Repeat(line, size/len(line))
	out := make([][]byte, n)
	for i := range out {
		out[i] = cyruspair.Message(fmt.Sprintf("%s %d", prefix, i), fmt.Sprintf("%d\r\n%s", i, body))
	}
	return out
}
