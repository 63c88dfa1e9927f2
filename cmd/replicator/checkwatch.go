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
//     files every quarter of --channel-silence. Local files only: it needs the channel
//     directory and the master's configdirectory (--master-config); through the agent
//     it does not run (the agent serves no time of the master's own changes).
type checkWatch struct {
	c                   *commonFlags
	logDir, channel     string
	configDir           string // "" when the silence check does not run
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
	if silence > 0 && c.masterConfig != "" && c.agent.client == nil {
		if cfg, err := setupcheck.ReadMasterConfig(c.masterConfig); err == nil {
			w.configDir = cfg.ConfigDirectory
		}
		// Look often enough that silence is noticed within about a quarter of it.
		w.every = min(max(silence/4, 100*time.Millisecond), w.every)
	}
	return w
}

// run looks until ctx ends.
func (w *checkWatch) run(ctx context.Context) {
	seen := w.masterChange() // judged at the next look
	nextSL := time.Now().Add(w.syncLogEvery)
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if w.configDir != "" {
			chk := setupcheck.ChannelSilence(w.channel, setupcheck.ChannelLastChange(w.logDir), seen, w.silence)
			w.record(&w.lastSilence, chk)
			seen = w.masterChange()
		}
		if time.Now().After(nextSL) {
			w.record(&w.lastSL, w.c.syncLogCheck(ctx, w.logDir, w.channel))
			nextSL = time.Now().Add(w.syncLogEvery)
		}
	}
}

func (w *checkWatch) masterChange() time.Time {
	if w.configDir == "" {
		return time.Time{}
	}
	return setupcheck.MasterLastChange(w.configDir)
}

// record records chk when its status differs from *last.
func (w *checkWatch) record(last *report.CheckStatus, chk report.Check) {
	if chk.Status == *last {
		return
	}
	*last = chk.Status
	recordCheck(w.rec, w.out, chk)
}
