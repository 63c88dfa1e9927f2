// Package executor carries out plans over csync: per batch it reads both ends and the
// evidence (executor.go: Gather), plans (internal/plan), re-checks each destructive
// action right before it is sent and applies the actions (execute.go,
// moveaside_exec.go), and notes the in-step marks in the ledger (internal/state). A
// log batch whose users only have folder-level work compares the logged folders alone
// (mailbox_level.go). The master is read only (MasterReader); the replica is written
// (ReplicaWriter).
package executor
