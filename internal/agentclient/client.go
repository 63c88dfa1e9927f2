// Package agentclient is the replicator's side of the master agent's API
// (docs/agent.md): a sync-log source (leases) and a mailboxes.db source, both over
// HTTPS with a bearer token.
package agentclient

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/agent/api"
	"github.com/cyrusrepl/cyrusrepl/internal/mboxdb"
	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
)

// Options configure a Client.
type Options struct {
	URL        string // https://HOST:PORT
	TokenFile  string // the bearer token, read at every request (rotation needs no restart)
	CAFile     string // PEM CA bundle to verify the agent (default: system roots)
	ClientCert string // optional client certificate and key, for an agent with --client-ca
	ClientKey  string
	// Consumer and Owner name this replicator to the agent (one consumer per channel):
	// Consumer for people, Owner the identity of its state directory.
	Consumer, Owner string
	// Wait bounds one long-poll for entries (0: api.MaxWait; see WithoutWait).
	Wait time.Duration
}

// Client talks to one agent. Safe for concurrent use.
type Client struct {
	o      Options
	base   *url.URL
	http   *http.Client
	noWait bool
}

// WithoutWait is the same client with Take not waiting for entries: it takes what is
// pending now, else returns ErrNoLog at once (rolling --once).
func (c *Client) WithoutWait() *Client {
	n := *c
	n.noWait = true
	return &n
}

// New checks the options and builds the client (no request is made).
func New(o Options) (*Client, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
		// Not the URL itself: it may carry a password in its user information.
		return nil, errors.New("agent URL: want https://HOST:PORT (no user information, path, query or fragment)")
	}
	u.Path = ""
	if o.TokenFile == "" {
		return nil, errors.New("agent: a token file is needed")
	}
	if _, err := readToken(o.TokenFile); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("agent CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("agent CA file %s holds no PEM certificate", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if o.ClientCert != "" || o.ClientKey != "" {
		pair, err := tls.LoadX509KeyPair(o.ClientCert, o.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("agent client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if o.Wait <= 0 || o.Wait > api.MaxWait {
		o.Wait = api.MaxWait
	}
	tr := &http.Transport{
		TLSClientConfig:       cfg,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: api.MaxWait + 20*time.Second,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}
	return &Client{o: o, base: u, http: &http.Client{Transport: tr}}, nil
}

// readToken reads the bearer token; its failures are Unauthorized problems (the
// replicator has no token to present).
func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", &tokenError{fmt.Errorf("agent token file: %w", err)}
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", &tokenError{fmt.Errorf("agent token file %s is empty", path)}
	}
	return tok, nil
}

type tokenError struct{ err error }

func (e *tokenError) Error() string { return e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// do sends one request and returns the answer when its status is one of ok; any other
// status is an error carrying the agent's message. The caller closes the body.
func (c *Client) do(ctx context.Context, method, path, query string, body any, ok ...int) (*http.Response, error) {
	tok, err := readToken(c.o.TokenFile)
	if err != nil {
		return nil, err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := *c.base
	u.Path, u.RawQuery = path, query
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set(api.HeaderConsumer, c.o.Consumer)
	req.Header.Set(api.HeaderOwner, c.o.Owner)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.describe(err)
	}
	for _, code := range ok {
		if resp.StatusCode == code {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	var e api.Error
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	return nil, &StatusError{URL: c.o.URL, Path: path, Code: resp.StatusCode, Msg: msg}
}

// StatusError is an agent's refusal.
type StatusError struct {
	URL  string
	Path string // the API path asked
	Code int
	Msg  string
}

func (e *StatusError) Error() string {
	what := http.StatusText(e.Code)
	switch e.Code {
	case http.StatusUnauthorized:
		what = "wrong or missing token (check --agent-token-file)"
	case http.StatusForbidden:
		what = "refused (check --agent-token-file and the client certificate)"
	}
	return fmt.Sprintf("agent %s: %d %s: %s", e.URL, e.Code, what, e.Msg)
}

// TransportError is a request that got no answer from the agent: it could not be
// reached, or the TLS handshake failed.
type TransportError struct {
	URL     string
	Problem Problem // ProblemUnreachable or ProblemTLS
	What    string  // what went wrong, for people
	Err     error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("agent %s: %s: %v", e.URL, e.What, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// describe turns a transport error into one line saying what went wrong where.
func (c *Client) describe(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	what, problem := "unreachable", ProblemUnreachable
	var ce *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var rh tls.RecordHeaderError
	var op *net.OpError
	switch {
	case errors.As(err, &ce), errors.As(err, &ua), errors.As(err, &he):
		what, problem = "its TLS certificate is not trusted (check --agent-ca-file and that the certificate names the URL's host)", ProblemTLS
	case errors.As(err, &rh):
		what, problem = "it does not speak TLS at that address", ProblemTLS
	case errors.As(err, &op) && op.Op == "remote error":
		// A TLS alert from the agent: with --client-ca it refuses a client without a
		// certificate it signed ("certificate required", "bad certificate", "unknown
		// certificate authority").
		what, problem = "it refused the TLS handshake (an agent with --client-ca needs --agent-client-cert and --agent-client-key signed by that CA)", ProblemTLS
	}
	return &TransportError{URL: c.o.URL, Problem: problem, What: what, Err: err}
}

// Problem names why the agent could not be had, as the operator's condition reason
// says it.
type Problem string

// The problems ProblemOf tells apart.
const (
	ProblemUnreachable  Problem = "Unreachable"  // no connection (refused, timed out, no route, DNS)
	ProblemUnauthorized Problem = "Unauthorized" // 401/403: the token (or certificate) was refused, or there is no token to send
	ProblemTLS          Problem = "TLSFailed"    // the handshake failed either way (untrusted certificate, client certificate refused)
	ProblemChannelHeld  Problem = "ChannelHeld"  // 409 on a lease: another consumer holds the channel
	ProblemAgentError   Problem = "AgentError"   // any other error answer (e.g. 500: it cannot read the master's files)
)

// ProblemOf classifies an error of this client: which problem kept the agent from
// serving, or "" when err is none of them (nil, a cut context, a failure of the
// caller's own handler, an acknowledgement of a lease that was lost).
func ProblemOf(err error) Problem {
	var te *TransportError
	var se *StatusError
	var tk *tokenError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &te):
		return te.Problem
	case errors.As(err, &tk):
		return ProblemUnauthorized
	case errors.As(err, &se):
		switch {
		case se.Code == http.StatusUnauthorized || se.Code == http.StatusForbidden:
			return ProblemUnauthorized
		case se.Code == http.StatusConflict && se.Path == api.PathLease:
			return ProblemChannelHeld
		case se.Code == http.StatusConflict:
			return "" // an acknowledgement of a lost lease: its entries come again
		}
		return ProblemAgentError
	}
	return ""
}

// Config is GET /v1/config: the master's settings.
func (c *Client) Config(ctx context.Context) (api.Config, error) {
	var cfg api.Config
	err := c.getJSON(ctx, api.PathConfig, &cfg)
	return cfg, err
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path, "", nil, http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("agent %s %s: %w", c.o.URL, path, err)
	}
	return nil
}

// Backlog is the channel's entries not yet taken and the date of the oldest.
func (c *Client) Backlog(ctx context.Context) (synclog.Pending, error) {
	var b api.Backlog
	if err := c.getJSON(ctx, api.PathBacklog, &b); err != nil {
		return synclog.Pending{}, err
	}
	p := synclog.Pending{Entries: b.Entries}
	if b.Since != "" {
		t, err := time.Parse(time.RFC3339Nano, b.Since)
		if err != nil {
			return p, fmt.Errorf("agent %s backlog: since %q: %w", c.o.URL, b.Since, err)
		}
		p.Since = t
	}
	return p, nil
}

// LongPolls: Take waits for entries itself (unless WithoutWait).
func (c *Client) LongPolls() bool { return !c.noWait }

// Take leases the channel's pending entries (long-polling up to Wait, cut short when
// ctx ends: ErrNoLog), streams them into a scanner for handle, and acknowledges the
// lease only when handle returned nil having read every entry. Otherwise the lease is
// dropped unacknowledged and the agent hands the same entries out again.
func (c *Client) Take(ctx context.Context, handle func(s *synclog.Scanner, reprocessed bool) error) error {
	// The lease's answer stays open while handle runs: it must outlive ctx's cut of the
	// long-poll, so its request has its own context, tied to ctx only until the lease
	// arrives.
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	wait := c.o.Wait
	if c.noWait {
		wait = 0
	}
	query := "wait=" + wait.String()
	resp, err := c.do(rctx, http.MethodPost, api.PathLease, query, nil, http.StatusOK, http.StatusNoContent)
	if err != nil {
		if ctx.Err() != nil {
			return synclog.ErrNoLog // the wait was cut short: nothing taken
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return synclog.ErrNoLog
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadBytes('\n')
	if !stop() || ctx.Err() != nil {
		return synclog.ErrNoLog // cut while the lease came: it is handed out again
	}
	var h api.LeaseHeader
	if err != nil || json.Unmarshal(line, &h) != nil || h.Lease == "" || h.Size < 0 {
		return fmt.Errorf("agent %s: malformed lease answer (%q): %v", c.o.URL, line, err)
	}
	sc := synclog.NewScanner(&exactReader{r: br, left: h.Size})
	if err := handle(sc, h.Reprocessed); err != nil {
		return fmt.Errorf("processing sync log (lease not acknowledged: handed out again): %w", err)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading sync log from the agent (lease not acknowledged: handed out again): %w", err)
	}
	if _, _, more := sc.Next(); more {
		return errors.New("sync log handler stopped before the end of the lease (not acknowledged: handed out again)")
	}
	actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer acancel()
	ack, err := c.do(actx, http.MethodPost, api.PathAck, "lease="+url.QueryEscape(h.Lease), nil, http.StatusNoContent)
	if err != nil {
		return fmt.Errorf("acknowledging the lease (its entries come again): %w", err)
	}
	ack.Body.Close()
	return nil
}

// exactReader reads exactly left bytes: an end of the stream before them is
// io.ErrUnexpectedEOF, never a clean end (a cut lease must not look complete).
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if errors.Is(err, io.EOF) && e.left > 0 {
		return n, io.ErrUnexpectedEOF
	}
	if e.left == 0 && err == nil {
		return n, nil
	}
	return n, err
}

// Users lists the master's users owning live folders (from its mailboxes.db).
func (c *Client) Users(ctx context.Context) ([]string, error) {
	var u api.Users
	if err := c.getJSON(ctx, api.PathUsers, &u); err != nil {
		return nil, err
	}
	return u.Users, nil
}

// ForUsers is the mailboxes.db evidence of users' folders and of uniqueids, as
// replication.MailboxesDBReader.ForUsers reads it; asked in chunks the agent accepts.
func (c *Client) ForUsers(ctx context.Context, users, uniqueids []string) (*mboxdb.DB, error) {
	var ids []string
	for _, id := range uniqueids {
		if id != "" {
			ids = append(ids, id)
		}
	}
	db := &mboxdb.DB{Live: map[string]string{}, Tombstones: map[string]mboxdb.Tombstone{}, History: map[string][]string{}}
	for i := 0; i == 0 || i < len(users) || i < len(ids); i += api.MaxNames {
		req := api.LookupRequest{Users: chunk(users, i), UniqueIDs: chunk(ids, i)}
		resp, err := c.do(ctx, http.MethodPost, api.PathLookup, "", req, http.StatusOK)
		if err != nil {
			return nil, err
		}
		var e api.Evidence
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("agent %s lookup: %w", c.o.URL, err)
		}
		merge(db, e)
	}
	return db, nil
}

func chunk(s []string, from int) []string {
	if from >= len(s) {
		return []string{}
	}
	return s[from:min(from+api.MaxNames, len(s))]
}

func merge(db *mboxdb.DB, e api.Evidence) {
	for k, v := range e.Live {
		db.Live[k] = v
	}
	for k, v := range e.History {
		db.History[k] = v
	}
	for k, t := range e.Tombstones {
		db.Tombstones[k] = mboxdb.Tombstone{UniqueID: t.UniqueID, Name: t.Name, Orphan: t.Orphan, MTime: t.MTime}
	}
	db.Bad = append(db.Bad, e.Bad...)
}

var (
	_ synclog.Source = (*Client)(nil)
	_ mboxdb.Source  = (*Client)(nil)
)
