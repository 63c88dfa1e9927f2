package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/executor"
	"github.com/cyrusrepl/cyrusrepl/internal/replication"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/setupcheck"
)

// checkLine is the JSON line of one set-up check's result.
type checkLine struct {
	Type string `json:"type"` // "check"
	report.Check
}

// recordCheck puts a set-up check's result into the report and says it.
func recordCheck(rec *replication.Recorder, out *jsonLines, chk report.Check) {
	rec.SetCheck(chk)
	out.emit(checkLine{Type: "check", Check: chk})
}

// bannersOf returns the csync greetings of an executor's two sessions ("" when a
// session does not say: a test double).
func bannersOf(x *executor.Executor) [2]string {
	type banner interface{ Capabilities() csync.Capabilities }
	var b [2]string
	if m, ok := x.Master.(banner); ok {
		b[0] = m.Capabilities().Greeting
	}
	if r, ok := x.Replica.(banner); ok {
		b[1] = r.Capabilities().Greeting
	}
	return b
}

// syncLogCheck checks that the master writes the channel the replicator consumes and
// that it may be taken. The master's settings come from the agent (--agent: its
// /v1/config names the channel it serves; taking the files is the agent's business),
// else from --master-config, the channel then named by channel or by logDir's path.
// Without either the check cannot run.
func (c *commonFlags) syncLogCheck(ctx context.Context, logDir, channel string) report.Check {
	unknown := func(msg string) report.Check {
		return report.Check{Name: report.CheckSyncLog, Status: report.CheckUnknown, Message: msg}
	}
	if c.agent.client != nil {
		cfg, err := c.agent.settings(ctx)
		if err != nil {
			return unknown(fmt.Sprintf("not checked: the agent did not answer: %v", err))
		}
		mc := setupcheck.ConfigFromAgent(cfg.SyncLog, cfg.SyncLogChannels, cfg.Partitions)
		return setupcheck.SyncLog(mc, cfg.Channel, setupcheck.DirAccess{Path: "(the agent's)", Exists: true, Writable: true})
	}
	if c.masterConfig == "" {
		return unknown("not checked: without --master-config (or --agent) the master's sync_log and sync_log_channels are not known")
	}
	cfg, err := setupcheck.ReadMasterConfig(c.masterConfig)
	if err != nil {
		return unknown(fmt.Sprintf("not checked: %v", err))
	}
	if channel == "" {
		var ok bool
		if channel, ok = setupcheck.ChannelFromDir(logDir); !ok {
			return unknown(fmt.Sprintf("not checked: the channel's name cannot be told from --sync-log %s (not <configdirectory>/sync/NAME); give --sync-log-channel", logDir))
		}
	}
	return setupcheck.SyncLog(cfg, channel, setupcheck.LookDir(logDir))
}

// refuseUnwrittenChannel runs the sync-log check before rolling consumes anything. When
// the channel can never be written (sync_log off, the channel not in
// sync_log_channels) or taken (its directory not writable), it publishes the report
// with the failed check — so the operator shows why the pod does not run — and returns
// the usage error whose one line names the setting.
func (c *commonFlags) refuseUnwrittenChannel(ctx context.Context, rec *replication.Recorder, out *jsonLines, sink report.Sink, logDir, channel string) error {
	chk := c.syncLogCheck(ctx, logDir, channel)
	recordCheck(rec, out, chk)
	if chk.Status != report.CheckFailed {
		return nil
	}
	fin := time.Now().UTC()
	rec.SetError(errors.New(chk.Message), fin)
	_ = sink.Publish(context.WithoutCancel(ctx), rec.Summary(&fin))
	return usageErrorf("%s", chk.Message)
}

// versionWatch keeps the versions check current: every session's greetings (the
// startup probe, then each worker's connection, so each audit pass and each reconnect
// of a long-running replicator) are compared, and a change is recorded and said.
type versionWatch struct {
	mu   sync.Mutex
	last [2]string
	rec  *replication.Recorder
	out  *jsonLines
}

// saw records the greetings of a new pair of sessions.
func (w *versionWatch) saw(b [2]string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if b == w.last {
		return
	}
	w.last = b
	w.recordLocked()
}

// attach starts recording into rec (and saying on out), with what was seen so far.
func (w *versionWatch) attach(rec *replication.Recorder, out *jsonLines) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rec, w.out = rec, out
	w.recordLocked()
}

func (w *versionWatch) recordLocked() {
	if w.rec == nil || w.last == ([2]string{}) {
		return
	}
	recordCheck(w.rec, w.out, setupcheck.Versions(w.last[0], w.last[1]))
}
