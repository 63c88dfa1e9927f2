package csync

import (
	"context"
	"errors"
	"fmt"
)

// ErrReadOnly: the request would send an APPLY to a read-only (master) session.
var ErrReadOnly = errors.New("csync: a master session is read-only (no APPLY)")

// MasterConn is a read-only session: it exposes GET commands, NOOP, RESTART and EXIT,
// and no APPLY. The underlying Conn is unexported, so APPLY cannot be sent through a
// MasterConn without unsafe or reflection.
// DialMaster refuses Options.SieveMailbox for the same reason: enabling it takes an
// APPLY CAPABILITIES.
type MasterConn struct{ reader }

// ReplicaConn is a read-write session: GET and APPLY.
type ReplicaConn struct{ reader }

// NewMaster wraps an established Conn as read-only.
func NewMaster(c *Conn) *MasterConn { return &MasterConn{reader{c}} }

// NewReplica wraps an established Conn as read-write.
func NewReplica(c *Conn) *ReplicaConn { return &ReplicaConn{reader{c}} }

// DialMaster dials and returns a read-only session.
func DialMaster(ctx context.Context, addr string, opt Options) (*MasterConn, error) {
	if opt.SieveMailbox {
		return nil, fmt.Errorf("%w: Options.SieveMailbox needs APPLY CAPABILITIES", ErrReadOnly)
	}
	c, err := Dial(ctx, addr, opt)
	if err != nil {
		return nil, err
	}
	return NewMaster(c), nil
}

// DialReplica dials and returns a read-write session.
func DialReplica(ctx context.Context, addr string, opt Options) (*ReplicaConn, error) {
	c, err := Dial(ctx, addr, opt)
	if err != nil {
		return nil, err
	}
	return NewReplica(c), nil
}
