package csync

import (
	"bufio"
	"compress/flate"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// A tiny scripted csync server on 127.0.0.1 for the failure modes a real server will
// not produce on demand (garbled replies, closing mid-literal, silence).

type fakeSession struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
	w  io.Writer
	zw *flate.Writer
}

func (s *fakeSession) send(lines ...string) {
	for _, l := range lines {
		if _, err := io.WriteString(s.w, l+"\r\n"); err != nil {
			s.t.Errorf("fake server write: %v", err)
		}
	}
	if s.zw != nil {
		_ = s.zw.Flush()
	}
}

// sendRaw writes bytes without adding CRLF.
func (s *fakeSession) sendRaw(b string) {
	_, _ = io.WriteString(s.w, b)
	if s.zw != nil {
		_ = s.zw.Flush()
	}
}

func (s *fakeSession) line() string {
	l, err := s.r.ReadString('\n')
	if err != nil {
		s.t.Errorf("fake server read: %v (got %q)", err, l)
		return ""
	}
	return strings.TrimRight(l, "\r\n")
}

func (s *fakeSession) expect(prefix string) string {
	l := s.line()
	if !strings.HasPrefix(l, prefix) {
		s.t.Errorf("fake server: got %q, want prefix %q", l, prefix)
	}
	return l
}

const fakeBanner = "* SASL PLAIN\r\n* COMPRESS DEFLATE\r\n* SIEVE-MAILBOX\r\n* OK fake Cyrus sync server 3.6.1"

// login plays the banner, AUTHENTICATE and the admin-check NOOP.
func (s *fakeSession) login() {
	s.send(fakeBanner)
	s.expect("AUTHENTICATE PLAIN ")
	s.send("OK Success (no protection)")
	s.expect("NOOP")
	s.send("OK Noop completed")
}

// startFake serves one connection with script and returns the address.
func startFake(t *testing.T, script func(s *fakeSession)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
		script(&fakeSession{t: t, nc: nc, r: bufio.NewReader(nc), w: nc})
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func fakeOpts() Options {
	return Options{Username: "repl", Password: "pw", Timeout: 10 * time.Second}
}

// errString renders an error for failure messages.
func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%v (%T)", err, err)
}

func selfSignedTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	cert, pool := testCert(t)
	return &tls.Config{Certificates: []tls.Certificate{cert}},
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}
