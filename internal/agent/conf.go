package agent

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/agent/api"
	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
	"github.com/cyrusrepl/cyrusrepl/internal/setupcheck"
)

// readConfig answers GET /v1/config from the imapd.conf as it is now: the settings the
// replicator reads (through mboxname.ReadMasterSettings, so the two never
// disagree) plus the raw sync-log and partition settings set-up checks look at, and
// the two file times the channel-silence check compares (through setupcheck, so a
// replicator through the agent judges what one on the master's disk would).
func (s *Server) readConfig() (api.Config, error) {
	ms, err := mboxname.ReadMasterSettings(s.conf)
	if err != nil {
		return api.Config{}, err
	}
	raw, err := readRawConf(s.conf)
	if err != nil {
		return api.Config{}, err
	}
	c := api.Config{
		APIVersion: "v1", ConfigDirectory: ms.ConfigDirectory, Channel: s.channel,
		ChannelLastWrite: rfc3339(setupcheck.ChannelLastChange(s.log.Path)),
		MasterLastChange: rfc3339(setupcheck.MasterLastChange(ms.ConfigDirectory)),
		SyncLogChannels:  []string{}, Partitions: map[string]string{},
		DeletedPrefix: ms.DeletedPrefix, DeleteMode: ms.DeleteMode,
		UnixHierarchySep: ms.UnixHierarchySep, AltNamespace: ms.AltNamespace, VirtDomains: ms.VirtDomains,
	}
	for k, v := range raw {
		switch {
		case k == "sync_log":
			c.SyncLog = cyrusTrue(v)
		case k == "sync_log_channels":
			c.SyncLogChannels = setupcheck.SplitChannels(v)
		case strings.HasPrefix(k, "partition-") && len(k) > len("partition-"):
			c.Partitions[strings.TrimPrefix(k, "partition-")] = v
		}
	}
	return c, nil
}

// readRawConf reads imapd.conf as key → value, the last setting of a key winning (as in
// Cyrus).
func readRawConf(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open imapd.conf: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read imapd.conf: %w", err)
	}
	return out, nil
}

func cyrusTrue(v string) bool {
	switch strings.ToLower(v) {
	case "1", "yes", "on", "true", "t", "y":
		return true
	}
	return false
}

// rfc3339 formats a file time for /v1/config, "" for the zero time (no such file).
func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
