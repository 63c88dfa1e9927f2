package csync

import (
	"bufio"
	"compress/flate"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// Options configure Dial.
type Options struct {
	Username string // SASL authentication id; must be in the server's admins
	Password string
	// TLS, when non-nil, encrypts the session with this config before authenticating:
	// Dial issues STARTTLS (required to be advertised), or, with ImplicitTLS, handshakes
	// from the first byte (a TLS-terminating proxy in front of sync_server).
	TLS *tls.Config
	// ImplicitTLS: TLS from the first byte instead of STARTTLS (needs TLS).
	ImplicitTLS bool
	// Compress turns on COMPRESS DEFLATE after authentication (required to be advertised).
	Compress bool
	// CompressIfOffered turns on COMPRESS DEFLATE when the server advertises it, as
	// Cyrus's sync_client does (it is not offered under TLS).
	CompressIfOffered bool
	// SieveMailbox sends APPLY CAPABILITIES (SIEVE-MAILBOX) after authentication when
	// the server advertises it. It only changes this session's behaviour (sieve scripts
	// travel as the #sieve mailbox; GET USER stops listing SIEVE records). DialMaster
	// refuses it (ErrReadOnly): a master session sends no APPLY at all.
	SieveMailbox bool
	// Timeout is the idle I/O timeout for every read and write (default 60s). Keep it
	// below the server's sync_timeout.
	Timeout time.Duration
	// Limits bound the decoder (DefaultLimits when zero).
	Limits Limits
	// DialContext replaces net.Dialer.DialContext (tests).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// SkipAdminCheck skips the NOOP that Dial sends to prove the user is an admin.
	SkipAdminCheck bool
	// Observe, when set, is called after every command with its name ("GET MAILBOXES",
	// "APPLY MESSAGE", "RESTART", …), how long it took (for GET FETCH: until the body
	// was closed) and its error, for metrics and tracing. It must be cheap and must not
	// use the Conn.
	Observe func(cmd string, d time.Duration, err error)
}

// Capabilities are what the server's banner advertised.
type Capabilities struct {
	SASL         []string // mechanisms from "* SASL ..."
	StartTLS     bool
	Compress     bool // "* COMPRESS DEFLATE"
	SieveMailbox bool
	Greeting     string   // the text after "* OK"
	Lines        []string // every banner line, for diagnostics
}

// ErrClosed is returned (wrapped in ErrBroken) after Close or Exit.
var ErrClosed = errors.New("csync: connection closed")

// Conn is one csync session. It carries no GET/APPLY methods itself: wrap it in a
// MasterConn (GET only) or ReplicaConn (GET and APPLY). A Conn runs one command at a
// time and is not safe for concurrent use, except Close, which may be called from any
// goroutine to abort a call in progress.
type Conn struct {
	addr    string
	dc      *deadlineConn
	nc      net.Conn // dc, or a *tls.Conn over it
	br      *bufio.Reader
	bw      *bufio.Writer
	zw      *flate.Writer
	lim     Limits
	caps    Capabilities
	enabled []string // capabilities enabled with APPLY CAPABILITIES
	wbuf    []byte

	mu     sync.Mutex // guards broken: Close may run on another goroutine
	broken error
	busy   bool // a FetchBody is open
	stop   func() bool

	observe func(cmd string, d time.Duration, err error)
	cmd     string    // the call in progress, for observe
	started time.Time // when it began
}

// Dial connects to a sync_server, reads the banner, optionally negotiates STARTTLS,
// authenticates with PLAIN (empty authzid, initial response inline), checks that the
// user is an admin, and optionally enables COMPRESS DEFLATE and SIEVE-MAILBOX.
func Dial(ctx context.Context, addr string, opt Options) (_ *Conn, err error) {
	if opt.Timeout <= 0 {
		opt.Timeout = 60 * time.Second
	}
	if opt.Limits == (Limits{}) {
		opt.Limits = DefaultLimits
	}
	dial := opt.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	raw, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("csync: connect %s: %w", addr, err)
	}
	c := &Conn{addr: addr, lim: opt.Limits, observe: opt.Observe}
	c.dc = &deadlineConn{Conn: raw, idle: opt.Timeout}
	c.setStreams(c.dc)
	defer func() {
		if err != nil {
			c.markBroken(err)
			err = fmt.Errorf("csync: %s: %w", addr, err)
		}
	}()
	if opt.ImplicitTLS {
		if opt.TLS == nil {
			return nil, errors.New("csync: ImplicitTLS needs a TLS config")
		}
		if err := c.handshake(ctx, opt.TLS); err != nil {
			return nil, err
		}
	}

	if err := c.call(ctx, "banner", func() error { return c.readBanner() }); err != nil {
		return nil, err
	}
	if opt.TLS != nil && !opt.ImplicitTLS {
		if err := c.startTLS(ctx, opt.TLS); err != nil {
			return nil, err
		}
	}
	if err := c.authenticate(ctx, opt.Username, opt.Password); err != nil {
		return nil, err
	}
	if !opt.SkipAdminCheck {
		if err := c.Noop(ctx); err != nil {
			return nil, err
		}
	}
	if opt.Compress || (opt.CompressIfOffered && c.caps.Compress) {
		if err := c.compress(ctx); err != nil {
			return nil, err
		}
	}
	if opt.SieveMailbox && c.caps.SieveMailbox {
		if _, err := c.enableCaps(ctx, []string{"SIEVE-MAILBOX"}); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Conn) setStreams(nc net.Conn) {
	c.nc = nc
	c.br = bufio.NewReaderSize(nc, 64<<10)
	c.bw = bufio.NewWriterSize(nc, 64<<10)
}

// Addr is the address the Conn was dialled to.
func (c *Conn) Addr() string { return c.addr }

// Capabilities returns what the banner advertised.
func (c *Conn) Capabilities() Capabilities { return c.caps }

// Enabled returns the capabilities the server confirmed with "* ENABLED".
func (c *Conn) Enabled() []string { return append([]string(nil), c.enabled...) }

// Compressed reports whether COMPRESS DEFLATE is active.
func (c *Conn) Compressed() bool { return c.zw != nil }

// Err returns nil while the Conn is usable, else an error matching ErrBroken that
// wraps the cause.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrBroken, c.broken)
}

// setBroken records the first cause.
func (c *Conn) setBroken(err error) {
	c.mu.Lock()
	if c.broken == nil {
		c.broken = err
	}
	c.mu.Unlock()
}

// Close closes the connection without EXIT. It is safe to call from another goroutine
// to abort a call in progress, and more than once.
func (c *Conn) Close() error {
	c.dc.cancel()
	c.setBroken(ErrClosed)
	return c.dc.Conn.Close()
}

func (c *Conn) markBroken(err error) {
	c.setBroken(err)
	c.dc.cancel()
	_ = c.dc.Conn.Close()
}

// begin starts a call: it refuses a broken or busy Conn and arms the context.
func (c *Conn) begin(ctx context.Context, cmd string) error {
	if err := c.Err(); err != nil {
		return err
	}
	if c.busy {
		return ErrBusy
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("csync: %w", err)
	}
	dl, _ := ctx.Deadline()
	c.dc.callDeadline = dl
	c.cmd, c.started = cmd, time.Now()
	c.stop = context.AfterFunc(ctx, c.dc.cancel)
	return nil
}

// end finishes a call: a cancelled context, an I/O or protocol error, BAD, BYE or a
// fatal error breaks the Conn; a NO reply or a field-conversion error does not.
func (c *Conn) end(ctx context.Context, err error) error {
	if c.observe != nil {
		defer func() { c.observe(c.cmd, time.Since(c.started), err) }()
	}
	stopped := c.stop()
	c.stop = nil
	c.dc.callDeadline = time.Time{}
	if !stopped {
		cause := context.Cause(ctx)
		c.markBroken(cause)
		if err != nil {
			return fmt.Errorf("csync: %w (%v)", cause, err)
		}
		return nil
	}
	if err != nil && breaks(err) {
		c.markBroken(err)
	}
	return err
}

// breaks reports whether err leaves the session unusable. NO replies do not, except
// IMAP_PROTOCOL_ERROR: the server did not understand what we sent, so client and
// server disagree about the protocol and the session should not be trusted further.
func breaks(err error) bool {
	var se *ServerError
	if errors.As(err, &se) {
		return se.Status != "NO" || errors.Is(se, ErrProtocol)
	}
	return !errors.Is(err, ErrType) && !errors.Is(err, ErrNoFile)
}

// call runs fn as one call under ctx.
func (c *Conn) call(ctx context.Context, cmd string, fn func() error) error {
	if err := c.begin(ctx, cmd); err != nil {
		return err
	}
	return c.end(ctx, fn())
}

func (c *Conn) flush() error {
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("csync: write: %w", err)
	}
	if c.zw != nil {
		if err := c.zw.Flush(); err != nil {
			return fmt.Errorf("csync: write: %w", err)
		}
	}
	return nil
}

// readLine reads one CRLF-terminated line (bounded by MaxLine), without the CRLF.
func (c *Conn) readLine() (string, error) {
	var line []byte
	for {
		frag, err := c.br.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > c.lim.MaxLine {
			return "", fmt.Errorf("%w: line longer than %d bytes", ErrGarbled, c.lim.MaxLine)
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			return "", fmt.Errorf("csync: connection closed by server: %w", io.ErrUnexpectedEOF)
		}
		return "", fmt.Errorf("csync: read: %w", err)
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return string(line), nil
}

func (c *Conn) readBanner() error {
	caps := Capabilities{}
	for {
		line, err := c.readLine()
		if err != nil {
			return fmt.Errorf("reading banner: %w", err)
		}
		caps.Lines = append(caps.Lines, line)
		if len(caps.Lines) > 64 {
			return fmt.Errorf("%w: banner too long", ErrGarbled)
		}
		rest, ok := strings.CutPrefix(line, "* ")
		if !ok {
			if okLine, err := parseStatus(line); !okLine {
				return fmt.Errorf("banner: %w", err)
			}
			return fmt.Errorf("%w: banner line %q", ErrGarbled, truncate(line))
		}
		words := strings.Fields(rest)
		if len(words) == 0 {
			return fmt.Errorf("%w: empty banner line", ErrGarbled)
		}
		switch strings.ToUpper(words[0]) {
		case "OK":
			caps.Greeting = strings.TrimSpace(strings.TrimPrefix(rest, words[0]))
			c.caps = caps
			return nil
		case "SASL":
			caps.SASL = words[1:]
		case "STARTTLS":
			caps.StartTLS = true
		case "COMPRESS":
			for _, w := range words[1:] {
				if strings.EqualFold(w, "DEFLATE") {
					caps.Compress = true
				}
			}
		case "SIEVE-MAILBOX":
			caps.SieveMailbox = true
		case "FATAL":
			return &ServerError{Status: "FATAL", Text: rest, Line: line}
		}
	}
}

// simple sends a payload-less command and expects OK.
func (c *Conn) simple(cmd string) error {
	if _, err := c.bw.WriteString(cmd + "\r\n"); err != nil {
		return fmt.Errorf("csync: write: %w", err)
	}
	if err := c.flush(); err != nil {
		return err
	}
	return c.readResponse(cmd, nil)
}

func (c *Conn) startTLS(ctx context.Context, cfg *tls.Config) error {
	if !c.caps.StartTLS {
		return fmt.Errorf("%w: STARTTLS", ErrNoCapability)
	}
	return c.call(ctx, "STARTTLS", func() error {
		if err := c.simple("STARTTLS"); err != nil {
			return err
		}
		if c.br.Buffered() != 0 {
			return fmt.Errorf("%w: data after STARTTLS reply", ErrGarbled)
		}
		if err := c.handshake(ctx, cfg); err != nil {
			return err
		}
		return c.readBanner()
	})
}

// handshake turns the connection into TLS with cfg (the server's certificate verified
// as cfg says) and reads and writes through it from now on.
func (c *Conn) handshake(ctx context.Context, cfg *tls.Config) error {
	tc := tls.Client(c.dc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("csync: TLS handshake: %w", err)
	}
	c.setStreams(tc)
	return nil
}

func (c *Conn) authenticate(ctx context.Context, user, pass string) error {
	if len(c.caps.SASL) > 0 && !containsFold(c.caps.SASL, "PLAIN") {
		return fmt.Errorf("%w: SASL PLAIN (offered: %s)", ErrNoCapability, strings.Join(c.caps.SASL, " "))
	}
	resp := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	return c.call(ctx, "AUTHENTICATE", func() error {
		if _, err := c.bw.WriteString("AUTHENTICATE PLAIN " + resp + "\r\n"); err != nil {
			return fmt.Errorf("csync: write: %w", err)
		}
		if err := c.flush(); err != nil {
			return err
		}
		err := c.readResponse("AUTHENTICATE", nil)
		var se *ServerError
		if errors.As(err, &se) && se.Status == "NO" {
			se.kind = ErrAuthFailed
		}
		return err
	})
}

func (c *Conn) compress(ctx context.Context) error {
	if !c.caps.Compress {
		return fmt.Errorf("%w: COMPRESS DEFLATE", ErrNoCapability)
	}
	return c.call(ctx, "COMPRESS", func() error {
		if err := c.simple("COMPRESS DEFLATE"); err != nil {
			return err
		}
		if c.br.Buffered() != 0 {
			return fmt.Errorf("%w: data after COMPRESS reply", ErrGarbled)
		}
		// Raw DEFLATE both ways (windowBits -15), sync-flushed after every command.
		zw, err := flate.NewWriter(c.nc, flate.BestSpeed)
		if err != nil {
			return err
		}
		c.zw = zw
		c.br = bufio.NewReaderSize(flate.NewReader(c.nc), 64<<10)
		c.bw = bufio.NewWriterSize(zw, 64<<10)
		return nil
	})
}

func containsFold(ss []string, s string) bool {
	for _, x := range ss {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// Noop sends NOOP. A non-admin gets ErrPermissionDenied even for this.
func (c *Conn) Noop(ctx context.Context) error {
	return c.call(ctx, "NOOP", func() error { return c.simple("NOOP") })
}

// Restart sends RESTART, which makes the server drop files staged by APPLY
// RESERVE/MESSAGE.
func (c *Conn) Restart(ctx context.Context) error {
	return c.call(ctx, "RESTART", func() error { return c.simple("RESTART") })
}

// Exit sends EXIT, waits for "OK Finished" and closes the connection.
func (c *Conn) Exit(ctx context.Context) error {
	err := c.call(ctx, "EXIT", func() error { return c.simple("EXIT") })
	c.setBroken(ErrClosed)
	_ = c.dc.Conn.Close()
	return err
}

// dataFunc receives one "* KEY value" line of a reply.
type dataFunc func(key string, v Value) error

// readResponse reads data lines until the status line. Errors from fn are remembered
// and returned after the status line was read, so the Conn stays in step.
func (c *Conn) readResponse(cmd string, fn dataFunc) error {
	dec := newDecoder(c.br, c.lim)
	var fnErr error
	for {
		b, err := c.br.Peek(2)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("csync: %s: connection closed by server before the reply ended: %w", cmd, io.ErrUnexpectedEOF)
			}
			return fmt.Errorf("csync: %s: read: %w", cmd, err)
		}
		if string(b) != "* " {
			line, err := c.readLine()
			if err != nil {
				return fmt.Errorf("csync: %s: %w", cmd, err)
			}
			ok, err := parseStatus(line)
			if se, isSE := err.(*ServerError); isSE {
				se.Command = cmd
			} else if err != nil {
				return fmt.Errorf("csync: %s: %w", cmd, err)
			}
			if ok {
				return fnErr
			}
			return err
		}
		_, _ = c.br.Discard(2)
		if p, _ := c.br.Peek(1); len(p) == 1 && p[0] == 'F' {
			if p, _ := c.br.Peek(len("Fatal error:")); string(p) == "Fatal error:" {
				line, _ := c.readLine()
				return &ServerError{Status: "FATAL", Text: line, Line: "* " + line, Command: cmd}
			}
		}
		key, v, err := dec.dataLine()
		if err != nil {
			return fmt.Errorf("csync: %s reply: %w", cmd, err)
		}
		if fn != nil && fnErr == nil {
			fnErr = fn(key, v)
		}
	}
}

// do sends `VERB KEY arg` and reads the reply, passing data lines to fn.
func (c *Conn) do(ctx context.Context, verb, key string, arg Value, fn dataFunc) error {
	line, err := c.encodeCommand(verb, key, arg)
	if err != nil {
		return err // nothing was sent; the Conn stays usable
	}
	cmd := verb + " " + key
	return c.call(ctx, cmd, func() error {
		if _, err := c.bw.Write(line); err != nil {
			return fmt.Errorf("csync: write: %w", err)
		}
		if err := c.flush(); err != nil {
			return err
		}
		return c.readResponse(cmd, fn)
	})
}

func (c *Conn) encodeCommand(verb, key string, arg Value) ([]byte, error) {
	if !validAtom(key) {
		return nil, fmt.Errorf("%w: bad command key %q", ErrEncode, key)
	}
	b := append(c.wbuf[:0], verb...)
	b = append(b, ' ')
	b = append(b, key...)
	b = append(b, ' ')
	b, err := AppendValue(b, arg)
	if err != nil {
		return nil, fmt.Errorf("csync: %s %s: %w", verb, key, err)
	}
	b = append(b, '\r', '\n')
	if cap(b) <= 1<<20 {
		c.wbuf = b
	}
	return b, nil
}

// enableCaps sends APPLY CAPABILITIES and returns what the server enabled.
func (c *Conn) enableCaps(ctx context.Context, caps []string) ([]string, error) {
	var enabled []string
	err := c.do(ctx, "APPLY", "CAPABILITIES", StrList(caps), func(key string, v Value) error {
		if key != "ENABLED" {
			return nil
		}
		items, err := v.List()
		if err != nil {
			return err
		}
		for _, it := range items {
			if s, err := it.Str(); err == nil {
				enabled = append(enabled, s)
			}
		}
		return nil
	})
	if err == nil {
		c.enabled = append(c.enabled, enabled...)
	}
	return enabled, err
}
