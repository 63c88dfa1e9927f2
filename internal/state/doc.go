// Package state is what the replicator keeps on disk between runs, in its state
// directory (--state-dir) and beside the sync log: the ledger of uniqueids seen on the
// master with their in-step marks (ledger.go, sieve_ledger.go), the directory's identity
// (stateid.go), one writer per user (writers.go, filelock.go), the retry queue
// (retry.go) and the queue of work taken from the log and not yet replicated
// (pendingqueue.go). Every file is written atomically (internal/atomicfile).
package state
