// Package mboxdb reads the master's mailboxes.db: the N and I records of a batch's
// users, turned into the evidence the planner weighs (live uniqueids, tombstones, name
// history), read with Cyrus's cyr_dbtool or the built-in twoskip reader, outside any
// transaction (Reader), and the user list.
//
// Source (source.go) is where a replicator reads it from: Reader, the file, or the
// master's agent.
package mboxdb
