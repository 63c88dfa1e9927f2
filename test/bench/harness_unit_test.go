package bench

import (
	"os"
	"testing"
	"time"
)

func TestSpreadOf(t *testing.T) {
	for _, c := range []struct {
		in               []float64
		median, min, max float64
	}{
		{[]float64{3, 1, 2}, 2, 1, 3},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4},
		{[]float64{5}, 5, 5, 5},
	} {
		s := spreadOf(c.in)
		if s.median != c.median || s.min != c.min || s.max != c.max || s.n != len(c.in) {
			t.Errorf("spreadOf(%v) = %+v, want median %v min %v max %v", c.in, s, c.median, c.min, c.max)
		}
	}
}

func TestPercentileNearestRank(t *testing.T) {
	xs := make([]float64, 100)
	for i := range xs {
		xs[i] = float64(100 - i) // 100 … 1, unsorted on purpose
	}
	for p, want := range map[float64]float64{50: 50, 99: 99, 100: 100, 1: 1} {
		if got := percentile(xs, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if got := percentile([]float64{0.2, 0.9, 0.4}, 99); got != 0.9 {
		t.Errorf("p99 of 3 values = %v, want the largest", got)
	}
}

// The benchmark's own process has a /proc/<pid>/stat whose CPU fields parse.
func TestInstanceCPUReadsProcStat(t *testing.T) {
	f := procStat(os.Getpid())
	if len(f) < 17 || f[0] != "pid" || f[2] != "R" && f[2] != "S" {
		t.Fatalf("procStat fields: %q", f)
	}
	for start := time.Now(); time.Since(start) < 100*time.Millisecond; { // burn ~10 ticks of CPU
	}
	if got := instanceCPU(os.Getpid()); got < 10*time.Millisecond {
		t.Fatalf("instanceCPU of a process that just spun 100 ms = %s", got)
	}
}
