package main

import (
	"context"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/replication"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/setupcheck"
)

// silenceWatch looks at the channel and the master's databases every interval and keeps
// the channel-silence check current (setupcheck.ChannelSilence). Local files only: it
// needs the channel directory and the master's configdirectory (--master-config).
type silenceWatch struct {
	channel    string // as sync_log_channels spells it
	channelDir string
	configDir  string
	silence    time.Duration
	every      time.Duration
	rec        *replication.Recorder
	out        *jsonLines
}

// newSilenceWatch returns nil when the check cannot or need not run.
func (c *commonFlags) newSilenceWatch(rec *replication.Recorder, out *jsonLines, logDir, channel string, silence time.Duration) *silenceWatch {
	if silence <= 0 || c.masterConfig == "" {
		return nil
	}
	cfg, err := setupcheck.ReadMasterConfig(c.masterConfig)
	if err != nil || cfg.ConfigDirectory == "" {
		return nil
	}
	if channel == "" {
		channel, _ = setupcheck.ChannelFromDir(logDir)
	}
	// Look often enough that silence is noticed within about a quarter of it.
	every := min(max(silence/4, 100*time.Millisecond), time.Minute)
	return &silenceWatch{channel: channel, channelDir: logDir, configDir: cfg.ConfigDirectory,
		silence: silence, every: every, rec: rec, out: out}
}

// run looks until ctx ends, recording the check whenever its status changes.
func (w *silenceWatch) run(ctx context.Context) {
	seen := setupcheck.MasterLastChange(w.configDir) // judged at the next look
	var last report.CheckStatus
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		chk := setupcheck.ChannelSilence(w.channel, setupcheck.ChannelLastChange(w.channelDir), seen, w.silence)
		if chk.Status != last {
			recordCheck(w.rec, w.out, chk)
			last = chk.Status
		}
		seen = setupcheck.MasterLastChange(w.configDir)
	}
}
