package kubectlplugin

import (
	"fmt"
	"io"
	"time"

	replv1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/progress"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// ProgressOf turns a status.progress into the figures the replicator's own bar draws:
// the time the pass has run is from started to updated, the time left from now to the
// ETA (unknown without one).
func ProgressOf(ps *replv1.ProgressStatus, now time.Time) report.Progress {
	p := report.Progress{
		Done: int(ps.UsersDone), Total: int(ps.UsersTotal), Failed: int(ps.UsersFailed),
		Bodies: ps.Bodies, Bytes: ps.Bytes, Finished: ps.Finished, ETAMS: -1,
	}
	if ps.Started != nil {
		p.Started = ps.Started.Time
		if ps.Updated != nil {
			p.ElapsedMS = max(ps.Updated.Sub(ps.Started.Time).Milliseconds(), 0)
		}
	}
	switch {
	case ps.Finished || p.Done >= p.Total:
		p.ETAMS = 0
	case ps.ETA != nil:
		p.ETAMS = max(ps.ETA.Sub(now).Milliseconds(), 0)
	}
	return p
}

// ProgressBar renders a status.progress as one line: the bar, users done of the users
// to do, failures, bytes uploaded and their rate, and the time left.
func ProgressBar(ps *replv1.ProgressStatus, now time.Time) string {
	return progress.Bar(ProgressOf(ps, now), progress.BarWidth)
}

// clock is the time the bars are drawn at (tests set it).
var clock = time.Now

// barLine shows a resync's progress while `resync --wait` follows it: on a terminal
// one line redrawn in place, elsewhere a "progress:" line each time more users are done.
type barLine struct {
	w     io.Writer
	tty   bool
	drawn bool // a bar is on the terminal's current line
	last  int32
	fin   bool
}

func newBarLine(w io.Writer) *barLine { return &barLine{w: w, tty: progress.IsTerminal(w), last: -1} }

// show draws ps (nil: nothing reported yet).
func (b *barLine) show(ps *replv1.ProgressStatus) {
	if ps == nil {
		return
	}
	bar := ProgressBar(ps, clock())
	if b.tty {
		fmt.Fprintf(b.w, "\r%s\x1b[K", bar)
		b.drawn = true
		return
	}
	if ps.UsersDone != b.last || ps.Finished != b.fin {
		fmt.Fprintf(b.w, "progress: %s\n", bar)
		b.last, b.fin = ps.UsersDone, ps.Finished
	}
}

// end ends a bar drawn in place, so that the next line starts on a line of its own.
func (b *barLine) end() {
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}
