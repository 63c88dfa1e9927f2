package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/agent/api"
	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
)

// Timings of a lease request: how often the channel's files are looked at while
// waiting, and how often an open lease sends a keep-alive newline.
const (
	pollEvery      = 25 * time.Millisecond
	keepAliveEvery = 5 * time.Second
)

// serveLease is POST /v1/channel/lease: wait up to wait for pending entries, take them
// (leftover log-run first, else log renamed to log-run under Cyrus's lock), send them,
// and hold the lease open until it is acknowledged, lost or expired.
func (s *Server) serveLease(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	name, owner := r.Header.Get(api.HeaderConsumer), r.Header.Get(api.HeaderOwner)
	if err := checkConsumer(name, owner); err != nil {
		s.fail(w, err)
		return
	}
	conn, _ := r.Context().Value(connKey{}).(net.Conn)
	h, err := s.ch.claim(name, owner, conn, time.Now())
	if err != nil {
		s.fail(w, err)
		return
	}
	defer s.ch.release(h)
	f, reprocessed, err := s.waitAndBegin(r, wait)
	s.ch.waited(h)
	if errors.Is(err, synclog.ErrNoLog) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		s.fail(w, err)
		return
	}
	l, err := s.ch.grant(time.Now())
	if err != nil {
		s.fail(w, err)
		return
	}
	s.logger.Info("lease granted", "lease", l.id, "channel", s.channel, "consumer", name, "bytes", fi.Size(), "reprocessed", reprocessed)
	hdr, _ := json.Marshal(api.LeaseHeader{Lease: l.id, Reprocessed: reprocessed, Size: fi.Size(), Expires: l.expires.UTC().Format(time.RFC3339Nano)})
	w.Header().Set("Content-Type", api.LeaseContentType)
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if _, err := w.Write(append(hdr, '\n')); err == nil {
		_, err = io.CopyN(w, f, fi.Size())
		if err == nil && flusher != nil {
			flusher.Flush()
		}
	}
	s.holdLease(w, r, l, flusher)
}

// waitAndBegin long-polls the channel's files until something is pending, then takes it.
func (s *Server) waitAndBegin(r *http.Request, wait time.Duration) (*os.File, bool, error) {
	deadline := time.Now().Add(wait)
	for {
		if s.ch.pending() {
			s.ch.observe() // date the log before it is renamed (the backlog's age)
			f, reprocessed, err := s.log.Begin()
			if !errors.Is(err, synclog.ErrNoLog) {
				return f, reprocessed, err
			}
		}
		if !time.Now().Before(deadline) {
			return nil, false, synclog.ErrNoLog
		}
		select {
		case <-r.Context().Done():
			return nil, false, synclog.ErrNoLog
		case <-time.After(min(pollEvery, time.Until(deadline))):
		}
	}
}

// holdLease keeps the answer open while the lease is out: it ends when the lease is
// acknowledged or replaced, lost with the connection, or expired.
func (s *Server) holdLease(w http.ResponseWriter, r *http.Request, l *lease, flusher http.Flusher) {
	expire := time.NewTimer(time.Until(l.expires))
	defer expire.Stop()
	tick := time.NewTicker(keepAliveEvery)
	defer tick.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-r.Context().Done():
			s.ch.end(l, "lost")
			s.logger.Info("lease lost: connection closed (log-run kept, handed out again)", "lease", l.id, "channel", s.channel)
			return
		case <-expire.C:
			s.ch.end(l, "expired")
			s.logger.Warn("lease expired unacknowledged (log-run kept, handed out again)", "lease", l.id, "channel", s.channel)
			return
		case <-tick.C:
			if _, err := w.Write([]byte{'\n'}); err != nil {
				s.ch.end(l, "lost")
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
	}
}

// checkConsumer refuses a lease request that does not say who it is.
func checkConsumer(name, owner string) error {
	if name == "" || owner == "" {
		return badRequest("a lease request needs the %s and %s headers", api.HeaderConsumer, api.HeaderOwner)
	}
	if len(name) > api.MaxNameLen || len(owner) > api.MaxNameLen {
		return badRequest("consumer headers too long")
	}
	return nil
}

// connKey is the context key of a request's connection (see ConnContext).
type connKey struct{}

// ConnContext is for http.Server.ConnContext: it lets a lease request name its
// connection, so that the channel is freed as soon as its consumer's connections close.
func (s *Server) ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// ConnState is for http.Server.ConnState.
func (s *Server) ConnState(c net.Conn, st http.ConnState) {
	if st == http.StateClosed || st == http.StateHijacked {
		s.ch.closed(c)
	}
}
