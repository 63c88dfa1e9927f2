package main

import (
	"context"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/replication"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/setupcheck"
)

// checkWatch keeps two checks of a running rolling replicator current, recording a
// check whenever its status changes:
//   - sync-log, asked again every --setup-recheck (a minute): the master's settings
//     may change under a running replicator (a failed check then shows the pair
//     stalled, with the setting);
//   - channel-silence (setupcheck.ChannelSilence), from the channel's and the master's
//     file times every quarter of --channel-silence: read on the master's disk (the
//     channel directory and the configdirectory of --master-config), or, with --agent,
//     as the agent's /v1/config serves them (channelLastWrite, masterLastChange: the
//     same setupcheck functions on the same files).
type checkWatch struct {
	c               *commonFlags
	logDir, channel string
	configDir       string // the master's configdirectory on this disk (without --agent)
	// silenceOn: the silence check runs (--channel-silence > 0, and --agent or a
	// readable --master-config).
	silenceOn           bool
	silence, every      time.Duration
	syncLogEvery        time.Duration
	rec                 *replication.Recorder
	out                 *jsonLines
	lastSilence, lastSL report.CheckStatus
}

func (c *commonFlags) newCheckWatch(rec *replication.Recorder, out *jsonLines, logDir, channel string, silence, recheck time.Duration) *checkWatch {
	recheck = max(recheck, 100*time.Millisecond)
	w := &checkWatch{c: c, logDir: logDir, channel: channel, silence: silence, syncLogEvery: recheck, every: min(recheck, time.Minute), rec: rec, out: out}
	if chk := rec.Check(report.CheckSyncLog); chk != nil {
		w.lastSL = chk.Status
	}
	if w.channel == "" {
		w.channel, _ = setupcheck.ChannelFromDir(logDir)
	}
	if silence > 0 && c.agent.client == nil && c.masterConfig != "" {
		if cfg, err := setupcheck.ReadMasterConfig(c.masterConfig); err == nil {
			w.configDir, w.silenceOn = cfg.ConfigDirectory, cfg.ConfigDirectory != ""
		}
	}
	if silence > 0 && c.agent.client != nil {
		w.silenceOn = true
	}
	if w.silenceOn {
		// Look often enough that silence is noticed within about a quarter of it.
		w.every = min(max(silence/4, 100*time.Millisecond), w.every)
	}
	return w
}

// run looks until ctx ends.
func (w *checkWatch) run(ctx context.Context) {
	var seen time.Time // the master's last change at the previous look, judged at the next
	if w.silenceOn {
		_, seen, _ = w.times(ctx)
	}
	nextSL := time.Now().Add(w.syncLogEvery)
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if w.silenceOn {
			if channel, master, ok := w.times(ctx); ok {
				w.record(&w.lastSilence, setupcheck.ChannelSilence(w.channel, channel, seen, w.silence))
				seen = master
			}
		}
		if time.Now().After(nextSL) {
			w.record(&w.lastSL, w.c.syncLogCheck(ctx, w.logDir, w.channel))
			nextSL = time.Now().Add(w.syncLogEvery)
		}
	}
}

// times returns when the channel and the master last changed, from the master's disk
// or from the agent; !ok when the agent did not answer (the look is skipped).
func (w *checkWatch) times(ctx context.Context) (channel, master time.Time, ok bool) {
	if w.c.agent.client == nil {
		return setupcheck.ChannelLastChange(w.logDir), setupcheck.MasterLastChange(w.configDir), true
	}
	cfg, err := w.c.agent.settings(ctx)
	if err != nil {
		return time.Time{}, time.Time{}, false
	}
	w.channel = cfg.Channel // the channel the agent serves is the one consumed
	return agentTime(cfg.ChannelLastWrite), agentTime(cfg.MasterLastChange), true
}

// agentTime parses a file time the agent serves; "" (no such file, or an agent older
// than the field) and anything unparsable are the zero time.
func agentTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// record records chk when its status differs from *last.
func (w *checkWatch) record(last *report.CheckStatus, chk report.Check) {
	if chk.Status == *last {
		return
	}
	*last = chk.Status
	recordCheck(w.rec, w.out, chk)
}
