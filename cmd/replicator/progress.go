package main

import (
	"context"
	"flag"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/progress"
	"github.com/cyrusrepl/cyrusrepl/internal/replication"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// progressFlags say how often a pass over users tells how far it has come.
type progressFlags struct {
	every        time.Duration // a "progress" JSON line
	publishEvery time.Duration // the report (with its progress), while a pass runs
	// tracker is the pass running now (nil: none); the executors count the bodies and
	// bytes they upload into it.
	tracker atomic.Pointer[progress.Tracker]
}

func (p *progressFlags) bind(fs *flag.FlagSet) {
	fs.DurationVar(&p.every, "progress-interval", 2*time.Second, "while a pass over users runs, print a progress JSON line this often (and once at its end)")
	fs.DurationVar(&p.publishEvery, "report-interval", 10*time.Second, "while a pass over users runs, publish the report (with its progress) this often")
}

func (p *progressFlags) check() error {
	if p.every < 100*time.Millisecond || p.publishEvery < 100*time.Millisecond {
		return usageErrorf("--progress-interval and --report-interval must be at least 100ms")
	}
	return nil
}

// moved is Executor.Moved: bodies and bytes uploaded, counted into the running pass.
func (p *progressFlags) moved(bodies int, bytes int64) {
	if t := p.tracker.Load(); t != nil {
		t.Moved(bodies, bytes)
	}
}

// pass is one pass over users as it runs: a "progress" line on stdout every
// --progress-interval and at its end, the same figures in the report, the report
// published every --report-interval, and a one-line bar on stderr when stderr is a
// terminal.
type pass struct {
	flags   *progressFlags
	t       *progress.Tracker
	lines   *progress.Reporter
	stopPub chan struct{}
	pubWG   sync.WaitGroup
}

// startPass starts the progress of a pass over total users. publish (nil: none) sends
// the report; it is called from one goroutine at a time, never after stop returns.
func (p *progressFlags) startPass(total int, out *jsonLines, rec *replication.Recorder, stderr io.Writer, publish func(context.Context)) *pass {
	t := progress.NewTracker(total, nil)
	p.tracker.Store(t)
	var bar *progress.TTY
	if progress.IsTerminal(stderr) {
		bar = &progress.TTY{W: stderr}
	}
	each := func(s report.Progress) {
		rec.SetProgress(s) // first: a report published after the last line carries it
		out.emit(progress.LineOf(s))
		if bar != nil {
			bar.Draw(s)
		}
	}
	rec.SetProgress(t.Snapshot())
	ps := &pass{flags: p, t: t, lines: progress.Start(t, p.every, each), stopPub: make(chan struct{})}
	if publish != nil {
		ps.pubWG.Add(1)
		go ps.publishLoop(publish)
	}
	return ps
}

func (ps *pass) publishLoop(publish func(context.Context)) {
	defer ps.pubWG.Done()
	tick := time.NewTicker(ps.flags.publishEvery)
	defer tick.Stop()
	for {
		select {
		case <-ps.stopPub:
			return
		case <-tick.C:
			publish(context.Background())
		}
	}
}

// userDone counts a job's users as they end (after their last attempt).
func (ps *pass) userDone(users, failed int) { ps.t.Done(users, failed) }

// stop ends the pass: no more publishing, the final line (also in the report). It
// returns the final figures.
func (ps *pass) stop() report.Progress {
	close(ps.stopPub)
	ps.pubWG.Wait()
	final := ps.lines.Stop()
	ps.flags.tracker.CompareAndSwap(ps.t, nil)
	return final
}

// runPass runs the jobs, recording each as it ends and counting its users into the
// pass; ended (nil: nothing) is told each job's users that failed.
func runPass(ctx context.Context, r *replication.Runner, jobs []replication.Job, ps *pass, ended func(replication.JobResult, []string)) (failed []string) {
	r.RunEach(ctx, jobs, func(res replication.JobResult) {
		f := r.Record([]replication.JobResult{res})
		failed = append(failed, f...)
		ps.userDone(len(res.Job.Users), len(f))
		if ended != nil {
			ended(res, f)
		}
	})
	return failed
}
