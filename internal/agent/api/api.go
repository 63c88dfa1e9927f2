// Package api holds the wire types of the master agent's HTTP API, version 1
// (docs/agent.md), shared by the agent (internal/agent) and its client
// (internal/agentclient).
package api

import "time"

// Paths of the API. Only these exist.
const (
	PathHealthz = "/healthz"
	PathReadyz  = "/readyz"
	PathMetrics = "/metrics"
	PathConfig  = "/v1/config"
	PathBacklog = "/v1/channel/backlog"
	PathLease   = "/v1/channel/lease"
	PathAck     = "/v1/channel/ack"
	PathUsers   = "/v1/mailboxes/users"
	PathLookup  = "/v1/mailboxes/lookup"
)

// Headers a lease request names its consumer with.
const (
	HeaderConsumer = "X-Cyrusrepl-Consumer" // for people: host, pid, state
	HeaderOwner    = "X-Cyrusrepl-Owner"    // the replicator's state identity
)

// LeaseContentType is the media type of a lease answer: a JSON LeaseHeader line, then
// Size bytes of log-run, then keep-alive newlines.
const LeaseContentType = "application/x-cyrusrepl-lease"

// Limits of what a request may carry.
const (
	MaxBody     = 1 << 20          // bytes of a request body
	MaxNames    = 10000            // users or uniqueids in one lookup
	MaxNameLen  = 512              // bytes of one user name or uniqueid
	MaxWait     = 10 * time.Second // longest long-poll of a lease request
	DefaultWait = MaxWait
)

// Config is GET /v1/config. The shape is stable within v1; fields may be added.
type Config struct {
	APIVersion       string   `json:"apiVersion"`
	ConfigDirectory  string   `json:"configDirectory"`
	Channel          string   `json:"channel"`
	ChannelLastWrite string   `json:"channelLastWrite"` // RFC3339, "" never written
	MasterLastChange string   `json:"masterLastChange"` // RFC3339, "" unknown
	SyncLog          bool     `json:"syncLog"`
	SyncLogChannels  []string `json:"syncLogChannels"`
	// SyncLogChannelsSet: sync_log_channels appears in imapd.conf, possibly with no
	// word (absent from agents before it was added: then a non-empty list means set).
	SyncLogChannelsSet *bool `json:"syncLogChannelsSet,omitempty"`
	// SyncLogOverrides names service-specific sync_log settings (e.g. lmtp_sync_log).
	SyncLogOverrides []string          `json:"syncLogOverrides,omitempty"`
	Partitions       map[string]string `json:"partitions"`
	DeletedPrefix    string            `json:"deletedPrefix"`
	DeleteMode       string            `json:"deleteMode"`
	UnixHierarchySep bool              `json:"unixHierarchySep"`
	AltNamespace     bool              `json:"altNamespace"`
	VirtDomains      string            `json:"virtDomains"`
}

// Backlog is GET /v1/channel/backlog.
type Backlog struct {
	Entries int    `json:"entries"`
	Since   string `json:"since"` // RFC3339, "" when nothing waits
}

// LeaseHeader is the first line of a lease answer.
type LeaseHeader struct {
	Lease       string `json:"lease"`
	Reprocessed bool   `json:"reprocessed"`
	Size        int64  `json:"size"`
	Expires     string `json:"expires"`
}

// Users is GET /v1/mailboxes/users.
type Users struct {
	Users []string `json:"users"`
}

// LookupRequest is the body of POST /v1/mailboxes/lookup.
type LookupRequest struct {
	Users     []string `json:"users"`
	UniqueIDs []string `json:"uniqueids"`
}

// Tombstone is a deleted folder's record in mailboxes.db.
type Tombstone struct {
	UniqueID string `json:"uniqueid"`
	Name     string `json:"name"`
	Orphan   bool   `json:"orphan,omitempty"`
	MTime    int64  `json:"mtime"`
}

// Evidence is the answer of POST /v1/mailboxes/lookup.
type Evidence struct {
	Live       map[string]string    `json:"live"`
	Tombstones map[string]Tombstone `json:"tombstones"`
	History    map[string][]string  `json:"history"`
	Bad        []string             `json:"bad"`
}

// Error is the body of every error answer.
type Error struct {
	Error string `json:"error"`
}
