package bench

// Shared parts of the benchmarks: stock sync_client run in the foreground with its exit
// status checked, the master instance's CPU, and the statistics over repeated runs.

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// benchRuns is how many times a measured phase is repeated (CYRUSREPL_BENCH_RUNS, at
// least 3: a single run on a shared machine says little).
func benchRuns() int { return max(3, envInt("CYRUSREPL_BENCH_RUNS", 3)) }

// stockFirst alternates which program runs first in run i, so that neither always
// finds the master's caches warmed by the other.
func stockFirst(i int) bool { return i%2 == 0 }

// settled runs one measured program after flushing what is still to be written to disk
// (sync(2)): the program that runs second would otherwise pay for the writeback of the
// first one's replica, the same handicap that alternating the order only spreads out.
func settled(run func() fleetRun) fleetRun {
	syscall.Sync()
	return run()
}

// takeStockLog moves the pending entries of a sync-log channel aside, as sync_client's
// own rolling mode does (log → log-run), and returns the file, or "" when the channel has
// nothing pending. The benchmark runs it only while nothing writes to the master, so no
// writer can still hold the old file. The file stays in the channel directory: it is
// owned by the cyrus user, who sync_client runs as.
func takeStockLog(b testing.TB, dir string, n int) string {
	b.Helper()
	src := filepath.Join(dir, "log")
	if _, err := os.Stat(src); os.IsNotExist(err) {
		return ""
	}
	dst := filepath.Join(dir, fmt.Sprintf("log-bench-%d", n))
	if err := os.Rename(src, dst); err != nil {
		b.Fatalf("take the stock channel's log: %v", err)
	}
	return dst
}

// stockRollingArgs is one foreground rolling pass of stock sync_client over a log file:
// `-R -f FILE` processes FILE and exits with the pass's status. (`-r` forks and the
// parent exits 0 at once unless -f is given; `-R -1 -o` exits 0 even when the pass
// failed: the daemon loop's status is dropped.)
func stockRollingArgs(logFile string) []string { return []string{"-R", "-f", logFile} }

var stockPasses int

// stockRollingPass replays the stock channel's pending log with sync_client in the
// foreground and fails the benchmark on a non-zero exit (measure does). conf is the
// master's imapd.conf (possibly a copy pointing the channel at a counting proxy).
func stockRollingPass(b testing.TB, m *cyruspair.Instance, conf string) fleetRun {
	b.Helper()
	stockPasses++
	f := takeStockLog(b, m.SyncLogDir("stock"), stockPasses)
	if f == "" {
		return fleetRun{users: map[string]int{}}
	}
	defer os.Remove(f)
	return measure(b, filepath.Join(cyruspair.CyrusBin, "sync_client"),
		append([]string{"-C", conf, "-n", "stock"}, stockRollingArgs(f)...)...)
}

// masterPID is the pid of the master instance's `master` process.
func masterPID(b testing.TB, in *cyruspair.Instance) int {
	b.Helper()
	data, err := os.ReadFile(filepath.Join(in.Dir, "run", "master.pid"))
	if err != nil {
		b.Fatalf("master pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		b.Fatalf("master pid: %v", err)
	}
	return pid
}

// instanceCPU is the CPU time used so far by a Cyrus instance: its `master` process and
// every live descendant (imapd, lmtpd, sync_server), plus the children master has
// already reaped (cutime + cstime of master). Deltas of it are a phase's server-side
// CPU on that instance. Resolution: one clock tick (10 ms).
func instanceCPU(pid int) time.Duration {
	var ticks int64
	for i, q := range tree(pid) {
		f := procStat(q)
		if len(f) < 17 {
			continue
		}
		last := 15 // utime, stime (fields 14 and 15, 1-based)
		if i == 0 {
			last = 17 // and cutime, cstime of master itself
		}
		for k := 13; k < last; k++ {
			n, _ := strconv.ParseInt(f[k], 10, 64)
			ticks += n
		}
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ is 100 on Linux
}

// procStat returns the fields of /proc/<pid>/stat, the command name (which may hold
// spaces) counted as one field.
func procStat(pid int) []string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return append([]string{"pid", "comm"}, strings.Fields(s[i+1:])...)
}

// spread is the median and range of repeated measurements.
type spread struct {
	median, min, max float64
	n                int
}

func spreadOf(xs []float64) spread {
	if len(xs) == 0 {
		return spread{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{median: m, min: s[0], max: s[len(s)-1], n: len(s)}
}

func (s spread) String() string { return s.format("%.3f") }

// format prints the median and range with a verb for each, e.g. "%.0f" for bytes.
func (s spread) format(verb string) string {
	return fmt.Sprintf(verb+" ("+verb+"–"+verb+", n=%d)", s.median, s.min, s.max, s.n)
}

// percentile is the p-th percentile (0–100) of xs by the nearest-rank method.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	k := int(p/100*float64(len(s)) + 0.999999)
	k = min(max(k, 1), len(s))
	return s[k-1]
}
