// Package replication is the domain of cyrusrepl: a user's state at each end keyed by
// mailbox uniqueid, the evidence that tells "deleted on the master" from "never existed
// there", the pure planner that turns (master, replica, evidence) into ordered actions
// plus decision and mismatch records, the executor that carries a plan out over csync,
// the sync-log reader and user batcher for rolling mode, and the runner and retry queue
// that keep a failing user from blocking the others.
//
// Files: state.go, names.go (model); evidence.go, mboxdb.go, ledger.go (evidence);
// planner.go, meta.go, action.go, moveaside.go (pure planning); executor.go, execute.go,
// moveaside_exec.go, snapshot.go, mailbox_level.go (I/O over csync); synclog.go, logdir.go, batch.go (sync log);
// runner.go, rolling.go, retry.go, recorder.go (scheduling and reporting); stateid.go,
// writers.go, filelock.go (the state directory's identity, one writer per user, locks).
//
// State kept by the replicator (the --state-dir of cmd/replicator, back it with a
// volume): ledger/user-<userid>.json, the uniqueids seen live on the master per user
// with their in-step marks, retry.json, the users owed a full sync with their backoff,
// locks/ (the per-user writer and ledger locks, see UserLocks and Ledger.Update) and
// state.json, the directory's identity (OpenStateID). Files are written atomically
// (temp file, fsync, rename, fsync of the directory).
package replication
