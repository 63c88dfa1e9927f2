package synclog

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
)

// BenchmarkSyncLogRSS measures the peak resident memory (ru_maxrss) of a child process
// that groups a one-million-line log-run into per-user work: streamed (Scanner and
// Grouper, as the replicator does) and, for comparison, read whole and parsed in memory
// (the former way). The log names 10,000 users with 5 folders each, as after a long
// replica outage. Run: go test ./internal/synclog/ -run '^$' -bench SyncLogRSS -benchtime 1x -count 5
func BenchmarkSyncLogRSS(b *testing.B) {
	path := filepath.Join(b.TempDir(), "log-run")
	writeBigLog(b, path, 1_000_000, 10_000)
	st, _ := os.Stat(path)
	for _, mode := range []string{"stream", "whole"} {
		b.Run(mode, func(b *testing.B) {
			var peaks []float64
			for range b.N {
				cmd := exec.Command(os.Args[0], "-test.run=^TestSyncLogRSSChild$")
				cmd.Env = append(os.Environ(), "CYRUSREPL_RSS_LOG="+path, "CYRUSREPL_RSS_MODE="+mode)
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("child: %v\n%s", err, out)
				}
				ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
				peaks = append(peaks, float64(ru.Maxrss)/1024) // KiB → MiB
			}
			sort.Float64s(peaks)
			b.ReportMetric(peaks[len(peaks)/2], "maxrss-MiB")
			b.ReportMetric(float64(st.Size())/(1<<20), "log-MiB")
		})
	}
}

func writeBigLog(tb testing.TB, path string, lines, users int) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := range lines {
		u := i % users
		if i%2 == 0 {
			fmt.Fprintf(w, "APPEND user.u%d\n", u)
		} else {
			fmt.Fprintf(w, "MAILBOX user.u%d.Folder%d\n", u, i/users%5)
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
}

// TestSyncLogRSSChild is the process BenchmarkSyncLogRSS measures.
func TestSyncLogRSSChild(t *testing.T) {
	path := os.Getenv("CYRUSREPL_RSS_LOG")
	if path == "" {
		t.Skip("helper for BenchmarkSyncLogRSS")
	}
	var g Grouped
	if os.Getenv("CYRUSREPL_RSS_MODE") == "whole" {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		entries, _ := parseLogWhole(data)
		g = GroupEntries(entries)
	} else {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := NewScanner(f)
		gr := NewGrouper()
		for {
			e, bad, ok := sc.Next()
			if !ok {
				break
			}
			if bad == nil {
				gr.Add(e)
			}
		}
		if sc.Err() != nil {
			t.Fatal(sc.Err())
		}
		g = gr.Batches()
	}
	if len(g.Batches) != 10_000 {
		t.Fatalf("%d batches", len(g.Batches))
	}
}
