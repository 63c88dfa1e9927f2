package progress

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

func TestETA(t *testing.T) {
	for _, c := range []struct {
		done, total, resumed int
		elapsed, want        int64
	}{
		{0, 10, 0, 5000, -1},    // nothing done yet: unknown
		{10, 10, 0, 5000, 0},    // all done
		{0, 0, 0, 0, 0},         // nothing to do
		{2, 10, 0, 4000, 16000}, // 2 s a user, 8 left
		{6, 10, 4, 4000, 8000},  // resumed 4: this run did 2 in 4 s, 4 left
		{4, 10, 4, 60000, -1},   // resumed only: this run's pace unknown
		{12, 10, 0, 1000, 0},    // more done than asked (a joined user): done
	} {
		if got := ETA(c.done, c.total, c.resumed, c.elapsed); got != c.want {
			t.Errorf("ETA(%d, %d, %d, %d) = %d, want %d", c.done, c.total, c.resumed, c.elapsed, got, c.want)
		}
	}
}

func TestTrackerSnapshot(t *testing.T) {
	now := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
	clock := now
	tr := NewTracker(10, func() time.Time { return clock })
	tr.Resumed(2)
	tr.Done(2, 1)
	tr.Moved(3, 3000)
	tr.Moved(0, 500)
	clock = now.Add(4 * time.Second)
	got := tr.Snapshot()
	want := report.Progress{Started: now, Done: 4, Total: 10, Failed: 1, Bodies: 3, Bytes: 3500, ElapsedMS: 4000, ETAMS: 12000}
	if got != want {
		t.Fatalf("snapshot %+v, want %+v", got, want)
	}
	if l := LineOf(got); l.Type != "progress" || l.Done != 4 || l.ETAMS != 12000 || l.Bytes != 3500 {
		t.Fatalf("line %+v", l)
	}
}

// The reporter ticks while the pass runs and hands a last snapshot, marked finished,
// exactly once.
func TestReporterTicksAndFinal(t *testing.T) {
	tr := NewTracker(3, nil)
	var mu sync.Mutex
	var got []report.Progress
	r := Start(tr, 10*time.Millisecond, func(p report.Progress) {
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
	})
	deadline := time.Now().Add(5 * time.Second) // hang guard
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	tr.Done(3, 0)
	final := r.Stop()
	again := r.Stop()
	mu.Lock()
	defer mu.Unlock()
	if len(got) < 4 {
		t.Fatalf("%d snapshots, want at least 3 ticks and the final one", len(got))
	}
	last := got[len(got)-1]
	if !last.Finished || last != final || again != final || last.Done != 3 || last.ETAMS != 0 {
		t.Fatalf("final %+v, last handed %+v, second Stop %+v", final, last, again)
	}
	for _, p := range got[:len(got)-1] {
		if p.Finished {
			t.Fatalf("a tick before Stop is marked finished: %+v", p)
		}
	}
}

func TestBar(t *testing.T) {
	for _, c := range []struct {
		p    report.Progress
		want string
	}{
		{report.Progress{Done: 0, Total: 1000, ETAMS: -1},
			"[..........]   0% 0/1000 users, 0 B, ETA unknown"},
		{report.Progress{Done: 310, Total: 1000, Failed: 2, Bytes: 13002342, ElapsedMS: 11000, ETAMS: 155000},
			"[###.......]  31% 310/1000 users, 2 failed, 12.4 MiB at 1.1 MiB/s, ETA 2m35s"},
		{report.Progress{Done: 1000, Total: 1000, Bytes: 3 << 30, ElapsedMS: 300000, Finished: true},
			"[##########] 100% 1000/1000 users, 3.0 GiB at 10.2 MiB/s, took 5m0s"},
		{report.Progress{Done: 0, Total: 0, Finished: true},
			"[##########] 100% 0/0 users, 0 B, took 0s"},
	} {
		if got := Bar(c.p, 10); got != c.want {
			t.Errorf("Bar(%+v)\n got %q\nwant %q", c.p, got, c.want)
		}
	}
}

func TestTTYDraw(t *testing.T) {
	var b strings.Builder
	tty := TTY{W: &b}
	tty.Draw(report.Progress{Done: 1, Total: 2, ElapsedMS: 1000, ETAMS: 1000})
	tty.Draw(report.Progress{Done: 2, Total: 2, ElapsedMS: 2000, Finished: true})
	got := b.String()
	if strings.Count(got, "\r") != 2 || strings.Count(got, "\x1b[K") != 2 || !strings.HasSuffix(got, "took 2s\x1b[K\n") || strings.Count(got, "\n") != 1 {
		t.Fatalf("drawn %q", got)
	}
	if IsTerminal(&b) {
		t.Fatal("a strings.Builder is no terminal")
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 7 << 40: "7.0 TiB", 3 << 50: "3072.0 TiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
