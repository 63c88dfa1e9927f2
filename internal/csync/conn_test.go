package csync

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fake"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func dialFake(t *testing.T, addr string, opt Options) *ReplicaConn {
	t.Helper()
	c, err := DialReplica(context.Background(), addr, opt)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// assertBroken checks that the conn refuses reuse with ErrBroken, without I/O.
func assertBroken(t *testing.T, c *ReplicaConn) {
	t.Helper()
	if err := c.Err(); !errors.Is(err, ErrBroken) {
		t.Fatalf("Err() = %s, want ErrBroken", errString(err))
	}
	if err := c.Noop(context.Background()); !errors.Is(err, ErrBroken) {
		t.Fatalf("reuse after error: %s, want ErrBroken", errString(err))
	}
}

func TestDialSendsPlainAuth(t *testing.T) {
	got := make(chan string, 1)
	addr := startFake(t, func(s *fakeSession) {
		s.send(fakeBanner)
		got <- s.expect("AUTHENTICATE PLAIN ")
		s.send("OK Success (no protection)")
		s.expect("NOOP")
		s.send("OK Noop completed")
		s.expect("EXIT")
		s.send("OK Finished")
	})
	c := dialFake(t, addr, fakeOpts())
	line := <-got
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(line, "AUTHENTICATE PLAIN "))
	if err != nil || string(raw) != "\x00repl\x00pw" {
		t.Fatalf("auth response %q decodes to %q, %v", line, raw, err)
	}
	caps := c.Capabilities()
	if !caps.Compress || !caps.SieveMailbox || caps.StartTLS || len(caps.SASL) != 1 || caps.SASL[0] != "PLAIN" {
		t.Fatalf("capabilities %+v", caps)
	}
	if err := c.Exit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Noop(context.Background()); !errors.Is(err, ErrBroken) || !errors.Is(err, ErrClosed) {
		t.Fatalf("after Exit: %s", errString(err))
	}
}

func TestDialAuthFailureAndNonAdmin(t *testing.T) {
	addr := startFake(t, func(s *fakeSession) {
		s.send(fakeBanner)
		s.expect("AUTHENTICATE")
		s.send("NO authentication failure")
	})
	_, err := Dial(context.Background(), addr, fakeOpts())
	var se *ServerError
	if !errors.Is(err, ErrAuthFailed) || !errors.As(err, &se) || se.Line != "NO authentication failure" {
		t.Fatalf("wrong password: %s", errString(err))
	}

	addr = startFake(t, func(s *fakeSession) {
		s.send(fakeBanner)
		s.expect("AUTHENTICATE")
		s.send("OK Success (no protection)")
		s.expect("NOOP")
		s.send("NO Permission denied")
	})
	if _, err := Dial(context.Background(), addr, fakeOpts()); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("non-admin: %s", errString(err))
	}
}

func TestServerErrorsMapToSentinels(t *testing.T) {
	replies := []struct {
		line   string
		want   error
		broken bool
	}{
		{"NO IMAP_MAILBOX_NONEXISTENT No Such Mailbox", ErrMailboxNonexistent, false},
		{"NO IMAP_MAILBOX_MOVED Mailbox exists with another name or uniqueid", ErrMailboxMoved, false},
		{"NO IMAP_SYNC_CHECKSUM Checksum Failure", ErrSyncChecksum, false},
		{"NO IMAP_SYNC_CHANGED Changed since last sync", ErrSyncChanged, false},
		{"NO IMAP_MAILBOX_LOCKED Mailbox locked", ErrMailboxLocked, false},
		{"NO IMAP_INVALID_USER No Such User", ErrInvalidUser, false},
		{"NO IMAP_PROTOCOL_ERROR Protocol error", ErrProtocol, true},
		{"NO IMAP_PROTOCOL_BAD_PARAMETERS", ErrBadParameters, false},
		{"NO Unknown error", ErrRemoteDenied, false},
		{"NO Permission denied", ErrPermissionDenied, false},
		{"BAD IMAP_PROTOCOL_ERROR Unrecognized command", ErrBadCommand, true},
		{"BYE shutting down", ErrServerBye, true},
		{"* Fatal error: [TOOBIG] Literal size exceeds fixed limit", ErrServerFatal, true},
		{"XYZZY what", ErrGarbled, true},
		{"+ go ahead", ErrGarbled, true},
	}
	for _, r := range replies {
		t.Run(r.line, func(t *testing.T) {
			addr := startFake(t, func(s *fakeSession) {
				s.login()
				s.expect("GET MAILBOXES (user.x)")
				s.send(r.line)
				if !r.broken {
					s.expect("NOOP")
					s.send("OK Noop completed")
				}
			})
			c := dialFake(t, addr, fakeOpts())
			_, err := c.GetMailboxes(context.Background(), []string{"user.x"})
			if !errors.Is(err, r.want) {
				t.Fatalf("err = %s, want %v", errString(err), r.want)
			}
			var se *ServerError
			if strings.HasPrefix(r.line, "NO") && (!errors.As(err, &se) || se.Line != r.line) {
				t.Fatalf("no *ServerError with the raw line: %s", errString(err))
			}
			if r.broken {
				assertBroken(t, c)
			} else if err := c.Noop(context.Background()); err != nil {
				t.Fatalf("conn not reusable after NO: %v", err)
			}
		})
	}
}

func TestServerClosesMidLiteral(t *testing.T) {
	addr := startFake(t, func(s *fakeSession) {
		s.login()
		s.expect("GET ANNOTATION user.fred")
		s.sendRaw("* ANNOTATION %(MBOXNAME user.fred ENTRY /comment USERID \"\" VALUE {100}\r\nonly a few bytes")
	})
	c := dialFake(t, addr, fakeOpts())
	_, err := c.GetAnnotation(context.Background(), "user.fred")
	if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %s, want unexpected EOF", errString(err))
	}
	assertBroken(t, c)
}

func TestGarbledDataLine(t *testing.T) {
	addr := startFake(t, func(s *fakeSession) {
		s.login()
		s.expect("GET USER fred")
		s.send("* MAILBOX %(UNIQUEID x MBOXNAME (unterminated", "OK success")
	})
	c := dialFake(t, addr, fakeOpts())
	if _, err := c.GetUser(context.Background(), "fred"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %s", errString(err))
	}
	assertBroken(t, c)
}

func TestBadFieldKeepsConnUsable(t *testing.T) {
	addr := startFake(t, func(s *fakeSession) {
		s.login()
		s.expect("GET USER fred")
		s.send("* MAILBOX %(UNIQUEID x MBOXNAME user.fred LAST_UID notanumber)", "OK success")
		s.expect("NOOP")
		s.send("OK Noop completed")
	})
	c := dialFake(t, addr, fakeOpts())
	if _, err := c.GetUser(context.Background(), "fred"); !errors.Is(err, ErrType) {
		t.Fatalf("err = %s, want ErrType", errString(err))
	}
	if err := c.Noop(context.Background()); err != nil {
		t.Fatalf("conn not reusable after a field error: %v", err)
	}
}

func TestContextCancelUnblocksRead(t *testing.T) {
	release := make(chan struct{})
	addr := startFake(t, func(s *fakeSession) {
		s.login()
		s.expect("GET USER fred")
		<-release // never answer
	})
	defer close(release)
	c := dialFake(t, addr, Options{Username: "u", Password: "p", Timeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err := c.GetUser(ctx, "fred")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %s, want context.Canceled", errString(err))
	}
	assertBroken(t, c)
}

func TestIdleTimeout(t *testing.T) {
	release := make(chan struct{})
	addr := startFake(t, func(s *fakeSession) {
		s.login()
		s.expect("NOOP")
		<-release
	})
	defer close(release)
	c := dialFake(t, addr, Options{Username: "u", Password: "p", Timeout: 100 * time.Millisecond})
	err := c.Noop(context.Background())
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %s, want a timeout", errString(err))
	}
	assertBroken(t, c)
}

func TestCancelledBeforeCallKeepsConn(t *testing.T) {
	addr := startFake(t, func(s *fakeSession) {
		s.login()
		s.expect("NOOP")
		s.send("OK Noop completed")
	})
	c := dialFake(t, addr, fakeOpts())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Noop(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %s", errString(err))
	}
	if err := c.Noop(context.Background()); err != nil {
		t.Fatalf("nothing was sent, conn should be usable: %v", err)
	}
}

func sha1hex(b []byte) string {
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:])
}

func TestFetchStreamsAndChecksGUID(t *testing.T) {
	msg := []byte("From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n")
	guid := sha1hex(msg)
	wrong := strings.Repeat("0", 40)
	addr := startFake(t, func(s *fakeSession) {
		s.login()
		l := s.expect("GET FETCH %(MBOXNAME user.fred PARTITION default UNIQUEID u1 GUID " + guid + " UID 7)")
		_ = l
		s.sendRaw("* MESSAGE %{default " + guid + " " + itoa(len(msg)) + "}\r\n" + string(msg) + "\r\nOK success\r\n")
		s.expect("GET FETCH")
		s.sendRaw("* MESSAGE %{default " + wrong + " " + itoa(len(msg)) + "}\r\n" + string(msg) + "\r\nOK success\r\n")
		s.expect("GET FETCH")
		s.send("NO IMAP_MAILBOX_NONEXISTENT No Such Mailbox")
		s.expect("GET FETCH")
		s.send("* MESSAGE NIL", "OK success")
		s.expect("GET FETCH")
		s.sendRaw("* MESSAGE %{default " + guid + " " + itoa(len(msg)) + "}\r\n" + string(msg) + "\r\nOK success\r\n")
		s.expect("NOOP")
		s.send("OK Noop completed")
	})
	c := dialFake(t, addr, fakeOpts())
	ctx := context.Background()
	req := FetchRequest{MboxName: "user.fred", Partition: "default", UniqueID: "u1", GUID: guid, UID: 7}
	var buf bytes.Buffer
	f, err := c.FetchTo(ctx, req, &buf)
	if err != nil || !bytes.Equal(buf.Bytes(), msg) || f.GUID != guid || int(f.Size) != len(msg) {
		t.Fatalf("FetchTo: %v %q %+v", err, buf.Bytes(), f)
	}
	if _, err := c.FetchTo(ctx, req, io.Discard); !errors.Is(err, ErrGUIDMismatch) {
		t.Fatalf("mismatched content: %s", errString(err))
	}
	if _, err := c.FetchTo(ctx, req, io.Discard); !errors.Is(err, ErrMailboxNonexistent) {
		t.Fatalf("missing message: %s", errString(err))
	}
	if _, err := c.FetchTo(ctx, req, io.Discard); !errors.Is(err, ErrNoFile) {
		t.Fatalf("NIL file: %s", errString(err))
	}
	// A body closed unread is drained; the conn is busy until then.
	body, err := c.Fetch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Noop(ctx); !errors.Is(err, ErrBusy) {
		t.Fatalf("call during open body: %s", errString(err))
	}
	if err := body.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Noop(ctx); err != nil {
		t.Fatalf("after drained body: %v", err)
	}
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

func TestApplyMessageWireAndLiterals(t *testing.T) {
	m1 := []byte("message one\r\n")
	m2 := bytes.Repeat([]byte("x"), 200_000)
	got := make(chan string, 2)
	addr := startFake(t, func(s *fakeSession) {
		s.login()
		hdr := s.expect("APPLY MESSAGE (%{default ")
		buf := make([]byte, len(m1))
		io.ReadFull(s.r, buf)
		rest, _ := s.r.ReadString('\n') // " %{default guid size}\r\n"
		buf2 := make([]byte, len(m2))
		io.ReadFull(s.r, buf2)
		tail := s.line()
		got <- hdr + "|" + string(buf) + "|" + strings.TrimRight(rest, "\r\n") + "|" + sha1hex(buf2) + "|" + tail
		s.send("OK success")
		got <- s.expect("APPLY ANNOTATION ")
		s.r.Discard(5) // the literal body "ab\r\ncd" minus the header line's tail
		s.line()
		s.send("OK success")
	})
	c := dialFake(t, addr, fakeOpts())
	ctx := context.Background()
	n, err := c.ApplyMessage(ctx, Messages([]Message{
		{Partition: "default", GUID: sha1hex(m1), Size: int64(len(m1)), Body: bytes.NewReader(m1)},
		{Partition: "default", GUID: sha1hex(m2), Size: int64(len(m2)), Body: bytes.NewReader(m2)},
	}))
	if err != nil || n != 2 {
		t.Fatalf("ApplyMessage = %d, %v", n, err)
	}
	want := "APPLY MESSAGE (%{default " + sha1hex(m1) + " " + itoa(len(m1)) + "}|" + string(m1) + "| %{default " +
		sha1hex(m2) + " 200000}|" + sha1hex(m2) + "|)"
	if g := <-got; g != want {
		t.Fatalf("wire\n%q\nwant\n%q", g, want)
	}
	if err := c.ApplyAnnotation(ctx, &MailboxAnnotation{MboxName: "user.fred", Entry: "/comment", Value: "ab\r\ncd"}); err != nil {
		t.Fatal(err)
	}
	if g := <-got; g != `APPLY ANNOTATION %(MBOXNAME user.fred ENTRY /comment USERID "" VALUE {6+}` {
		t.Fatalf("annotation wire %q", g)
	}
}

func TestApplyMessageShortBodyBreaks(t *testing.T) {
	addr := startFake(t, func(s *fakeSession) {
		s.login()
		io.Copy(io.Discard, s.r)
	})
	c := dialFake(t, addr, fakeOpts())
	_, err := c.ApplyMessage(context.Background(), Messages([]Message{
		{Partition: "default", GUID: strings.Repeat("a", 40), Size: 10, Body: strings.NewReader("short")},
	}))
	if !errors.Is(err, io.EOF) {
		t.Fatalf("err = %s", errString(err))
	}
	assertBroken(t, c)
}

func TestApplyMessageEmptySendsNothing(t *testing.T) {
	addr := startFake(t, func(s *fakeSession) {
		s.login()
		s.expect("NOOP")
		s.send("OK Noop completed")
	})
	c := dialFake(t, addr, fakeOpts())
	if n, err := c.ApplyMessage(context.Background(), Messages(nil)); n != 0 || err != nil {
		t.Fatalf("empty: %d %v", n, err)
	}
	if err := c.Noop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// STARTTLS: the banner is re-read over TLS (without STARTTLS and COMPRESS, as Cyrus does).
func TestStartTLS(t *testing.T) {
	srvTLS, cliTLS := selfSignedTLS(t)
	addr := startFake(t, func(s *fakeSession) {
		s.send("* SASL PLAIN", "* STARTTLS", "* COMPRESS DEFLATE", "* SIEVE-MAILBOX", "* OK fake")
		s.expect("STARTTLS")
		s.send("OK Begin TLS negotiation now")
		tc := tls.Server(s.nc, srvTLS)
		if err := tc.Handshake(); err != nil {
			t.Errorf("server handshake: %v", err)
			return
		}
		s.r, s.w = bufio.NewReader(tc), tc
		s.send("* SASL PLAIN", "* SIEVE-MAILBOX", "* OK fake")
		s.expect("AUTHENTICATE PLAIN")
		s.send("OK Success (tls protection)")
		s.expect("NOOP")
		s.send("OK Noop completed")
		s.expect("GET QUOTA user.fred")
		s.send("* QUOTA %(ROOT user.fred STORAGE 5 MODSEQ 3)", "OK success")
	})
	opt := fakeOpts()
	opt.TLS = cliTLS
	opt.CompressIfOffered = true // not offered under TLS: no COMPRESS sent, no error
	c, err := Dial(context.Background(), addr, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Capabilities().StartTLS || c.Capabilities().Compress {
		t.Fatalf("banner after TLS not re-read: %+v", c.Capabilities())
	}
	q, err := NewMaster(c).GetQuota(context.Background(), "user.fred")
	if err != nil || q.Resources["STORAGE"] != 5 || q.ModSeq != 3 {
		t.Fatalf("quota over TLS: %+v %v", q, err)
	}
}

// COMPRESS DEFLATE: the fake server speaks raw deflate both ways after the OK.
func TestCompress(t *testing.T) {
	addr := startFake(t, func(s *fakeSession) {
		s.login()
		s.expect("COMPRESS DEFLATE")
		s.send("OK DEFLATE active")
		s.r = bufio.NewReader(flate.NewReader(s.nc))
		s.zw, _ = flate.NewWriter(s.nc, flate.DefaultCompression)
		s.w = s.zw
		s.expect("APPLY CAPABILITIES (SIEVE-MAILBOX)")
		s.send("* ENABLED (SIEVE-MAILBOX)", "OK success")
		s.expect("GET QUOTA user.fred")
		s.send("* QUOTA %(ROOT user.fred STORAGE 5 MODSEQ 3)", "OK success")
	})
	opt := fakeOpts()
	opt.Compress, opt.SieveMailbox = true, true
	c, err := Dial(context.Background(), addr, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Compressed() || len(c.Enabled()) != 1 || c.Enabled()[0] != "SIEVE-MAILBOX" {
		t.Fatalf("compressed=%v enabled=%v", c.Compressed(), c.Enabled())
	}
	q, err := NewMaster(c).GetQuota(context.Background(), "user.fred")
	if err != nil || q.Resources["STORAGE"] != 5 || q.ModSeq != 3 {
		t.Fatalf("quota over deflate: %+v %v", q, err)
	}
}

func TestStartTLSNotOffered(t *testing.T) {
	addr := startFake(t, func(s *fakeSession) { s.send(fakeBanner) })
	_, cli := selfSignedTLS(t)
	opt := fakeOpts()
	opt.TLS = cli
	if _, err := Dial(context.Background(), addr, opt); !errors.Is(err, ErrNoCapability) {
		t.Fatalf("err = %s", errString(err))
	}
}

func TestDialUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = Dial(context.Background(), addr, fakeOpts())
	if err == nil || !strings.Contains(err.Error(), "connect") || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("err = %s", errString(err))
	}
}

func TestCloseFromAnotherGoroutineUnblocks(t *testing.T) {
	release := make(chan struct{})
	addr := startFake(t, func(s *fakeSession) {
		s.login()
		s.expect("GET META fred")
		<-release
	})
	defer close(release)
	c := dialFake(t, addr, Options{Username: "u", Password: "p", Timeout: time.Hour})
	started := make(chan struct{})
	go func() {
		close(started)
		time.Sleep(50 * time.Millisecond)
		c.Close()
	}()
	<-started
	if _, err := c.GetMeta(context.Background(), "fred"); err == nil {
		t.Fatal("GET META succeeded on a closed connection")
	}
	assertBroken(t, c)
}

func TestFetchBodyCancelledMidway(t *testing.T) {
	release := make(chan struct{})
	guid := strings.Repeat("ab", 20)
	addr := startFake(t, func(s *fakeSession) {
		s.login()
		s.expect("GET FETCH")
		s.sendRaw("* MESSAGE %{default " + guid + " 1000}\r\nfirst bytes")
		<-release
	})
	defer close(release)
	c := dialFake(t, addr, Options{Username: "u", Password: "p", Timeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	body, err := c.Fetch(ctx, FetchRequest{MboxName: "user.fred", Partition: "default", UniqueID: "u", GUID: guid, UID: 1})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 11)
	if _, err := io.ReadFull(body, buf); err != nil || string(buf) != "first bytes" {
		t.Fatalf("first read: %q %v", buf, err)
	}
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	if _, err := io.ReadAll(body); err == nil {
		t.Fatal("read of a stalled body returned no error")
	}
	if err := body.Close(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close: %s", errString(err))
	}
	assertBroken(t, c)
}
