package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// BarWidth is the number of cells of the bar itself.
const BarWidth = 30

// Bar renders one line: the bar, users done of the users to do, failures, bytes
// uploaded and their rate, and the time left, e.g.
//
//	[#########.....................]  31% 310/1000 users, 2 failed, 12.4 MiB at 1.1 MiB/s, ETA 2m35s
func Bar(p report.Progress, width int) string {
	var b strings.Builder
	filled := 0
	pct := 100
	if p.Total > 0 {
		done := min(p.Done, p.Total)
		filled = done * width / p.Total
		pct = done * 100 / p.Total
	} else {
		filled = width
	}
	b.WriteByte('[')
	b.WriteString(strings.Repeat("#", filled))
	b.WriteString(strings.Repeat(".", width-filled))
	fmt.Fprintf(&b, "] %3d%% %d/%d users", pct, p.Done, p.Total)
	if p.Failed > 0 {
		fmt.Fprintf(&b, ", %d failed", p.Failed)
	}
	fmt.Fprintf(&b, ", %s", Bytes(p.Bytes))
	if p.ElapsedMS > 0 && p.Bytes > 0 {
		fmt.Fprintf(&b, " at %s/s", Bytes(p.Bytes*1000/p.ElapsedMS))
	}
	switch {
	case p.Finished || p.Done >= p.Total:
		fmt.Fprintf(&b, ", took %s", Duration(p.ElapsedMS))
	case p.ETAMS >= 0:
		fmt.Fprintf(&b, ", ETA %s", Duration(p.ETAMS))
	default:
		b.WriteString(", ETA unknown")
	}
	return b.String()
}

// Bytes renders a byte count with a binary unit (B, KiB, MiB, GiB, TiB).
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGT"[exp])
}

// Duration renders milliseconds to the second (to the millisecond below one second).
func Duration(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	if d < time.Second {
		return d.String()
	}
	return d.Round(time.Second).String()
}

// TTY draws the bar on one terminal line, redrawn in place; the final snapshot ends the
// line.
type TTY struct{ W io.Writer }

// Draw redraws the bar.
func (t TTY) Draw(p report.Progress) {
	end := ""
	if p.Finished {
		end = "\n"
	}
	fmt.Fprintf(t.W, "\r%s\x1b[K%s", Bar(p, BarWidth), end)
}

// IsTerminal reports whether w is a terminal (a bar is drawn only there).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
