package synclog

import (
	"context"
	"fmt"
)

// Source is where a replicator takes sync-log entries from: the channel directory on a
// disk it can reach (Dir) or the master's agent.
type Source interface {
	// Take hands the channel's pending entries (a leftover log-run / unacknowledged
	// lease first, reprocessed=true) to handle. They are released (log-run removed /
	// lease acknowledged) only when handle returns nil; otherwise they are handed out
	// again. It returns ErrNoLog when there was nothing (an agent may first wait,
	// long-poll, up to a short bound or until ctx ends).
	Take(ctx context.Context, handle func(s *Scanner, reprocessed bool) error) error
	// Backlog is what was written and not yet taken: the number of entries and the
	// date of the oldest (zero: none).
	Backlog(ctx context.Context) (Pending, error)
}

var _ Source = (*Dir)(nil)

// Take implements Source: one ConsumeOnce cycle of the directory.
func (l *Dir) Take(ctx context.Context, handle func(s *Scanner, reprocessed bool) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sync log %s: %w", l.Path, err)
	}
	return l.ConsumeOnce(handle)
}

// Backlog implements Source: the entries of log and log-run, dated by the directory's
// PendingTracker (see PendingTracker for how an entry's age is estimated).
func (l *Dir) Backlog(context.Context) (Pending, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lag.Observe(l), nil
}
