package bench

// BenchmarkLag: replication lag, from a delivery on the master (LMTP's reply) until the
// message is visible on the replica's IMAP, under a steady stream: CYRUSREPL_LAG_RATE
// deliveries per second (10) spread over CYRUSREPL_LAG_USERS users (10) for
// CYRUSREPL_LAG_SECONDS (30). On the same master, in the same run, each on its own
// sync-log channel and into its own replica:
//
//	stock   sync_client -R -n stock (foreground rolling, sync_repeat_interval 1s) → Replica2
//	ours    replicator rolling on the cyrusrepl channel → Replica
//
// Visibility: one IMAP session per user and replica polls STATUS INBOX (MESSAGES) every
// CYRUSREPL_LAG_POLL (20ms); a user's k-th message of the stream is visible when the
// count reaches its count before the stream plus k (the folder only grows: mail is
// delivered, nothing expunged). The benchmark prints p50, p99 and max per program and
// fails if a message never shows up, if either program exits with an error, or if the
// replicas differ from the master afterwards. Goal: our p99 at most half of stock's.
//
// CYRUSREPL_LAG_AGENT: 1 = the replicator through the master agent (cmd/agent), 0 = on
// the local channel directory; unset = through the agent when the module has one.
// CYRUSREPL_LAG_OURS_ARGS adds flags to the replicator (e.g. "--interval 100ms").
// Run: go test -run '^$' -bench BenchmarkLag -benchtime 1x -timeout 30m ./test/bench/

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/loadavg"
)

func BenchmarkLag(b *testing.B) {
	bin := buildReplicator(b)
	for range b.N {
		b.StopTimer()
		lagOnce(b, bin)
		b.StartTimer()
	}
}

// daemon is a long-running program of the benchmark, stopped at the end.
type daemon struct {
	name string
	cmd  *exec.Cmd
	out  *strings.Builder
	done chan error
}

func startDaemon(b *testing.B, name, path string, args ...string) *daemon {
	b.Helper()
	d := &daemon{name: name, cmd: exec.Command(path, args...), out: &strings.Builder{}, done: make(chan error, 1)}
	d.cmd.Stdout, d.cmd.Stderr = syncWriter(d.out), syncWriter(d.out)
	if err := d.cmd.Start(); err != nil {
		b.Fatalf("start %s: %v", name, err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	b.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Kill() // our own child, by PID
			<-d.done
		}
	})
	return d
}

// stop ends the daemon (stopFn asks it to; after 15 s it is killed) and fails the
// benchmark unless it exited 0.
func (d *daemon) stop(b *testing.B, stopFn func()) {
	b.Helper()
	stopFn()
	select {
	case err := <-d.done:
		if err != nil {
			b.Fatalf("%s exited with %v:\n%s", d.name, err, tail(d.out.String(), 30))
		}
	case <-time.After(15 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
		b.Fatalf("%s did not stop within 15 s:\n%s", d.name, tail(d.out.String(), 30))
	}
}

type lockedWriter struct {
	mu sync.Mutex
	sb *strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sb.Write(p)
}

var writers sync.Map

func syncWriter(sb *strings.Builder) *lockedWriter {
	w, _ := writers.LoadOrStore(sb, &lockedWriter{sb: sb})
	return w.(*lockedWriter)
}

func lagOnce(b *testing.B, bin string) {
	nUsers := envInt("CYRUSREPL_LAG_USERS", 10)
	rate := envInt("CYRUSREPL_LAG_RATE", 10)
	seconds := envInt("CYRUSREPL_LAG_SECONDS", 30)
	poll, err := time.ParseDuration(envStr("CYRUSREPL_LAG_POLL", "20ms"))
	if err != nil {
		b.Fatalf("CYRUSREPL_LAG_POLL: %v", err)
	}
	p := cyruspair.Start(b, cyruspair.Options{SecondReplica: true})
	m := p.Master
	users := make([]string, nUsers)
	for u := range users {
		users[u] = fmt.Sprintf("lag%02d", u)
		m.CreateUser(b, users[u])
		m.Deliver(b, users[u], cyruspair.Message("before the stream", "hello\n"))
	}
	pwFile := filepath.Join(b.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(p.ReplPassword), 0o600); err != nil {
		b.Fatal(err)
	}
	common := append([]string{
		"--master", m.SyncAddr, "--replica", p.Replica.SyncAddr,
		"--master-password-file", pwFile, "--replica-password-file", pwFile, "--master-tls", "none", "--replica-tls", "none",
		"--state-dir", b.TempDir(),
	}, strings.Fields(os.Getenv("CYRUSREPL_LAG_OURS_ARGS"))...)
	syncClient := filepath.Join(cyruspair.CyrusBin, "sync_client")

	// Both replicas start equal to the master, and both channels empty.
	measure(b, syncClient, append([]string{"-C", m.ConfigPath, "-n", "stock", "-u"}, users...)...)
	args := append([]string{"sync"}, common...)
	for _, u := range users {
		args = append(args, "--user", u)
	}
	measure(b, bin, args...)
	for _, ch := range []string{"stock", p.Channel} {
		_ = os.Remove(filepath.Join(m.SyncLogDir(ch), "log"))
	}

	stock := startDaemon(b, "stock sync_client -R", syncClient, "-C", m.ConfigPath, "-n", "stock", "-R")
	oursArgs, how := oursRollingArgs(b, p, common)
	ours := startDaemon(b, "replicator rolling ("+how+")", bin, oursArgs...)

	watchers := []*lagWatcher{newLagWatcher(b, p, p.Replica2, users, poll), newLagWatcher(b, p, p.Replica, users, poll)}
	for _, w := range watchers {
		w.start()
	}

	// The stream: message j goes to user j mod n, at a steady rate.
	total := rate * seconds
	delivered := make([]time.Time, total)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	streamStart := time.Now()
	for j := range total {
		<-tick.C
		u := j % nUsers
		msg := cyruspair.Message(fmt.Sprintf("stream %d", j), "steady stream\n")
		if err := cyruspair.DeliverLMTP(m.LMTPAddr, []string{users[u]}, msg); err != nil {
			b.Fatalf("deliver %d: %v", j, err)
		}
		delivered[j] = time.Now()
		for _, w := range watchers {
			w.expect(u)
		}
	}
	tick.Stop()
	b.Logf("stream: %d deliveries in %s (load %s)", total, time.Since(streamStart).Round(time.Millisecond), loadavg.String())

	for _, w := range watchers {
		w.waitAll(b, 2*time.Minute)
	}
	stock.stop(b, func() {
		if err := os.WriteFile(filepath.Join(m.Dir, "run", "sync_shutdown_stock"), nil, 0o644); err != nil {
			b.Fatalf("stock shutdown file: %v", err)
		}
	})
	ours.stop(b, func() { _ = ours.cmd.Process.Signal(syscall.SIGTERM) })
	compareReplicas(b, p, users, "lag")

	lat := make([][]float64, 2)
	for i, w := range watchers {
		for j := range total {
			lat[i] = append(lat[i], w.seenAt(j%nUsers, j/nUsers).Sub(delivered[j]).Seconds())
		}
	}
	report := func(name string, xs []float64) (float64, float64) {
		p50, p99 := percentile(xs, 50), percentile(xs, 99)
		fmt.Printf("lag %-40s %d messages: p50 %.3fs p99 %.3fs max %.3fs\n", name, len(xs), p50, p99, percentile(xs, 100))
		return p50, p99
	}
	fmt.Printf("lag: %d deliveries/s over %d users for %d s, IMAP polled every %s, load %s\n", rate, nUsers, seconds, poll, loadavg.String())
	s50, s99 := report("stock sync_client -R (channel stock)", lat[0])
	o50, o99 := report("replicator rolling ("+how+")", lat[1])
	verdict := "met"
	if o99 > s99/2 {
		verdict = "NOT met"
	}
	fmt.Printf("lag: ours/stock p50 %.2f, p99 %.2f (goal p99 ≤ 0.5: %s)\n", o50/s50, o99/s99, verdict)
	b.ReportMetric(s50, "stock-p50-s")
	b.ReportMetric(s99, "stock-p99-s")
	b.ReportMetric(o50, "ours-p50-s")
	b.ReportMetric(o99, "ours-p99-s")
}

// oursRollingArgs is the replicator's rolling command line: through the master agent
// (agent_test.go) when CYRUSREPL_LAG_AGENT=1, or when it is unset and the module has
// cmd/agent; on the local sync-log channel when it is 0 or there is no agent.
func oursRollingArgs(b *testing.B, p *cyruspair.Pair, common []string) ([]string, string) {
	useAgent := os.Getenv("CYRUSREPL_LAG_AGENT") == "1"
	if os.Getenv("CYRUSREPL_LAG_AGENT") == "" {
		useAgent = exec.Command("go", "list", "github.com/cyrusrepl/cyrusrepl/cmd/agent").Run() == nil
	}
	if useAgent {
		return append(append([]string{"rolling"}, startAgent(b, p, p.Channel)...), common...), "through the agent, channel " + p.Channel
	}
	return append([]string{"rolling", "--sync-log", p.Master.SyncLogDir(p.Channel), "--master-config", p.Master.ConfigPath}, common...),
		"local channel " + p.Channel
}

// lagWatcher polls one replica's INBOXes and records when each stream message shows.
type lagWatcher struct {
	p     *cyruspair.Pair
	in    *cyruspair.Instance
	users []string
	poll  time.Duration
	mu    sync.Mutex
	base  []int         // messages before the stream
	want  []int         // stream messages delivered so far, per user
	seen  [][]time.Time // per user, when the k-th stream message was first seen
	err   error
	stopc chan struct{}
	wg    sync.WaitGroup
}

func newLagWatcher(b *testing.B, p *cyruspair.Pair, in *cyruspair.Instance, users []string, poll time.Duration) *lagWatcher {
	w := &lagWatcher{p: p, in: in, users: users, poll: poll, base: make([]int, len(users)), want: make([]int, len(users)),
		seen: make([][]time.Time, len(users)), stopc: make(chan struct{})}
	b.Cleanup(w.stop)
	for u, name := range users {
		c, err := cyruspair.DialIMAP(in.IMAPAddr, name, p.AdminUser, p.AdminPassword)
		if err != nil {
			b.Fatalf("IMAP on %s as %s: %v", in.Name, name, err)
		}
		n, err := statusMessages(c)
		_ = c.Close()
		if err != nil {
			b.Fatalf("STATUS on %s as %s: %v", in.Name, name, err)
		}
		w.base[u] = n
	}
	return w
}

func (w *lagWatcher) start() {
	for u := range w.users {
		w.wg.Add(1)
		go w.watch(u)
	}
}

func (w *lagWatcher) stop() {
	select {
	case <-w.stopc:
	default:
		close(w.stopc)
	}
	w.wg.Wait()
}

func (w *lagWatcher) expect(u int) {
	w.mu.Lock()
	w.want[u]++
	w.mu.Unlock()
}

func (w *lagWatcher) watch(u int) {
	defer w.wg.Done()
	c, err := cyruspair.DialIMAP(w.in.IMAPAddr, w.users[u], w.p.AdminUser, w.p.AdminPassword)
	if err != nil {
		w.fail(err)
		return
	}
	defer c.Close()
	t := time.NewTicker(w.poll)
	defer t.Stop()
	for {
		n, err := statusMessages(c)
		now := time.Now()
		if err != nil {
			w.fail(fmt.Errorf("STATUS on %s as %s: %w", w.in.Name, w.users[u], err))
			return
		}
		w.mu.Lock()
		for len(w.seen[u]) < n-w.base[u] {
			w.seen[u] = append(w.seen[u], now)
		}
		w.mu.Unlock()
		select {
		case <-w.stopc:
			return
		case <-t.C:
		}
	}
}

func (w *lagWatcher) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

// waitAll waits until every delivered message was seen on the replica.
func (w *lagWatcher) waitAll(b *testing.B, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for {
		w.mu.Lock()
		err, missing := w.err, 0
		for u := range w.users {
			missing += max(0, w.want[u]-len(w.seen[u]))
		}
		w.mu.Unlock()
		if err != nil {
			b.Fatal(err)
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: %d messages still not visible %s after the stream", w.in.Name, missing, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (w *lagWatcher) seenAt(u, k int) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen[u][k]
}

func statusMessages(c *cyruspair.IMAPClient) (int, error) {
	lines, err := c.Cmd("STATUS INBOX (MESSAGES)")
	if err != nil {
		return 0, err
	}
	for _, l := range lines {
		if i := strings.Index(strings.ToUpper(l), "(MESSAGES "); i >= 0 {
			return strconv.Atoi(strings.TrimRight(strings.Fields(l[i+len("(MESSAGES "):])[0], ")"))
		}
	}
	return 0, fmt.Errorf("no STATUS reply in %q", lines)
}
