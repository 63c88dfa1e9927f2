package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/agentclient"
	"github.com/cyrusrepl/cyrusrepl/internal/replication"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/state"
	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
)

func init() {
	register("rolling", command{
		summary: "consume the master's sync-log channel and replicate continuously (like sync_client -r)",
		run:     runRolling,
	})
}

// rollingFlags are the command line of `replicator rolling`.
type rollingFlags struct {
	c                                                  commonFlags
	logDir, channelName, seedMode, masterIMAP, metrics string
	interval, retryBase, retryMax, heartbeat           time.Duration
	silence, recheck                                   time.Duration
	once                                               bool
}

// parse reads and checks the command line. flag.ErrHelp means -h was asked for.
func (f *rollingFlags) parse(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("rolling", flag.ContinueOnError)
	f.c.holdUnmarked = true // never a tombstone alone on an unmarked folder (no-mark)
	f.c.bind(fs)
	fs.StringVar(&f.logDir, "sync-log", "", "the master's sync-log channel directory (<configdir>/sync/<channel>); read-write")
	fs.DurationVar(&f.interval, "interval", time.Second, "pause between cycles when the log is empty (like sync_repeat_interval)")
	fs.BoolVar(&f.once, "once", false, "run one cycle (the pending log and due retries), then exit")
	fs.StringVar(&f.metrics, "metrics-addr", "", "serve Prometheus metrics on this address (e.g. 127.0.0.1:9090)")
	fs.DurationVar(&f.retryBase, "retry-base", 5*time.Second, "first backoff of a failing user (doubles per failure)")
	fs.DurationVar(&f.heartbeat, "report-heartbeat", time.Minute, "publish the report at least this often; otherwise only when something changed")
	fs.DurationVar(&f.retryMax, "retry-max", 10*time.Minute, "longest backoff of a failing user")
	fs.DurationVar(&f.silence, "channel-silence", time.Hour, "warn (check channel-silence) when the master's mailboxes.db or deliver.db changed more than this long after the channel was last written; needs --master-config; 0 turns it off")
	fs.DurationVar(&f.recheck, "setup-recheck", time.Minute, "ask the master's sync-log settings again this often while running (the sync-log check)")
	fs.StringVar(&f.channelName, "sync-log-channel", "", `the channel's name in the master's sync_log_channels ("" spelled as two double quotes for the unnamed channel); default: from --sync-log's path (<configdirectory>/sync/NAME)`)
	fs.StringVar(&f.seedMode, "seed", seedOff, "auto: before consuming the log, one full sync of every master user (seeding) when this state directory has no completed seed and began empty or the replica holds none of the master's users; the pass resumes where it stopped after a restart and never runs again once complete. off: never. The users are listed from --master-config or --master-imap")
	fs.StringVar(&f.masterIMAP, "master-imap", "", "the master's IMAP HOST:PORT, to list its users for seeding (LIST as the --master-user admin) when there is no --master-config")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	switch {
	case f.logDir != "" && f.c.agent.url != "":
		return usageErrorf("--sync-log and --agent exclude each other: with --agent the sync log comes from the agent")
	case f.logDir == "" && f.c.agent.url == "":
		return usageErrorf("--sync-log or --agent is required")
	case f.seedMode != seedAuto && f.seedMode != seedOff:
		return usageError{errSeedMode}
	}
	// Running on, rolling waits for an agent that does not answer; --once does not.
	f.c.deferAgentSettings = f.c.agent.url != "" && !f.once
	return nil
}

func runRolling(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	var f rollingFlags
	if err := f.parse(args, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, nil
		}
		return exitUsage, err
	}
	c := &f.c
	connect, sink, err := c.open(ctx)
	if err != nil {
		return exitUsage, err
	}
	retry, err := state.OpenRetryQueue(c.stateDir)
	if err != nil {
		return exitUsage, usageError{err}
	}
	retry.Base, retry.Max = f.retryBase, f.retryMax
	source, pending, err := f.work()
	if err != nil {
		return exitUsage, usageError{err}
	}
	pub := &publishGate{heartbeat: f.heartbeat}
	out := &jsonLines{w: stdout}
	rec := c.recorder("rolling", out)
	stopMetrics, err := serveMetrics(ctx, f.metrics, rec, &c.stats)
	if err != nil {
		return exitUsage, err
	}
	defer stopMetrics()
	publish := func(ctx context.Context, s *report.Summary) {
		if err := sink.Publish(context.WithoutCancel(ctx), s); err != nil {
			fmt.Fprintf(stderr, "replicator rolling: publish report: %v\n", err)
		}
	}
	var health *agentHealth
	if c.agent.client != nil {
		health = &agentHealth{rec: rec, out: out}
	}
	if c.deferAgentSettings && !waitForAgentSettings(ctx, c, health, func(ctx context.Context) { publish(ctx, rec.Summary(nil)) }) {
		return exitOK, nil // ended while waiting
	}
	// The master's settings are known now (from --master-config or the agent).
	if err := c.refuseUnwrittenChannel(ctx, rec, out, sink, f.logDir, f.channelName); err != nil {
		return exitUsage, err
	}
	if !f.once {
		wctx, stopWatch := context.WithCancel(ctx)
		defer stopWatch()
		go c.newCheckWatch(rec, out, f.logDir, f.channelName, f.silence, f.recheck).run(wctx)
	}
	roll := &replication.Rolling{
		Log:   source,
		Retry: retry, Pending: pending, Interval: f.interval, Emit: out.emit,
		Runner: &replication.Runner{Connect: connect, Workers: c.workers, BatchTimeout: c.batchTimeout,
			Attempts: 1, Policy: c.replicaOnlyPolicy, Rec: rec, Emit: out.emit},
		Publish: func(ctx context.Context) {
			if s := rec.Summary(nil); pub.due(s, time.Now()) {
				publish(ctx, s)
			}
		},
	}
	if health != nil {
		roll.OnTake = health.taken
	}
	if f.seedMode == seedAuto {
		lister, err := c.masterUsers(f.masterIMAP)
		if err != nil {
			return exitUsage, err
		}
		sd := &seeder{c: c, users: lister, connect: connect, retry: retry, rec: rec, out: out, stderr: stderr,
			publish: roll.Publish, now: func() time.Time { return time.Now().UTC() }}
		if err := sd.run(ctx); err != nil {
			return exitFailed, err
		}
	}
	if f.once {
		return f.runOnce(ctx, roll, out)
	}
	err = roll.Run(ctx)
	out.emit(c.stats.line())
	fin := time.Now().UTC()
	_ = sink.Publish(context.WithoutCancel(ctx), rec.Summary(&fin))
	return exitOK, err
}

// runOnce is --once: one cycle, failed while anything taken is left to retry.
func (f *rollingFlags) runOnce(ctx context.Context, roll *replication.Rolling, out *jsonLines) (int, error) {
	err := roll.Cycle(ctx)
	out.emit(f.c.stats.line())
	if err != nil && !errors.Is(err, synclog.ErrNoLog) {
		return exitFailed, err
	}
	if roll.Retry.Len() > 0 || roll.Pending.Len() > 0 {
		return exitFailed, nil
	}
	return exitOK, nil
}

// work is where rolling takes its work from (the channel, or the agent's lease) and the
// queue that keeps what was taken and not yet replicated: beside the log, or with an
// agent in the state directory (the lease is acknowledged once it is saved there).
func (f *rollingFlags) work() (synclog.Source, *state.PendingQueue, error) {
	var source synclog.Source
	var pendingDir string
	if cl := f.c.agent.client; cl != nil {
		source, pendingDir = cl, filepath.Join(f.c.stateDir, "log-pending")
		if f.once {
			source = cl.WithoutWait() // one pass: what is pending now
		}
	} else {
		channel := synclog.NewDir(f.logDir)
		source, pendingDir = channel, channel.PendingPath()
	}
	pending, err := state.OpenPendingQueue(pendingDir)
	return source, pending, err
}

// waitForAgentSettings asks the agent for the master's settings until it answers, with
// a capped exponential backoff, recording every failure in the report; nothing is
// taken from the channel meanwhile. False when ctx ended first.
func waitForAgentSettings(ctx context.Context, c *commonFlags, health *agentHealth, publish func(context.Context)) bool {
	backoff := time.Second
	for {
		cfg, err := c.agent.settings(ctx)
		if err == nil {
			health.answered()
			if err = applyAgentSettings(cfg, c.deletedPrefix); err == nil {
				return true
			}
		}
		if ctx.Err() != nil {
			return false
		}
		health.rec.SetError(err, time.Now().UTC())
		if agentclient.ProblemOf(err) != "" {
			health.failed(err, backoff)
		} else {
			health.out.emit(agentWaitRecord{Type: "agent-unavailable", Error: err.Error(), RetryIn: backoff.String()})
		}
		publish(ctx)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, replication.MaxTakeBackoff)
	}
}

// publishGate publishes a summary only when it changed (timestamps aside) or when the
// heartbeat is due, so that a quiet pair does not rewrite its report every second.
type publishGate struct {
	heartbeat time.Duration
	last      string
	at        time.Time
}

func (g *publishGate) due(s *report.Summary, now time.Time) bool {
	c := *s
	c.Updated = time.Time{}
	if c.LastBatch != nil {
		b := *c.LastBatch
		b.Time, b.DurationMS = time.Time{}, 0
		c.LastBatch = &b
	}
	fp, _ := json.Marshal(c)
	if string(fp) == g.last && now.Sub(g.at) < g.heartbeat {
		return false
	}
	g.last, g.at = string(fp), now
	return true
}
