package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/replication"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

func init() {
	register("audit", command{
		summary: "walk every user and sync it, once or every --interval (like a periodic full sync)",
		run:     runAudit,
	})
}

func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	var c commonFlags
	c.holdUnmarked = true // never a tombstone alone on an unmarked folder (no-mark)
	var users userList
	c.bind(fs)
	fs.Var(&users, "user", "users to audit (repeatable); default: every user of the master, from its mailboxes.db (--master-config or --agent) or its IMAP service (--master-imap)")
	masterIMAP := fs.String("master-imap", "", "the master's IMAP HOST:PORT, to list its users (LIST as the --master-user admin) when there is no --master-config")
	interval := fs.Duration("interval", 0, "repeat the walk this often; 0 walks once and exits")
	verifyOnly := fs.Bool("verify-only", false, "compare and report only, change nothing")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus metrics on this address")
	if err := parseFlags(fs, args, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, nil
		}
		return exitUsage, err
	}
	if len(users) == 0 && c.masterConfig == "" && *masterIMAP == "" && c.agent.url == "" {
		return exitUsage, usageErrorf("give --user, or --master-config, --agent or --master-imap to list every user")
	}
	connect, sink, err := c.open(ctx)
	if err != nil {
		return exitUsage, err
	}
	lister, err := c.masterUsers(*masterIMAP)
	if err != nil {
		return exitUsage, err
	}
	out := &jsonLines{w: stdout}
	rec := c.recorder("audit", out)
	stopMetrics, err := serveMetrics(ctx, *metricsAddr, rec, &c.stats)
	if err != nil {
		return exitUsage, err
	}
	defer stopMetrics()
	r := &replication.Runner{Connect: connect, Workers: c.workers, BatchTimeout: c.batchTimeout,
		Attempts: 3, Policy: c.replicaOnlyPolicy, Rec: rec, Emit: out.emit,
		Backoff: func(n int) time.Duration { return time.Duration(1<<min(n-1, 6)) * time.Second }}
	for {
		start := time.Now().UTC()
		walk := users
		var walkErr error // the user list could not be had: a one-shot audit fails
		if len(walk) == 0 {
			if walk, walkErr = lister.list(ctx); walkErr != nil {
				rec.SetError(walkErr, time.Now().UTC())
			}
		}
		jobs := make([]replication.Job, len(walk))
		for i, u := range walk {
			jobs[i] = replication.Job{Users: []string{u}, Verify: *verifyOnly}
		}
		pass := c.progress.startPass(len(jobs), out, rec, stderr, func(ctx context.Context) {
			if err := sink.Publish(ctx, rec.Summary(nil)); err != nil {
				rec.SetError(err, time.Now().UTC())
			}
		})
		failed := runPass(ctx, r, jobs, pass, nil)
		pass.stop()
		if len(failed) == 0 && walkErr == nil && ctx.Err() == nil {
			rec.MarkSuccess(time.Now().UTC())
		}
		out.emit(c.stats.line()) // cumulative since the replicator started
		rec.SetBatch(report.Batch{Time: time.Now().UTC(), Users: len(walk), Failed: len(failed), DurationMS: time.Since(start).Milliseconds()}, nil)
		var fin *time.Time
		if *interval == 0 {
			t := time.Now().UTC()
			fin = &t
		}
		if err := sink.Publish(context.WithoutCancel(ctx), rec.Summary(fin)); err != nil {
			rec.SetError(err, time.Now().UTC())
		}
		if *interval == 0 {
			if walkErr != nil {
				return exitFailed, walkErr
			}
			for _, u := range rec.Outcomes() {
				if u.Outcome == report.OutcomeFailed || u.Outcome == report.OutcomeDiffers {
					return exitFailed, nil
				}
			}
			return exitOK, nil
		}
		select {
		case <-ctx.Done():
			return exitOK, nil
		case <-time.After(*interval):
		}
	}
}
