// Package fault holds black-box fault-injection and split-brain tests: they build the
// real replicator binary, run it against a real Cyrus 3.6 master and replica
// (internal/testutil/cyruspair), and break things underneath it — a replica
// sync_server killed mid-APPLY, the replica restarted, the replicator SIGKILLed
// mid-batch, the csync stream stalled, delayed, cut or garbled, malformed sync-log
// lines — then check that it recovers by itself, loses no log entry, leaves nothing a
// re-run does not repair, and names what happened in its JSON lines and report.
package fault
