package csync

import (
	"errors"
	"net"
	"sync/atomic"
	"time"
)

// errCancelled is returned by reads and writes after the call's context was cancelled.
var errCancelled = errors.New("csync: call cancelled")

// deadlineConn refreshes an idle deadline before every read and write (capped by the
// current call's context deadline), and fails fast once cancel has been called.
//
// cancel stores the flag before moving the deadline into the past, and Read/Write set
// their deadline before checking the flag, so a cancellation racing with a refresh
// always wins: either the flag is seen, or the past deadline lands after the refresh.
type deadlineConn struct {
	net.Conn
	idle         time.Duration
	callDeadline time.Time // zero when the call has no deadline; owned by the calling goroutine
	cancelled    atomic.Bool
}

func (d *deadlineConn) deadline() time.Time {
	t := time.Now().Add(d.idle)
	if !d.callDeadline.IsZero() && d.callDeadline.Before(t) {
		t = d.callDeadline
	}
	return t
}

func (d *deadlineConn) Read(p []byte) (int, error) {
	if err := d.Conn.SetReadDeadline(d.deadline()); err != nil {
		return 0, err
	}
	if d.cancelled.Load() {
		return 0, errCancelled
	}
	return d.Conn.Read(p)
}

func (d *deadlineConn) Write(p []byte) (int, error) {
	if err := d.Conn.SetWriteDeadline(d.deadline()); err != nil {
		return 0, err
	}
	if d.cancelled.Load() {
		return 0, errCancelled
	}
	return d.Conn.Write(p)
}

// cancel unblocks any read or write in progress and fails all later ones.
func (d *deadlineConn) cancel() {
	d.cancelled.Store(true)
	_ = d.Conn.SetDeadline(time.Unix(1, 0))
}
