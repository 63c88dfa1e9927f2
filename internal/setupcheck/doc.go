// Package setupcheck holds the set-up checks of a pair: pure functions over what was
// read of the master's imapd.conf, of the servers' banners and of the channel's files,
// each returning a report.Check. It does no I/O of its own except reading an
// imapd.conf (ReadMasterConfig) and looking at a directory (LookDir), so the checks are
// tested with tables and the callers (the replicator's modes) decide what a failed
// check stops.
package setupcheck
