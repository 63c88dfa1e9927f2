// Package csync speaks the Cyrus IMAP 3.6 replication ("csync") protocol to a
// sync_server, as described in docs/csync-protocol.md.
//
// What it does:
//   - encodes and decodes dlists (atoms, quoted strings, literals, NIL, flags, lists,
//     kvlists, file literals) with a strict, total decoder bounded by Limits;
//   - manages one session (Conn): banner, STARTTLS, AUTHENTICATE PLAIN, COMPRESS
//     DEFLATE, APPLY CAPABILITIES, NOOP, RESTART, EXIT, with per-call contexts and idle
//     deadlines; any I/O or protocol error breaks the Conn for good (ErrBroken);
//   - offers typed GET and APPLY calls with Go structs for MAILBOX, RECORD, QUOTA, SEEN,
//     LSUB, SIEVE and ANNOTATION, keeping the raw dlist for verbatim replay;
//   - streams message bodies (GET FETCH → FetchBody, APPLY MESSAGE from an iterator);
//   - splits sessions by role at compile time: MasterConn can only read (GET),
//     ReplicaConn can read and write (GET + APPLY);
//   - recomputes SYNC_CRC and SYNC_CRC_ANNOT from records.
//
// What it does not do: decide anything. It has no replication policy (what to create,
// rename or delete, retries, batching by user, tombstone evidence); that lives in
// internal/plan, internal/executor and internal/replication. It does not read sync logs or mailboxes.db, and it does not
// pool or reconnect sessions.
package csync
