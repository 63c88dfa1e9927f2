// Package replication runs replication: the Runner runs batches of users on a pool of
// workers, each with its own executor, so a failing user never blocks the others; Rolling
// consumes a sync-log Source the way `sync_client -r` does, through the durable pending
// queue and the retry queue; the Recorder folds results into the bounded report.
//
// This package is the orchestration of replication; what it runs lives in packages of
// their own, each with one concern (dependencies point one way, down this list):
//
//	internal/replication  runner.go (batches on a pool of workers, retries), rolling.go
//	                      (the sync-log loop over a synclog.Source), recorder.go (report)
//	internal/executor     a batch over csync: read, plan, re-check, apply, note marks
//	internal/state        ledger, writer locks, retry and pending queues, state id
//	internal/synclog      sync-log format and Scanner, channel directory, Source
//	internal/mboxdb       mailboxes.db evidence, Source
//	internal/plan         the pure planner and its model
//	internal/mboxname     Cyrus mailbox names, imapd.conf settings
//	internal/atomicfile   atomic file writes
//
// State kept by the replicator (the --state-dir of cmd/replicator, back it with a
// volume): ledger/user-<userid>.json, the uniqueids seen live on the master per user
// with their in-step marks, retry.json, the users owed a full sync with their backoff,
// locks/ (the per-user writer and ledger locks, see state.UserLocks and state.Ledger.Update)
// and state.json, the directory's identity (state.OpenStateID). Files are written atomically
// (temp file, fsync, rename, fsync of the directory).
package replication
