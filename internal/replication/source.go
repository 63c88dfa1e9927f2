package replication

import (
	"context"
	"sync"
)

// LogSource is where Rolling takes sync-log entries from: the channel directory on a
// disk it can reach (DirSource) or the master's agent (internal/agentclient).
type LogSource interface {
	// Take hands the channel's pending entries (a leftover log-run or an unacknowledged
	// lease first, reprocessed=true) to handle. They are released (log-run removed,
	// lease acknowledged) only when handle returns nil and read them all; otherwise
	// they are handed out again. ErrNoLog when there was nothing (a source may first
	// wait, long-poll, up to a short bound or until ctx ends).
	Take(ctx context.Context, handle func(s *LogScanner, reprocessed bool) error) error
	// Backlog: entries written and not yet taken, and the date of the oldest.
	Backlog(ctx context.Context) (Pending, error)
}

// MailboxesDBSource is where a replicator reads the master's mailboxes.db: the file
// (MailboxesDBReader) or the master's agent.
type MailboxesDBSource interface {
	Users(ctx context.Context) ([]string, error)
	ForUsers(ctx context.Context, users, uniqueids []string) (*MailboxesDB, error)
}

// LongPoller is a LogSource whose Take waits for entries itself: Rolling then does not
// pause between passes, and cancels the wait when a job ends.
type LongPoller interface{ LongPolls() bool }

// DirSource is a sync-log channel directory read directly (see LogDir).
type DirSource struct {
	Log LogDir
	mu  sync.Mutex
	lag PendingTracker
}

// Take consumes the log once (LogDir.ConsumeOnce); it does not wait.
func (d *DirSource) Take(_ context.Context, handle func(s *LogScanner, reprocessed bool) error) error {
	return d.Log.ConsumeOnce(handle)
}

// Backlog counts and dates what waits in log and log-run.
func (d *DirSource) Backlog(context.Context) (Pending, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lag.Observe(d.Log), nil
}
