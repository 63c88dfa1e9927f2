package setupcheck

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// MasterConfig is what the checks read of the master's imapd.conf.
type MasterConfig struct {
	ConfigDirectory string
	// SyncLog is the sync_log switch (Cyrus's default: off).
	SyncLog bool
	// SyncLogChannels is sync_log_channels split as Cyrus splits it (on spaces, empty
	// words dropped), each word as written: the unnamed channel is the two characters
	// `""`. Nil when the option is not set.
	SyncLogChannels []string
	// ChannelsSet: sync_log_channels appears in the file (possibly with no word).
	ChannelsSet bool
	// Partitions maps each partition-NAME option to its path.
	Partitions map[string]string
	// Overrides lists service-specific settings of sync_log or sync_log_channels
	// (e.g. lmtp_sync_log): Cyrus lets a service override them, which these checks
	// cannot follow, so they are named in the result.
	Overrides []string
}

// UnnamedChannel is how sync_log_channels spells Cyrus's unnamed channel
// (<configdirectory>/sync/log): two double quotes.
const UnnamedChannel = `""`

// ReadMasterConfig reads the master's imapd.conf.
func ReadMasterConfig(path string) (MasterConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return MasterConfig{}, fmt.Errorf("read the master's imapd.conf: %w", err)
	}
	defer f.Close()
	c, err := ParseMasterConfig(f)
	if err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseMasterConfig parses imapd.conf text the way Cyrus reads it: "key: value" lines,
// keys case-insensitive, '#' comments, the value trimmed.
func ParseMasterConfig(r io.Reader) (MasterConfig, error) {
	c := MasterConfig{Partitions: map[string]string{}}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if err := c.set(strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)); err != nil {
			return c, err
		}
	}
	if err := sc.Err(); err != nil {
		return c, fmt.Errorf("read imapd.conf: %w", err)
	}
	sort.Strings(c.Overrides)
	return c, nil
}

func (c *MasterConfig) set(key, val string) error {
	switch {
	case key == "configdirectory":
		c.ConfigDirectory = val
	case key == "sync_log":
		b, err := cyrusSwitch(val)
		if err != nil {
			return fmt.Errorf("sync_log %q: %w", val, err)
		}
		c.SyncLog = b
	case key == "sync_log_channels":
		c.ChannelsSet = true
		c.SyncLogChannels = splitChannels(val)
	case strings.HasPrefix(key, "partition-") && len(key) > len("partition-"):
		c.Partitions[strings.TrimPrefix(key, "partition-")] = val
	case strings.HasSuffix(key, "_sync_log") || strings.HasSuffix(key, "_sync_log_channels"):
		c.Overrides = append(c.Overrides, key)
	}
	return nil
}

// splitChannels splits like Cyrus's strarray_split(value, " ", 0): on spaces only,
// empty words dropped (a tab is part of a word, as in Cyrus).
func splitChannels(v string) []string {
	out := []string{}
	for _, w := range strings.Split(v, " ") {
		if w != "" {
			out = append(out, w)
		}
	}
	return out
}

// cyrusSwitch parses a Cyrus switch (1/0, yes/no, on/off, true/false, t/f, y/n).
func cyrusSwitch(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "yes", "on", "true", "t", "y":
		return true, nil
	case "0", "no", "off", "false", "f", "n":
		return false, nil
	}
	return false, fmt.Errorf("not a switch")
}

// WrittenChannels are the channels Cyrus writes with this configuration, as Cyrus 3.6's
// sync_log_init decides: none while sync_log is off; the unnamed channel alone when
// sync_log_channels is unset; else exactly the channels listed, the unnamed one only
// when `""` is one of them.
func (c MasterConfig) WrittenChannels() []string {
	if !c.SyncLog {
		return nil
	}
	if !c.ChannelsSet {
		return []string{UnnamedChannel}
	}
	return c.SyncLogChannels
}

// Writes reports whether Cyrus writes channel ("" or `""`: the unnamed channel).
func (c MasterConfig) Writes(channel string) bool {
	if channel == "" {
		channel = UnnamedChannel
	}
	for _, w := range c.WrittenChannels() {
		if w == channel {
			return true
		}
	}
	return false
}

// ConfigFromAgent builds the checks' view of the master's imapd.conf from what the
// master's agent serves (GET /v1/config: syncLog, syncLogChannels as written,
// partitions). An empty channel list is taken as sync_log_channels unset.
func ConfigFromAgent(syncLog bool, channels []string, partitions map[string]string) MasterConfig {
	c := MasterConfig{SyncLog: syncLog, Partitions: partitions}
	if len(channels) > 0 {
		c.ChannelsSet, c.SyncLogChannels = true, append([]string(nil), channels...)
	}
	return c
}
