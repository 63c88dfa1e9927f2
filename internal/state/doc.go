// Package state is what the replicator keeps on disk between runs, in its state
// directory (--state-dir) and beside the sync log: the ledger of uniqueids seen on the
// master with their in-step marks (ledger.go, sieve_ledger.go), the directory's identity
// (stateid.go), one writer per user (writers.go, filelock.go), the retry queue
// (retry.go), the queue of work taken from the log and not yet replicated
// (pendingqueue.go) and the record of the seeding pass (seed.go). Every file is written
// atomically (internal/atomicfile), except the seeding pass's list of users done, which
// is appended to and fsynced line by line (a torn last line is ignored).
package state
