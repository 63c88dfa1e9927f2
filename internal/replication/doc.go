// Package replication is the domain of cyrusrepl: a user's state at each end keyed by
// mailbox uniqueid, the evidence that tells "deleted on the master" from "never existed
// there", the pure planner that turns (master, replica, evidence) into ordered actions
// plus decision and mismatch records, the sync-log reader and user batcher for rolling
// mode, and the retry scheduler that keeps a failing user from blocking the others.
//
// Nothing in the planner does I/O; the executor (which speaks csync) gathers the states
// and evidence, asks the planner, and carries the actions out.
package replication
