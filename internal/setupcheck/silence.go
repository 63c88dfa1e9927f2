package setupcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// Channel silence: a master whose mailboxes keep changing while the channel the
// replicator consumes stays unwritten is, most likely, no longer logging to it (its
// imapd.conf was changed and Cyrus restarted under a running replicator, a service
// overrides sync_log). Nothing in csync says so; only the files do.

// ChannelSilence judges one look. lastChannel is when the channel last changed (zero:
// never seen written); masterChanged is when the master last changed its databases,
// as seen at the previous look — at least one look interval ago, so a channel write of
// the same change has landed since. Silent when that change came more than silence
// after the channel's last write.
func ChannelSilence(channel string, lastChannel, masterChanged time.Time, silence time.Duration) report.Check {
	chk := report.Check{Name: report.CheckChannelSilence, Status: report.CheckOK}
	if channel == "" {
		channel = UnnamedChannel
	}
	switch {
	case masterChanged.IsZero():
		chk.Message = fmt.Sprintf("channel %s: no change of the master seen yet", channel)
	case lastChannel.IsZero():
		chk.Status, chk.Reason = report.CheckWarning, report.ReasonChannelSilent
		chk.Message = fmt.Sprintf("the master changed at %s but channel %s has never been written: its changes are not logged there; check sync_log and sync_log_channels in the master's imapd.conf (and restart Cyrus after a change)",
			masterChanged.UTC().Format(time.RFC3339), channel)
	case masterChanged.Sub(lastChannel) >= silence:
		chk.Status, chk.Reason = report.CheckWarning, report.ReasonChannelSilent
		chk.Message = fmt.Sprintf("the master changed at %s but channel %s was last written at %s, %s earlier (more than %s): its changes are probably not logged there; check sync_log and sync_log_channels in the master's imapd.conf (and restart Cyrus after a change)",
			masterChanged.UTC().Format(time.RFC3339), channel, lastChannel.UTC().Format(time.RFC3339), masterChanged.Sub(lastChannel).Round(time.Second), silence)
	default:
		chk.Message = fmt.Sprintf("channel %s is written as the master changes (last written %s)", channel, lastChannel.UTC().Format(time.RFC3339))
	}
	return chk
}

// ChannelLastChange is the latest modification time of the channel directory itself (a
// log created, taken or removed), its log and its log-run: it moves only when Cyrus
// writes the channel or a reader takes what Cyrus wrote. Zero when none exists.
func ChannelLastChange(dir string) time.Time {
	return latestMtime(dir, filepath.Join(dir, "log"), filepath.Join(dir, "log-run"))
}

// MasterLastChange is the latest modification time of the master's mailboxes.db (a
// folder created, renamed, deleted) and deliver.db (a delivery, with Cyrus's default
// duplicate suppression) in its configdirectory. Zero when neither exists.
func MasterLastChange(configDir string) time.Time {
	return latestMtime(filepath.Join(configDir, "mailboxes.db"), filepath.Join(configDir, "deliver.db"))
}

func latestMtime(paths ...string) time.Time {
	var t time.Time
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && st.ModTime().After(t) {
			t = st.ModTime()
		}
	}
	return t
}
