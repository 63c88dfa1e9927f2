package agent

import (
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/agent/api"
	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
	"github.com/cyrusrepl/cyrusrepl/internal/setupcheck"
)

// readConfig answers GET /v1/config from the imapd.conf as it is now: the settings the
// replicator reads (through mboxname.ReadMasterSettings, so the two never
// disagree), the sync-log and partition settings as the set-up checks parse them
// (through setupcheck.ReadMasterConfig: one parser, same errors), and
// the two file times the channel-silence check compares (through setupcheck, so a
// replicator through the agent judges what one on the master's disk would).
func (s *Server) readConfig() (api.Config, error) {
	ms, err := mboxname.ReadMasterSettings(s.conf)
	if err != nil {
		return api.Config{}, err
	}
	mc, err := setupcheck.ReadMasterConfig(s.conf)
	if err != nil {
		return api.Config{}, err
	}
	c := api.Config{
		APIVersion: "v1", ConfigDirectory: ms.ConfigDirectory, Channel: s.channel,
		ChannelLastWrite: rfc3339(setupcheck.ChannelLastChange(s.log.Path)),
		MasterLastChange: rfc3339(setupcheck.MasterLastChange(ms.ConfigDirectory)),
		SyncLog:          mc.SyncLog, SyncLogChannels: append([]string{}, mc.SyncLogChannels...),
		SyncLogChannelsSet: &mc.ChannelsSet, SyncLogOverrides: mc.Overrides, Partitions: mc.Partitions,
		DeletedPrefix: ms.DeletedPrefix, DeleteMode: ms.DeleteMode,
		UnixHierarchySep: ms.UnixHierarchySep, AltNamespace: ms.AltNamespace, VirtDomains: ms.VirtDomains,
	}
	return c, nil
}

// rfc3339 formats a file time for /v1/config, "" for the zero time (no such file).
func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
