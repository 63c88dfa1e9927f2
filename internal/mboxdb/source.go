package mboxdb

import "context"

// Source is where a replicator reads the master's mailboxes.db: the file (Reader,
// through cyr_dbtool or the built-in twoskip reader) or the master's agent.
type Source interface {
	// Users lists the users owning live folders.
	Users(ctx context.Context) ([]string, error)
	// ForUsers returns the evidence for the users' folders and for the uniqueids
	// uniqueids (see Reader.ForUsers): tombstones are reported for those uniqueids only.
	ForUsers(ctx context.Context, users, uniqueids []string) (*DB, error)
}

var _ Source = (*Reader)(nil)
