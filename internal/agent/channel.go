package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
)

// channel is the sync-log channel's consumer and lease bookkeeping. The files are the
// truth: a lease is log-run handed out; it is removed only on acknowledgement, so a
// lost lease, an expired one or a restart of the agent leaves log-run to be handed
// out again.
type channel struct {
	name string
	log  *synclog.Dir
	ttl  time.Duration
	m    *metrics

	mu     sync.Mutex
	holder *consumer
	lease  *lease
}

// consumer is the replicator holding the channel. It holds it while it has a request
// in progress or a connection open that it asked for a lease on (a replicator keeps
// its connection between two long-polls); when the last one closes — the process ended
// or was killed — the channel is free at once.
type consumer struct {
	name, owner string
	open        int               // its requests in progress (a waiting long-poll, an open lease)
	waiting     bool              // a lease request of its is waiting for entries
	conns       map[net.Conn]bool // connections it asked for leases on, still open
	since       time.Time
}

// lease is log-run handed out and not yet acknowledged.
type lease struct {
	id      string
	expires time.Time
	done    chan struct{} // closed when the lease ends (acked, lost, expired, replaced)
}

// claim makes the requester the channel's consumer for one lease request, or refuses
// with 409 naming the holder. A request of the holder ends any lease still out (the
// holder lost track of it: it is handed out again). release must follow.
func (c *channel) claim(name, owner string, conn net.Conn, now time.Time) (*consumer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.holder
	if h != nil && (h.name != name || h.owner != owner) {
		busy := h.open > 0 || len(h.conns) > 0
		if h.owner == owner && h.open == 0 {
			busy = false // the same state, restarted before its old connection closed: take over
		}
		if busy {
			return nil, &statusError{code: http.StatusConflict, msg: fmt.Sprintf(
				"channel %q is consumed by %s (since %s); one consumer per channel",
				c.name, h.name, h.since.Format(time.RFC3339))}
		}
		h = nil
	}
	if h == nil {
		h = &consumer{name: name, owner: owner, since: now, conns: map[net.Conn]bool{}}
		c.holder = h
	}
	if conn != nil {
		h.conns[conn] = true
	}
	if h.waiting {
		return nil, &statusError{code: http.StatusConflict, msg: "a lease request of this consumer is already waiting"}
	}
	c.endLeaseLocked(c.lease, "lost")
	h.open++
	h.waiting = true
	return h, nil
}

// release ends a request of h.
func (c *channel) release(h *consumer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h.open--
	h.waiting = false
}

// closed forgets a connection that closed.
func (c *channel) closed(conn net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holder != nil {
		delete(c.holder.conns, conn)
	}
}

// waited marks h's long-poll over (it now holds a lease or gave up).
func (c *channel) waited(h *consumer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h.waiting = false
}

// pending tells whether there is something to hand out: a log-run, or a log with lines.
func (c *channel) pending() bool {
	if _, err := os.Stat(filepath.Join(c.log.Path, "log-run")); err == nil {
		return true
	}
	fi, err := os.Stat(filepath.Join(c.log.Path, "log"))
	return err == nil && fi.Size() > 0
}

// observe dates and counts what waits (see synclog.PendingTracker).
func (c *channel) observe() synclog.Pending {
	p, _ := c.log.Backlog(context.Background()) // never fails for a directory
	return p
}

// grant records a new lease out.
func (c *channel) grant(now time.Time) (*lease, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	l := &lease{id: hex.EncodeToString(b[:]), expires: now.Add(c.ttl), done: make(chan struct{})}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endLeaseLocked(c.lease, "lost")
	c.lease = l
	c.m.lease("granted", true)
	return l, nil
}

// end ends l if it is still the lease out (lost, expired); log-run stays.
func (c *channel) end(l *lease, result string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endLeaseLocked(l, result)
}

func (c *channel) endLeaseLocked(l *lease, result string) {
	if l == nil || c.lease != l {
		return
	}
	c.lease = nil
	close(l.done)
	c.m.lease(result, false)
}

// ack acknowledges lease id: log-run is removed. 409 when id is not the lease out.
func (c *channel) ack(id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.lease
	if l == nil || l.id != id {
		return &statusError{code: http.StatusConflict, msg: "lease " + id + " is not the current lease (it expired, was lost or was handed out again): nothing removed"}
	}
	if err := c.log.End(); err != nil {
		c.endLeaseLocked(l, "lost")
		return err
	}
	c.endLeaseLocked(l, "acked")
	return nil
}

// held tells whether a lease is out.
func (c *channel) held() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lease != nil
}
