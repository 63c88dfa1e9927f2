package bench

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Peak RSS of a child, from its own /proc/<pid>/status VmHWM, polled while it runs.
//
// Why not rusage.Maxrss from wait4: Go starts children with vfork semantics, and Linux
// folds the high-water RSS of the mm the child leaves at exec — the benchmark process's
// own — into the child's maxrss. rusage then reports max(benchmark, child), which is why
// two different programs can show the same figure. VmHWM belongs to the child's own mm.
// It only grows, so the last sample before exit is the peak, short of growth in the final
// poll interval. Descendants still in the tree count too (the figure is the largest single
// process). A child that detaches would be re-parented away and not seen, which is why
// stock sync_client is never run with a bare -r (it forks its worker and the parent exits
// 0 at once): the benchmarks run it in the foreground (-R -f FILE, -u, -A).

type hwmPoller struct {
	peak atomic.Int64 // KiB
	done chan struct{}
	wait chan struct{}
}

func pollHWM(pid int) *hwmPoller {
	p := &hwmPoller{done: make(chan struct{}), wait: make(chan struct{})}
	go func() {
		defer close(p.wait)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			for _, q := range tree(pid) {
				if kb := vmHWM(q); kb > p.peak.Load() {
					p.peak.Store(kb)
				}
			}
			select {
			case <-p.done:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// Stop ends polling (call it when the child has exited) and returns the peak in KiB.
func (p *hwmPoller) Stop() int64 {
	close(p.done)
	<-p.wait
	return p.peak.Load()
}

func vmHWM(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// tree lists pid and its descendants (from /proc/<pid>/task/*/children).
func tree(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(out[i]) + "/task")
		for _, t := range tasks {
			data, err := os.ReadFile("/proc/" + strconv.Itoa(out[i]) + "/task/" + t.Name() + "/children")
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(data)) {
				if c, err := strconv.Atoi(f); err == nil {
					out = append(out, c)
				}
			}
		}
	}
	return out
}
