package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/replication"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

func init() {
	register("sync", command{
		summary: "full sync of the named users, then exit (0: all equal, 1: some failed or differ)",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
			return runUsers(ctx, "sync", false, args, stdout, stderr)
		},
	})
}

// runUsers is sync and verify: every named user is its own job (a cross-user rename
// pulls the other user in), on --workers workers, a failing user retried with backoff.
func runUsers(ctx context.Context, mode string, verify bool, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	var c commonFlags
	var users userList
	// A resync waits for the rolling replicator's batch of a user rather than fail it.
	c.writerWait = 10 * time.Minute
	c.bind(fs)
	fs.Var(&users, "user", "user to "+mode+" (repeatable, or comma-separated)")
	attempts := fs.Int("attempts", 3, "attempts per user before it is reported failed")
	deleteUnmarked := fs.Bool("delete-unmarked", false, "let a tombstone (or the ledger) alone decide about replica folders whose in-step state is unknown (state new or lost): delete them instead of keeping them (keep/no-mark); mail written on the replica in them since is lost")
	if err := parseFlags(fs, args, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, nil
		}
		return exitUsage, err
	}
	if len(users) == 0 {
		return exitUsage, usageErrorf("no --user given")
	}
	c.holdUnmarked = !*deleteUnmarked
	connect, sink, err := c.open(ctx)
	if err != nil {
		return exitUsage, err
	}
	out := &jsonLines{w: stdout}
	rec := c.recorder(mode, out)
	r := &replication.Runner{
		Connect: connect, Workers: c.workers, BatchTimeout: c.batchTimeout,
		Attempts: *attempts, Policy: c.replicaOnlyPolicy, Rec: rec, Emit: out.emit,
		Backoff: func(n int) time.Duration { return time.Duration(1<<min(n-1, 6)) * time.Second },
	}
	jobs := make([]replication.Job, len(users))
	for i, u := range users {
		jobs[i] = replication.Job{Users: []string{u}, Verify: verify}
	}
	// While it runs, the report is published with its progress (a resync's status shows it).
	pass := c.progress.startPass(len(jobs), out, rec, stderr, func(ctx context.Context) {
		if err := sink.Publish(ctx, rec.Summary(nil)); err != nil {
			fmt.Fprintf(stderr, "replicator %s: publish report: %v\n", mode, err)
		}
	})
	runPass(ctx, r, jobs, pass, nil)
	pass.stop()
	out.emit(c.stats.line())
	fin := time.Now().UTC()
	sum := rec.Summary(&fin)
	if err := sink.Publish(context.WithoutCancel(ctx), sum); err != nil {
		return exitFailed, err
	}
	outcomes := rec.Outcomes()
	for _, u := range users {
		switch outcomes[u].Outcome {
		case report.OutcomeSynced, report.OutcomeEqual:
		default:
			return exitFailed, nil
		}
	}
	if ctx.Err() != nil {
		return exitFailed, ctx.Err()
	}
	return exitOK, nil
}
