package synclog

import (
	"bytes"
	"io"
	"os"
	"time"
)

// Pending is what of a sync-log channel waits to be replicated.
type Pending struct {
	// Entries counts the lines of log and log-run (one line is one sync-log entry).
	Entries int
	// Since is when the oldest of them was first seen (see PendingTracker); zero when
	// nothing waits.
	Since time.Time
}

// PendingTracker dates the oldest entry of a channel that is not replicated yet. Cyrus
// writes no timestamps into the sync log, so the age of an entry is estimated: a file
// (log, or log-run once renamed) is dated the first time the tracker sees it, by its
// modification time then — the time of the last append before that look, so at most
// one look interval after the file's first entry. A log renamed to log-run keeps the
// date of the log it was. A log-run left by an earlier process is dated by its
// modification time (an underestimate of its age: it is the time of its last append).
// The zero value is ready to use; not safe for concurrent use.
type PendingTracker struct {
	log, run pendingFile
}

type pendingFile struct {
	info  os.FileInfo // nil when absent
	since time.Time
}

// Observe looks at the channel directory and returns what waits in it.
func (t *PendingTracker) Observe(l *Dir) Pending {
	prevLog, prevRun := t.log, t.run
	t.run = dateFile(l.runPath(), prevRun, prevLog)
	t.log = dateFile(l.logPath(), prevLog, pendingFile{})
	p := Pending{Entries: countLines(l.runPath()) + countLines(l.logPath())}
	for _, f := range []pendingFile{t.run, t.log} {
		if f.info != nil && (p.Since.IsZero() || f.since.Before(p.Since)) {
			p.Since = f.since
		}
	}
	if p.Entries == 0 {
		p.Since = time.Time{}
	}
	return p
}

// dateFile dates the file at path: the date of same (the same file seen before) or of
// renamedFrom (the file it was before a rename), else its modification time. An empty
// file holds no entry and is not dated.
func dateFile(path string, same, renamedFrom pendingFile) pendingFile {
	fi, err := os.Stat(path)
	if err != nil || fi.Size() == 0 {
		return pendingFile{}
	}
	switch {
	case same.info != nil && os.SameFile(same.info, fi):
		return pendingFile{info: fi, since: same.since}
	case renamedFrom.info != nil && os.SameFile(renamedFrom.info, fi):
		return pendingFile{info: fi, since: renamedFrom.since}
	}
	return pendingFile{info: fi, since: fi.ModTime().UTC()}
}

// countLines counts the entries of a sync-log file: its lines, a last line without a
// newline included. A missing file counts 0.
func countLines(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	n, last := 0, byte('\n')
	for {
		k, err := f.Read(buf)
		if k > 0 {
			n += bytes.Count(buf[:k], []byte{'\n'})
			last = buf[k-1]
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return n
		}
	}
	if last != '\n' {
		n++
	}
	return n
}
