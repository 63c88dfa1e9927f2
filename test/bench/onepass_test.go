package bench

// BenchmarkOnePass: the cost of one update as a function of folder size. One master
// holds a user per size whose INBOX has that many messages; both replicas get them by an
// initial sync (not measured). Then, pass after pass, one message is delivered to one of
// those INBOXes and each program replicates it from its own sync-log channel: stock
// `sync_client -R -f <log>` in the foreground (into Replica2), the replicator
// `rolling --once` (into Replica), alternating which goes first. Per pass it records the
// wall time, the master instance's CPU, and the bytes on the wire; after the passes of a
// size both replicas are compared with the master record by record.
//
// Targets (issue "updates that cost what changed"): ours/stock ≤ 1.0 at every size, and
// our per-pass time flat in folder size (within 1.5× from the smallest to the largest).
//
// Sizes: CYRUSREPL_ONEPASS_SIZES ("1000,10000,50000" messages), CYRUSREPL_ONEPASS_PASSES
// (10 one-message passes per size, at least 3).
// Run: go test -run '^$' -bench BenchmarkOnePass -benchtime 1x -timeout 60m ./test/bench/

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/loadavg"
)

func onePassSizes() []int {
	var out []int
	for _, f := range strings.Split(envStr("CYRUSREPL_ONEPASS_SIZES", "1000,10000,50000"), ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// onePassResult is the per-pass figures of one size.
type onePassResult struct {
	size        int
	stock, ours []fleetRun
}

func BenchmarkOnePass(b *testing.B) {
	bin := buildReplicator(b)
	for range b.N {
		b.StopTimer()
		onePassOnce(b, bin, onePassSizes(), max(3, envInt("CYRUSREPL_ONEPASS_PASSES", 10)))
		b.StartTimer()
	}
}

func onePassOnce(b *testing.B, bin string, sizes []int, passes int) {
	p := cyruspair.Start(b, cyruspair.Options{SecondReplica: true})
	m := p.Master
	users := make([]string, len(sizes))
	start := time.Now()
	for i, n := range sizes {
		users[i] = fmt.Sprintf("big%d", n)
		m.CreateUser(b, users[i])
		seedInbox(b, p, users[i], n)
	}
	b.Logf("seeded INBOXes of %v messages in %s (load %s)", sizes, time.Since(start).Round(time.Millisecond), loadavg.String())

	replicaProxy := startProxy(b, p.Replica.SyncAddr)
	masterProxy := startProxy(b, m.SyncAddr)
	stockProxy := startProxy(b, p.Replica2.SyncAddr)
	stockConf := stockConfig(b, m.ConfigPath, stockProxy.Addr())
	pwFile := filepath.Join(b.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(p.ReplPassword), 0o600); err != nil {
		b.Fatal(err)
	}
	common := []string{
		"--master", masterProxy.Addr(), "--replica", replicaProxy.Addr(),
		"--master-password-file", pwFile, "--replica-password-file", pwFile, "--master-tls", "none", "--replica-tls", "none",
		"--workers", strconv.Itoa(envInt("CYRUSREPL_BENCH_WORKERS", 4)), "--state-dir", b.TempDir(),
		"--master-config", m.ConfigPath,
	}
	mpid := masterPID(b, m)
	stock := func() fleetRun {
		w, c := stockProxy.Total(), instanceCPU(mpid)
		r := stockRollingPass(b, m, stockConf)
		r.masterCPU, r.wireBytes = instanceCPU(mpid)-c, stockProxy.Total()-w
		return r
	}
	ours := func(args ...string) fleetRun {
		w, mb, c := replicaProxy.Total(), masterProxy.Total(), instanceCPU(mpid)
		r := measure(b, bin, append(args, common...)...)
		r.masterCPU, r.wireBytes, r.masterRead = instanceCPU(mpid)-c, replicaProxy.Total()-w, masterProxy.Total()-mb
		return r
	}

	// The initial copy, not measured: both replicas start equal to the master.
	measure(b, filepath.Join(cyruspair.CyrusBin, "sync_client"), append([]string{"-C", stockConf, "-n", "stock", "-u"}, users...)...)
	args := []string{"sync"}
	for _, u := range users {
		args = append(args, "--user", u)
	}
	ours(args...)
	compareReplicas(b, p, users, "one-message passes: after the initial copy")
	for _, ch := range []string{"stock", p.Channel} {
		_ = os.Remove(filepath.Join(m.SyncLogDir(ch), "log"))
	}

	var results []onePassResult
	for i, n := range sizes {
		res := onePassResult{size: n}
		for k := range passes {
			m.Deliver(b, users[i], cyruspair.Message(fmt.Sprintf("pass %d into %d", k, n), "one new message\n"))
			var s, o fleetRun
			if stockFirst(k) {
				s, o = stock(), ours("rolling", "--sync-log", m.SyncLogDir(p.Channel), "--once")
			} else {
				o, s = ours("rolling", "--sync-log", m.SyncLogDir(p.Channel), "--once"), stock()
			}
			res.stock, res.ours = append(res.stock, s), append(res.ours, o)
		}
		compareReplicas(b, p, users[i:i+1], fmt.Sprintf("one-message passes into %d", n))
		onePassReport(b, res)
		results = append(results, res)
	}
	onePassFlatness(b, results)
}

// seedInbox fills user's INBOX with n messages: up to 2,000 distinct ones over LMTP (1,000
// per session), then server-side COPYs of the folder into itself until it holds n (LMTP
// costs an fsync per message: 50,000 deliveries take minutes on a loaded machine). The
// copies share bodies, which changes nothing for a one-message update: its cost is
// about the number of records in the folder.
func seedInbox(b *testing.B, p *cyruspair.Pair, user string, n int) {
	distinct := min(n, 2000)
	for done := 0; done < distinct; {
		k := min(1000, distinct-done)
		msgs := make([][]byte, k)
		for j := range msgs {
			msgs[j] = cyruspair.Message(fmt.Sprintf("%s seed %d", user, done+j),
				strings.Repeat("a line of a message in a large INBOX\n", 5+(done+j)%40))
		}
		p.Master.DeliverMany(b, user, msgs)
		done += k
	}
	err := imapSession(p, user, func(c *cyruspair.IMAPClient) error {
		if _, err := c.Cmd("SELECT INBOX"); err != nil {
			return err
		}
		for have := distinct; have < n; {
			k := min(have, n-have)
			if _, err := c.Cmd("COPY 1:%d INBOX", k); err != nil {
				return err
			}
			have += k
		}
		return nil
	})
	if err != nil {
		b.Fatalf("seed %s: %v", user, err)
	}
	if st := p.Master.Status(b, user, "INBOX"); int(st.Messages) != n {
		b.Fatalf("seed %s: INBOX holds %d messages, want %d", user, st.Messages, n)
	}
}

func walls(rs []fleetRun) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = r.wall.Seconds()
	}
	return out
}

func onePassReport(b *testing.B, res onePassResult) {
	var ratio, shost, omcpu, scpu, ocpu, swire, owire, omaster []float64
	for k := range res.stock {
		s, o := res.stock[k], res.ours[k]
		ratio = append(ratio, o.wall.Seconds()/s.wall.Seconds())
		shost = append(shost, (s.masterCPU + s.cpu).Seconds()) // sync_client runs on the master
		omcpu = append(omcpu, o.masterCPU.Seconds())
		scpu = append(scpu, s.cpu.Seconds())
		ocpu = append(ocpu, o.cpu.Seconds())
		swire = append(swire, float64(s.wireBytes))
		owire = append(owire, float64(o.wireBytes))
		omaster = append(omaster, float64(o.masterRead))
	}
	st, ou, rs := spreadOf(walls(res.stock)), spreadOf(walls(res.ours)), spreadOf(ratio)
	fmt.Printf("one-message pass into %6d | per pass s: stock %s ours %s | ratio ours/stock per pass %s | master-host CPU s per update: stock %s (sync_client + master's servers) ours %s (master's sync_server) | client CPU s: stock %s ours %s | wire bytes per update to/from the replica: stock %s ours %s, ours from the master %s | load %s\n",
		res.size, st, ou, rs, spreadOf(shost), spreadOf(omcpu), spreadOf(scpu), spreadOf(ocpu),
		spreadOf(swire).format("%.0f"), spreadOf(owire).format("%.0f"), spreadOf(omaster).format("%.0f"), loadavg.String())
	// Where our time went, summed over the passes.
	sum := fleetRun{}
	idx := map[string]int{}
	for _, o := range res.ours {
		sum.escalated += o.escalated
		for _, c := range o.csync {
			k := c.End + " " + c.Command
			if i, ok := idx[k]; ok {
				sum.csync[i].Count += c.Count
				sum.csync[i].Seconds += c.Seconds
				continue
			}
			idx[k] = len(sum.csync)
			sum.csync = append(sum.csync, c)
		}
	}
	printCsyncStats(fmt.Sprintf("ours, %d passes into %d", len(res.ours), res.size), sum)
	tag := strconv.Itoa(res.size)
	b.ReportMetric(rs.median, "ratio-"+tag)
	b.ReportMetric(ou.median, "ours-s-"+tag)
	b.ReportMetric(st.median, "stock-s-"+tag)
}

// onePassFlatness prints our median per-pass time at the largest size over the
// smallest: the target is at most 1.5.
func onePassFlatness(b *testing.B, results []onePassResult) {
	if len(results) < 2 {
		return
	}
	lo, hi := results[0], results[len(results)-1]
	f := spreadOf(walls(hi.ours)).median / spreadOf(walls(lo.ours)).median
	fs := spreadOf(walls(hi.stock)).median / spreadOf(walls(lo.stock)).median
	verdict := "met"
	if f > 1.5 {
		verdict = "NOT met"
	}
	fmt.Printf("one-message passes: ours per pass at %d / at %d = %.2f× (target ≤ 1.5×: %s); stock %.2f×\n",
		hi.size, lo.size, f, verdict, fs)
	b.ReportMetric(f, "ours-growth")
}
