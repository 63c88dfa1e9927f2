package agent

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/agent/api"
	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
)

// readConfig answers GET /v1/config from the imapd.conf as it is now: the settings the
// replicator reads (through mboxname.ReadMasterSettings, so the two never
// disagree) plus the raw sync-log and partition settings set-up checks look at.
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
		ChannelLastWrite: lastWrite(s.log),
		SyncLogChannels:  []string{}, Partitions: map[string]string{},
		DeletedPrefix: ms.DeletedPrefix, DeleteMode: ms.DeleteMode,
		UnixHierarchySep: ms.UnixHierarchySep, AltNamespace: ms.AltNamespace, VirtDomains: ms.VirtDomains,
	}
	for k, v := range raw {
		switch {
		case k == "sync_log":
			c.SyncLog = cyrusTrue(v)
		case k == "sync_log_channels":
			c.SyncLogChannels = strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' })
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

// lastWrite is the modification time of the channel's log, else of its log-run (the
// last append before the rename), "" when neither exists.
func lastWrite(l *synclog.Dir) string {
	for _, name := range []string{"log", "log-run"} {
		if fi, err := os.Stat(filepath.Join(l.Path, name)); err == nil {
			return fi.ModTime().UTC().Format(time.RFC3339Nano)
		}
	}
	return ""
}
