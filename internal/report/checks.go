package report

// Set-up checks: what the replicator found wrong (or right) with the way the two
// servers are set up, as opposed to what it found in the mail. Each check has a fixed
// name; a summary carries the latest result of each check that ran, at most one per
// name, so the list stays as short as the number of checks.

// CheckStatus is the outcome of one set-up check.
type CheckStatus string

const (
	CheckOK      CheckStatus = "ok"      // the check ran and found nothing wrong
	CheckWarning CheckStatus = "warning" // replication runs, but a person should look
	CheckFailed  CheckStatus = "failed"  // replication cannot work until the set-up changes
	CheckUnknown CheckStatus = "unknown" // the check could not run (the message says why)
)

// Check names.
const (
	// CheckSyncLog: the master writes the channel the replicator consumes (sync_log
	// on, the channel listed in sync_log_channels) and the reader may rename its files.
	CheckSyncLog = "sync-log"
	// CheckVersions: master and replica run the same Cyrus release (patch level aside).
	CheckVersions = "versions"
	// CheckPartitions: every partition the master keeps folders on exists on the replica.
	CheckPartitions = "partitions"
	// CheckChannelSilence: the channel is written while the master is busy.
	CheckChannelSilence = "channel-silence"
	// CheckAgent: the master's agent answers the replicator (--agent only). Failed,
	// with one of the ReasonAgent* reasons, while it cannot be reached or refuses; ok
	// once it answers again.
	CheckAgent = "agent"
)

// Check reasons, the operator's condition reasons for them.
const (
	ReasonSyncLogNotWritten = "SyncLogNotWritten"
	ReasonVersionSkew       = "VersionSkew"
	ReasonPartitionMissing  = "PartitionMissing"
	ReasonChannelSilent     = "ChannelSilent"

	// Why the agent cannot be had (CheckAgent), as agentclient.ProblemOf names it.
	ReasonAgentUnreachable  = "Unreachable"  // no connection
	ReasonAgentUnauthorized = "Unauthorized" // the token was refused (401/403), or there is none to send
	ReasonAgentTLSFailed    = "TLSFailed"    // the TLS handshake failed (certificate untrusted, client certificate refused)
	ReasonAgentChannelHeld  = "ChannelHeld"  // another consumer holds the channel (409)
	ReasonAgentError        = "AgentError"   // the agent answered another error (e.g. 500)
)

// Check is the latest result of one set-up check.
type Check struct {
	Name   string      `json:"name"`
	Status CheckStatus `json:"status"`
	// Reason is set when Status is warning or failed (one of the Reason* constants).
	Reason string `json:"reason,omitempty"`
	// Setting names the master's imapd.conf option at fault, when one is.
	Setting string `json:"setting,omitempty"`
	// Message says what was found, for people (names versions, partitions, users).
	Message string `json:"message"`
}

// SetCheck replaces the check of the same name in checks, or appends it.
func SetCheck(checks []Check, c Check) []Check {
	for i := range checks {
		if checks[i].Name == c.Name {
			out := append([]Check(nil), checks...)
			out[i] = c
			return out
		}
	}
	return append(append([]Check(nil), checks...), c)
}

// FindCheck returns the check of that name, or nil.
func FindCheck(checks []Check, name string) *Check {
	for i := range checks {
		if checks[i].Name == name {
			return &checks[i]
		}
	}
	return nil
}
