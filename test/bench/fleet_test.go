package bench

// BenchmarkFleet: a fleet of users with many folders on the real pair. Phases, each run
// by stock sync_client (into Replica2, in the foreground: -u, -R -f <log>, -A) and by the
// replicator (into Replica) on the same master in the same run, the two in alternating
// order from run to run, both replicas compared with the master after every phase:
//
//	initial  every user, from empty replicas
//	day      a scripted "day of traffic" on the master (deliveries, flag changes,
//	         expunges, renames, deletes, creates), replicated from the sync log
//	renames  one folder renamed per user, nothing else: the replicator must send 0 bodies
//	audit    a full walk of every user when nothing changed
//
// Sizes: CYRUSREPL_FLEET_SIZES (users per sub-benchmark, comma-separated; "200"),
// CYRUSREPL_FLEET_FOLDERS (20 per user besides INBOX), CYRUSREPL_FLEET_MSGS (20 INBOX
// messages per user), CYRUSREPL_FLEET_PERFOLDER (3 messages copied into each folder),
// CYRUSREPL_BENCH_WORKERS (4), CYRUSREPL_FLEET_SEEDERS (4 seeding goroutines),
// CYRUSREPL_BENCH_COMPRESS=1 (the replicator with --compress, like stock's DEFLATE),
// CYRUSREPL_BENCH_RUNS (3 runs per size, each on a fresh pair; median and range printed).
// Run: go test -run '^$' -bench BenchmarkFleet -benchtime 1x -timeout 60m ./test/bench/

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/loadavg"
)

type fleetSize struct {
	users, folders, inbox, perFolder int
}

func (s fleetSize) messages() int { return s.users * (s.inbox + s.folders*s.perFolder) }

func fleetSizes() []int {
	var out []int
	for _, f := range strings.Split(envStr("CYRUSREPL_FLEET_SIZES", "200"), ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

func envStr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func BenchmarkFleet(b *testing.B) {
	bin := buildReplicator(b)
	for _, users := range fleetSizes() {
		size := fleetSize{
			users:     users,
			folders:   envInt("CYRUSREPL_FLEET_FOLDERS", 20),
			inbox:     envInt("CYRUSREPL_FLEET_MSGS", 20),
			perFolder: envInt("CYRUSREPL_FLEET_PERFOLDER", 3),
		}
		b.Run(fmt.Sprintf("users=%d,folders=%d", size.users, size.folders), func(b *testing.B) {
			for range b.N {
				var runs []map[string]phaseResult
				for run := range benchRuns() {
					runs = append(runs, fleetOnce(b, bin, size, run))
				}
				fleetSummary(b, size, runs)
			}
		})
	}
}

// fleetRun is one measured run of one program in one phase.
type fleetRun struct {
	wall       time.Duration
	rssKiB     int64
	cpu        time.Duration // the program's own user+system CPU
	masterCPU  time.Duration // the master instance's server processes during the run
	wireBytes  int64         // to and from the replica (csync), through the counting proxy
	masterRead int64         // replicator only: csync bytes to and from the master
	bodies     int           // replicator only: bodies uploaded (sum of bodiesSent)
	retried    int           // replicator only: user lines with more than one attempt
	failed     int           // replicator only: user lines with outcome failed
	users      map[string]int
	escalated  int         // replicator only: mailbox-level batches that became full user syncs
	csync      []csyncStat // replicator only: its csync-stats line
}

// phaseResult is one phase of one run: both programs.
type phaseResult struct{ stock, ours fleetRun }

// csyncStat is one entry of the replicator's csync-stats line.
type csyncStat struct {
	End     string  `json:"end"`
	Command string  `json:"command"`
	Count   int64   `json:"count"`
	Seconds float64 `json:"seconds"`
}

// fleetPhases are the phases in the order they run.
var fleetPhases = []string{"initial", "day", "renames", "audit"}

func fleetOnce(b *testing.B, bin string, size fleetSize, run int) map[string]phaseResult {
	b.StopTimer()
	defer b.StartTimer()
	p := cyruspair.Start(b, cyruspair.Options{SecondReplica: true})
	m := p.Master
	names := make([]string, size.users)
	for u := range names {
		names[u] = fmt.Sprintf("fl%05d", u)
	}
	seeders := envInt("CYRUSREPL_FLEET_SEEDERS", 4)
	start := time.Now()
	parallel(b, names, seeders, func(u int, name string) error { return seedUser(b, p, u, name, size) })
	b.Logf("run %d: seeded %d users × (%d folders, %d INBOX + %d per folder) = %d messages in %s (load %s)",
		run+1, size.users, size.folders, size.inbox, size.perFolder, size.messages(), time.Since(start).Round(time.Millisecond), loadavg.String())

	replicaProxy := startProxy(b, p.Replica.SyncAddr)
	masterProxy := startProxy(b, m.SyncAddr)
	stockProxy := startProxy(b, p.Replica2.SyncAddr)
	stockConf := stockConfig(b, m.ConfigPath, stockProxy.Addr())
	pwFile := filepath.Join(b.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(p.ReplPassword), 0o600); err != nil {
		b.Fatal(err)
	}
	state := b.TempDir()
	common := []string{
		"--master", masterProxy.Addr(), "--replica", replicaProxy.Addr(),
		"--master-password-file", pwFile, "--replica-password-file", pwFile, "--master-tls", "none", "--replica-tls", "none",
		"--workers", strconv.Itoa(envInt("CYRUSREPL_BENCH_WORKERS", 4)), "--state-dir", state,
	}
	if os.Getenv("CYRUSREPL_BENCH_COMPRESS") == "1" {
		common = append(common, "--compress") // COMPRESS=DEFLATE, as stock uses
	}
	mpid := masterPID(b, m)
	syncClient := filepath.Join(cyruspair.CyrusBin, "sync_client")
	withMasterCPU := func(fn func() fleetRun) fleetRun {
		c0 := instanceCPU(mpid)
		r := fn()
		r.masterCPU = instanceCPU(mpid) - c0
		return r
	}
	stock := func(args ...string) fleetRun {
		before := stockProxy.Total()
		r := withMasterCPU(func() fleetRun {
			return measure(b, syncClient, append([]string{"-C", stockConf, "-n", "stock"}, args...)...)
		})
		r.wireBytes = stockProxy.Total() - before
		return r
	}
	stockRolling := func() fleetRun {
		before := stockProxy.Total()
		r := withMasterCPU(func() fleetRun { return stockRollingPass(b, m, stockConf) })
		r.wireBytes = stockProxy.Total() - before
		return r
	}
	ours := func(args ...string) fleetRun {
		rb, mb := replicaProxy.Total(), masterProxy.Total()
		r := withMasterCPU(func() fleetRun { return measure(b, bin, append(args, common...)...) })
		r.wireBytes, r.masterRead = replicaProxy.Total()-rb, masterProxy.Total()-mb
		return r
	}
	// both runs the two programs, alternating which goes first from run to run, then
	// compares both replicas with the master.
	results := map[string]phaseResult{}
	both := func(phase string, s, o func() fleetRun) phaseResult {
		var r phaseResult
		if stockFirst(run) {
			r.stock, r.ours = settled(s), settled(o)
		} else {
			r.ours, r.stock = settled(o), settled(s)
		}
		compareReplicas(b, p, names, fmt.Sprintf("run %d %s", run+1, phase))
		results[phase] = r
		return r
	}
	clearLogs := func() {
		for _, ch := range []string{"stock", p.Channel} {
			_ = os.Remove(filepath.Join(m.SyncLogDir(ch), "log"))
		}
	}
	userArgs := func(flag string) []string {
		var a []string
		for _, n := range names {
			a = append(a, flag, n)
		}
		return a
	}
	// --master-config: the replicator reads the master's disk like stock does (mailboxes.db
	// evidence, and the index for update deltas where the build has them).
	rolling := func() fleetRun {
		return ours("rolling", "--sync-log", m.SyncLogDir(p.Channel), "--master-config", m.ConfigPath, "--once")
	}

	// initial: every user, from empty replicas; the replicator reads new folders' records
	// from the master's index as stock reads them from its own disk.
	clearLogs()
	r := both("initial",
		func() fleetRun { return stock(append([]string{"-u"}, names...)...) },
		func() fleetRun {
			return ours(append([]string{"sync", "--master-config", m.ConfigPath}, userArgs("--user")...)...)
		})
	fleetReport(b, size, run, "initial", size.messages(), r.stock, r.ours, -1)

	// day: scripted traffic, replayed from each program's sync-log channel.
	clearLogs()
	start = time.Now()
	delivered := 0
	var mu sync.Mutex
	parallel(b, names, seeders, func(u int, name string) error {
		n, err := dayOfTraffic(b, p, u, name, size)
		mu.Lock()
		delivered += n
		mu.Unlock()
		return err
	})
	b.Logf("day of traffic on the master in %s: %d deliveries (load %s)", time.Since(start).Round(time.Millisecond), delivered, loadavg.String())
	r = both("day", stockRolling, rolling)
	fleetReport(b, size, run, "day", delivered, r.stock, r.ours, delivered)

	// renames only: the replicator must upload no body.
	clearLogs()
	parallel(b, names, seeders, func(u int, name string) error {
		return imapSession(p, name, func(c *cyruspair.IMAPClient) error {
			_, err := c.Cmd("RENAME %s %s", cyruspair.Quote("INBOX.f04"), cyruspair.Quote("INBOX.renamed04"))
			return err
		})
	})
	r = both("renames", stockRolling, rolling)
	fleetReport(b, size, run, "renames", size.users*size.perFolder, r.stock, r.ours, 0)
	if r.ours.bodies != 0 {
		b.Errorf("renames: the replicator uploaded %d bodies, want 0", r.ours.bodies)
	}

	// audit: a full walk of every user, nothing changed.
	clearLogs()
	r = both("audit",
		func() fleetRun { return stock("-A") },
		func() fleetRun {
			return ours(append([]string{"audit", "--master-config", m.ConfigPath}, userArgs("--user")...)...)
		})
	fleetReport(b, size, run, "audit", size.messages(), r.stock, r.ours, 0)
	if len(r.ours.users) != size.users {
		b.Errorf("audit: %d users reported, want %d", len(r.ours.users), size.users)
	}
	return results
}

// fleetSummary prints, per phase, the median and range over the runs of each program's
// wall time and of the ratio ours/stock, and reports the medians as metrics.
func fleetSummary(b *testing.B, size fleetSize, runs []map[string]phaseResult) {
	fmt.Printf("fleet users=%d folders=%d: %d runs (stock first in runs 1, 3, …; ours first in 2, 4, …); median (min–max)\n",
		size.users, size.folders, len(runs))
	for _, phase := range fleetPhases {
		var st, ou, ratio, smcpu, omcpu, scpu, ocpu, srss, orss []float64
		for _, r := range runs {
			pr, ok := r[phase]
			if !ok {
				continue
			}
			st = append(st, pr.stock.wall.Seconds())
			ou = append(ou, pr.ours.wall.Seconds())
			ratio = append(ratio, pr.ours.wall.Seconds()/pr.stock.wall.Seconds())
			smcpu = append(smcpu, (pr.stock.masterCPU + pr.stock.cpu).Seconds()) // sync_client runs on the master
			omcpu = append(omcpu, pr.ours.masterCPU.Seconds())
			scpu = append(scpu, pr.stock.cpu.Seconds())
			ocpu = append(ocpu, pr.ours.cpu.Seconds())
			srss = append(srss, float64(pr.stock.rssKiB))
			orss = append(orss, float64(pr.ours.rssKiB))
		}
		rs := spreadOf(ratio)
		fmt.Printf("  %-8s ratio ours/stock %s | wall s stock %s ours %s | master-host CPU s stock %s (sync_client + master's servers) ours %s (master's sync_server) | client CPU s stock %s ours %s | peak RSS KiB stock %s ours %s\n",
			phase, rs, spreadOf(st), spreadOf(ou), spreadOf(smcpu), spreadOf(omcpu), spreadOf(scpu), spreadOf(ocpu), spreadOf(srss).format("%.0f"), spreadOf(orss).format("%.0f"))
		b.ReportMetric(rs.median, phase+"-ratio-median")
		b.ReportMetric(rs.max, phase+"-ratio-max")
	}
}

// parallel runs fn for every user over n goroutines; the first error fails the benchmark.
func parallel(b *testing.B, names []string, n int, fn func(int, string) error) {
	b.Helper()
	idx := make(chan int)
	errs := make(chan error, len(names))
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range idx {
				if err := fn(u, names[u]); err != nil {
					errs <- fmt.Errorf("%s: %w", names[u], err)
				}
			}
		}()
	}
	for u := range names {
		idx <- u
	}
	close(idx)
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

func imapSession(p *cyruspair.Pair, user string, fn func(*cyruspair.IMAPClient) error) error {
	c, err := cyruspair.DialIMAP(p.Master.IMAPAddr, user, p.AdminUser, p.AdminPassword)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}

func folderName(f int) string { return fmt.Sprintf("INBOX.f%02d", f) }

// seedUser creates the user, its folders, its INBOX mail (one LMTP session) and copies a
// few INBOX messages into every folder (server-side COPY: no upload per folder).
func seedUser(b *testing.B, p *cyruspair.Pair, u int, name string, size fleetSize) error {
	admin, err := cyruspair.DialIMAP(p.Master.IMAPAddr, "", p.AdminUser, p.AdminPassword)
	if err != nil {
		return err
	}
	_, err = admin.Cmd("CREATE %s", cyruspair.Quote("user."+name))
	_ = admin.Close()
	if err != nil {
		return err
	}
	msgs := make([][]byte, size.inbox)
	for k := range msgs {
		// 1–6 KB bodies, deterministic per user and message.
		msgs[k] = cyruspair.Message(fmt.Sprintf("%s seed %d", name, k),
			strings.Repeat("a line of fleet benchmark mail, plain text\n", 25+(u*7+k*13)%120))
	}
	p.Master.DeliverMany(b, name, msgs)
	return imapSession(p, name, func(c *cyruspair.IMAPClient) error {
		for f := range size.folders {
			if _, err := c.Cmd("CREATE %s", cyruspair.Quote(folderName(f))); err != nil {
				return err
			}
		}
		if size.perFolder == 0 || size.inbox == 0 {
			return nil
		}
		if _, err := c.Cmd("SELECT INBOX"); err != nil {
			return err
		}
		for f := range size.folders {
			lo := 1 + (f*size.perFolder)%size.inbox
			hi := min(lo+size.perFolder-1, size.inbox)
			if _, err := c.Cmd("UID COPY %d:%d %s", lo, hi, cyruspair.Quote(folderName(f))); err != nil {
				return err
			}
		}
		return nil
	})
}

// dayOfTraffic is one user's scripted day, the same for every run: 5 deliveries, \Seen
// on half the INBOX, 2 messages expunged, \Flagged in a folder, a folder renamed, every
// other user deletes a folder, every third creates one. It returns the deliveries.
func dayOfTraffic(b *testing.B, p *cyruspair.Pair, u int, name string, size fleetSize) (int, error) {
	const deliveries = 5
	msgs := make([][]byte, deliveries)
	for k := range msgs {
		msgs[k] = cyruspair.Message(fmt.Sprintf("%s day %d", name, k),
			strings.Repeat("news of the day, delivered over LMTP\n", 20+(u+k*31)%100))
	}
	p.Master.DeliverMany(b, name, msgs)
	err := imapSession(p, name, func(c *cyruspair.IMAPClient) error {
		cmds := []string{
			"SELECT INBOX",
			fmt.Sprintf("STORE 1:%d +FLAGS (\\Seen)", max(1, size.inbox/2)),
			"STORE 3:4 +FLAGS (\\Deleted)",
			"EXPUNGE",
		}
		if size.folders > 3 {
			cmds = append(cmds,
				"SELECT "+cyruspair.Quote(folderName(1)),
				"STORE 1:* +FLAGS (\\Flagged)",
				"CLOSE",
				"RENAME "+cyruspair.Quote(folderName(2))+" "+cyruspair.Quote("INBOX.moved02"))
			if u%2 == 0 {
				cmds = append(cmds, "DELETE "+cyruspair.Quote(folderName(3)))
			}
		}
		if u%3 == 0 {
			cmds = append(cmds, "CREATE "+cyruspair.Quote("INBOX.new"))
		}
		for _, cmd := range cmds {
			if _, err := c.Cmd("%s", cmd); err != nil {
				return fmt.Errorf("%s: %w", cmd, err)
			}
		}
		return nil
	})
	return deliveries, err
}

// measure runs one program to completion and collects wall time, peak RSS and, from the
// replicator's JSON lines, the users and bodies sent. A non-zero exit fails the benchmark.
func measure(b testing.TB, name string, args ...string) fleetRun {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	r := fleetRun{users: map[string]int{}}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	hwm := pollHWM(cmd.Process.Pid)
	var other []string
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var line struct {
			Type       string      `json:"type"`
			User       string      `json:"user"`
			Outcome    string      `json:"outcome"`
			BodiesSent int         `json:"bodiesSent"`
			Attempts   int         `json:"attempts"`
			Commands   []csyncStat `json:"commands"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Type == "user" {
			r.users[line.User]++
			r.bodies += line.BodiesSent
			if line.Attempts > 1 {
				r.retried++
			}
			if line.Outcome == "failed" {
				r.failed++
			}
			continue
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Type == "csync-stats" {
			r.csync = line.Commands
			continue
		}
		if line.Type == "escalation" {
			r.escalated++
		}
		other = append(other, sc.Text())
	}
	err = cmd.Wait()
	r.wall = time.Since(start)
	r.rssKiB = hwm.Stop()
	if ps := cmd.ProcessState; ps != nil {
		r.cpu = ps.UserTime() + ps.SystemTime()
	}
	if err != nil {
		b.Fatalf("%s %s: %v\n%s\n%s", filepath.Base(name), strings.Join(firstN(args, 12), " "), err,
			tail(strings.Join(other, "\n"), 20), tail(stderr.String(), 20))
	}
	return r
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "…")
	}
	return s
}

func fleetReport(b *testing.B, size fleetSize, run int, phase string, msgs int, s, o fleetRun, wantBodies int) {
	want := ""
	if wantBodies >= 0 {
		want = fmt.Sprintf(" (want %d)", wantBodies)
	}
	fmt.Printf("fleet users=%d folders=%d run %d %-8s %7d msgs | stock %8.2fs %8.0f msg/s %9.2f MB wire %6d KiB RSS, CPU %.2fs + master %.2fs | ours %8.2fs %8.0f msg/s %9.2f MB wire (+%.2f MB from master) %6d KiB RSS, CPU %.2fs + master %.2fs, %d bodies%s, %d users (%d retried, %d failed) | ratio ours/stock %.2f | load %s\n",
		size.users, size.folders, run+1, phase, msgs,
		s.wall.Seconds(), float64(msgs)/s.wall.Seconds(), float64(s.wireBytes)/1e6, s.rssKiB, s.cpu.Seconds(), s.masterCPU.Seconds(),
		o.wall.Seconds(), float64(msgs)/o.wall.Seconds(), float64(o.wireBytes)/1e6, float64(o.masterRead)/1e6, o.rssKiB, o.cpu.Seconds(), o.masterCPU.Seconds(), o.bodies, want, len(o.users), o.retried, o.failed,
		o.wall.Seconds()/s.wall.Seconds(), loadavg.String())
	printCsyncStats("ours "+phase, o)
}

// printCsyncStats prints where the replicator's time went, command by command (summed
// over workers), from its csync-stats line.
func printCsyncStats(label string, o fleetRun) {
	if len(o.csync) > 0 {
		// Where the replicator's time went, command by command (summed over workers).
		stats := slices.Clone(o.csync)
		sort.Slice(stats, func(i, j int) bool { return stats[i].Seconds > stats[j].Seconds })
		var parts []string
		for _, c := range stats {
			parts = append(parts, fmt.Sprintf("%s %s %d× %.2fs", c.End, c.Command, c.Count, c.Seconds))
		}
		fmt.Printf("    %s: %d escalated to a full user sync; csync: %s\n", label, o.escalated, strings.Join(parts, ", "))
	}
}
