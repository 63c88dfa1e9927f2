package agent

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/setupcheck"
	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
)

// The agent serves sync_log_channels split as Cyrus 3.6 splits it (spaces only: a comma
// is part of a name) and the file times of the channel-silence check as the replicator
// on the master's disk computes them, the channel's surviving its log being taken.
func TestReadConfig(t *testing.T) {
	cfgDir := t.TempDir()
	conf := filepath.Join(t.TempDir(), "imapd.conf")
	write := func(path, text string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	write(conf, "configdirectory: "+cfgDir+"\nsync_log: on\nsync_log_channels: cyrusrepl,other  \"\"\n", time.Now())
	dir := ChannelDir(cfgDir, "cyrusrepl")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s := &Server{conf: conf, channel: "cyrusrepl", log: synclog.NewDir(dir)}

	c, err := s.readConfig()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"cyrusrepl,other", `""`}; !slices.Equal(c.SyncLogChannels, want) {
		t.Errorf("syncLogChannels %q, want %q (as setupcheck: %q)", c.SyncLogChannels, want, setupcheck.SplitChannels("cyrusrepl,other  \"\""))
	}
	if c.MasterLastChange != "" {
		t.Errorf("masterLastChange %q without mailboxes.db or deliver.db", c.MasterLastChange)
	}

	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	write(filepath.Join(cfgDir, "mailboxes.db"), "x", base)
	write(filepath.Join(cfgDir, "deliver.db"), "x", base.Add(time.Minute))
	log := filepath.Join(dir, "log")
	write(log, "APPEND user.alice\n", base.Add(2*time.Minute))
	if err := os.Chtimes(dir, base, base); err != nil {
		t.Fatal(err)
	}
	if c, err = s.readConfig(); err != nil {
		t.Fatal(err)
	}
	if want := base.Add(time.Minute).UTC().Format(time.RFC3339Nano); c.MasterLastChange != want {
		t.Errorf("masterLastChange %q, want deliver.db's %q", c.MasterLastChange, want)
	}
	if want := base.Add(2 * time.Minute).UTC().Format(time.RFC3339Nano); c.ChannelLastWrite != want {
		t.Errorf("channelLastWrite %q, want the log's %q", c.ChannelLastWrite, want)
	}

	// The log taken and removed: the channel's time stays (the directory's), not "".
	if err := os.Remove(log); err != nil {
		t.Fatal(err)
	}
	if c, err = s.readConfig(); err != nil {
		t.Fatal(err)
	}
	got, err := time.Parse(time.RFC3339Nano, c.ChannelLastWrite)
	if err != nil || !got.Equal(setupcheck.ChannelLastChange(dir)) || !got.After(base.Add(2*time.Minute)) {
		t.Errorf("channelLastWrite after the log was taken: %q (%v), want the directory's %v", c.ChannelLastWrite, err, setupcheck.ChannelLastChange(dir))
	}
}

// The agent parses the sync-log settings with the set-up checks' own parser: keys are
// case-insensitive, a sync_log_channels with no word is still "set" (Cyrus then writes
// no channel), a service override is named, and a sync_log that is no switch is an error,
// not "off".
func TestReadConfigSameParserAsTheChecks(t *testing.T) {
	cfgDir := t.TempDir()
	conf := filepath.Join(t.TempDir(), "imapd.conf")
	s := &Server{conf: conf, channel: "", log: synclog.NewDir(ChannelDir(cfgDir, ""))}
	read := func(text string) (setupcheck.MasterConfig, error) {
		t.Helper()
		if err := os.WriteFile(conf, []byte("configdirectory: "+cfgDir+"\n"+text), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := s.readConfig()
		if err != nil {
			return setupcheck.MasterConfig{}, err
		}
		return setupcheck.ConfigFromAgent(c.SyncLog, c.SyncLogChannels, c.SyncLogChannelsSet, c.Partitions, c.SyncLogOverrides), nil
	}
	mc, err := read("SYNC_LOG: 1\nsync_log_channels:\nlmtp_sync_log: 0\n")
	if err != nil {
		t.Fatal(err)
	}
	if !mc.SyncLog || !mc.ChannelsSet || mc.Writes("") || !slices.Equal(mc.Overrides, []string{"lmtp_sync_log"}) {
		t.Errorf("got %+v: want sync_log on, channels set and empty (unnamed channel not written), the lmtp override named", mc)
	}
	if _, err := read("sync_log: maybe\n"); err == nil {
		t.Error("sync_log: maybe was read without an error")
	}
}
