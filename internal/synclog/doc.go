// Package synclog reads Cyrus's sync log: the line format and its streaming Scanner
// (synclog.go), the grouping of entries into per-user work (batch.go), the channel
// directory consumed the way `sync_client -r` does, under Cyrus's own fcntl lock
// (logdir.go, append.go), and the dating of what waits in it (pending.go).
//
// Source (source.go) is where a replicator takes entries from: Dir, the channel
// directory on a disk it can reach, or the master's agent. The replicator's rolling
// mode only uses Source.
package synclog
