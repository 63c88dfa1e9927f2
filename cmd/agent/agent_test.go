package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/agent/api"
	"github.com/cyrusrepl/cyrusrepl/internal/mboxdb"
	"github.com/cyrusrepl/cyrusrepl/internal/setupcheck"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/agenttest"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/tlstest"
)

// hc is a raw HTTP client of one agent, with its own connections (a consumer).
type hc struct {
	a    *agenttest.Agent
	c    *http.Client
	name string
}

func newHC(a *agenttest.Agent, name string) *hc {
	return &hc{a: a, name: name, c: &http.Client{Transport: &http.Transport{TLSClientConfig: a.ClientTLS()}}}
}

func (h *hc) req(t *testing.T, method, path, token string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, h.a.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set(api.HeaderConsumer, h.name)
	req.Header.Set(api.HeaderOwner, "owner-"+h.name)
	resp, err := h.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// do sends a request and reads the whole answer.
func (h *hc) do(t *testing.T, method, path string, body []byte) (int, string) {
	t.Helper()
	resp := h.req(t, method, path, h.a.Token(t), body)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// lease is an open lease answer.
type lease struct {
	api.LeaseHeader
	content []byte
	resp    *http.Response
}

// lease asks for a lease (long-poll up to wait): nil on 204.
func (h *hc) lease(t *testing.T, wait string) *lease {
	t.Helper()
	resp := h.req(t, http.MethodPost, api.PathLease+"?wait="+wait, h.a.Token(t), nil)
	if resp.StatusCode == http.StatusNoContent {
		resp.Body.Close()
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("lease: %d %s", resp.StatusCode, b)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	l := &lease{resp: resp}
	if err := json.Unmarshal(line, &l.LeaseHeader); err != nil {
		t.Fatalf("lease header %q: %v", line, err)
	}
	l.content = make([]byte, l.Size)
	if _, err := io.ReadFull(br, l.content); err != nil {
		t.Fatalf("lease content: %v", err)
	}
	return l
}

func (h *hc) ack(t *testing.T, l *lease) int {
	t.Helper()
	code, _ := h.do(t, http.MethodPost, api.PathAck+"?lease="+l.Lease, nil)
	return code
}

func startPair(t *testing.T) (*cyruspair.Pair, *agenttest.Agent) {
	t.Helper()
	p := cyruspair.Start(t, cyruspair.Options{})
	return p, agenttest.Start(t, p.Master, p.Channel)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestAgentLeaseLostIsHandedOutAgain: a lease whose connection closes unacknowledged
// (the replicator was killed) leaves log-run, and the next lease hands the same entries
// out again, reprocessed; an acknowledgement of the lost lease is refused and removes
// nothing; the new one's acknowledgement removes log-run.
func TestAgentLeaseLostIsHandedOutAgain(t *testing.T) {
	p, a := startPair(t)
	p.Master.CreateUser(t, "alice")
	p.Master.Deliver(t, "alice", cyruspair.Message("one", "x"))
	dir := p.Master.SyncLogDir(p.Channel)
	first := newHC(a, "first")
	l1 := first.lease(t, "5s")
	if l1 == nil || l1.Reprocessed || !bytes.Contains(l1.content, []byte("alice")) {
		t.Fatalf("first lease: %+v %q", l1, l1.content)
	}
	if !exists(filepath.Join(dir, "log-run")) || exists(filepath.Join(dir, "log")) {
		t.Fatal("after the lease: want log-run and no log")
	}
	l1.resp.Body.Close()
	first.c.CloseIdleConnections() // the replicator is gone: its connections close
	second := newHC(a, "second")
	var l2 *lease
	waitFor(t, 10*time.Second, "the lost lease handed out again", func() bool {
		resp := second.req(t, http.MethodPost, api.PathLease+"?wait=0s", a.Token(t), nil)
		resp.Body.Close()
		return resp.StatusCode != http.StatusConflict
	})
	l2 = second.lease(t, "5s")
	if l2 == nil || !l2.Reprocessed || !bytes.Equal(l2.content, l1.content) {
		t.Fatalf("second lease: want the same entries, reprocessed; got %+v %q", l2, l2.content)
	}
	if code := second.ack(t, l1); code != http.StatusConflict || !exists(filepath.Join(dir, "log-run")) {
		t.Fatalf("ack of the lost lease: %d (want 409), log-run kept: %v", code, exists(filepath.Join(dir, "log-run")))
	}
	if code := second.ack(t, l2); code != http.StatusNoContent {
		t.Fatalf("ack: %d", code)
	}
	l2.resp.Body.Close()
	if exists(filepath.Join(dir, "log-run")) {
		t.Fatal("log-run still there after the acknowledgement")
	}
	if l := second.lease(t, "100ms"); l != nil {
		t.Fatalf("nothing written since: want 204, got a lease of %q", l.content)
	}
}

// TestAgentSIGKILLMidLease: the agent killed while a lease is out loses nothing: after
// a restart the same entries come again, and the replicator replicates them.
func TestAgentSIGKILLMidLease(t *testing.T) {
	p, a := startPair(t)
	p.Master.CreateUser(t, "bob")
	p.Master.Deliver(t, "bob", cyruspair.Message("before the kill", "x"))
	h := newHC(a, "replicator")
	l1 := h.lease(t, "5s")
	if l1 == nil {
		t.Fatal("no lease")
	}
	a.Kill(syscall.SIGKILL)
	if _, err := io.ReadAll(l1.resp.Body); err == nil {
		t.Log("the lease's answer ended cleanly with the agent killed")
	}
	p.Master.Deliver(t, "bob", cyruspair.Message("while the agent is down", "y"))
	a.Restart(t)
	h = newHC(a, "replicator-again")
	l2 := h.lease(t, "5s")
	if l2 == nil || !l2.Reprocessed || !bytes.Equal(l2.content, l1.content) {
		t.Fatalf("after the restart: want the killed lease's entries again; got %+v", l2)
	}
	l2.resp.Body.Close()
	h.c.CloseIdleConnections()
	// The whole channel through a replicator: every message reaches the replica.
	runReplicator(t, p, a, "rolling", "--once", "--retry-base", "1ms")
	if st := p.Replica.Status(t, "bob", "INBOX"); st.Messages != 2 {
		t.Fatalf("bob's INBOX on the replica: %d messages, want 2", st.Messages)
	}
}

// TestAgentSecondConsumerRefused: while one consumer long-polls, another owner gets 409
// naming the holder; once the holder's connections close, the other may consume.
func TestAgentSecondConsumerRefused(t *testing.T) {
	_, a := startPair(t)
	holder := newHC(a, "replicator-A")
	holder.drain(t)
	done := make(chan *lease)
	go func() {
		resp := holder.req(t, http.MethodPost, api.PathLease+"?wait=2s", a.Token(t), nil)
		resp.Body.Close()
		done <- nil
	}()
	other := newHC(a, "replicator-B")
	var code int
	var msg string
	waitFor(t, 10*time.Second, "the holder's long-poll to start", func() bool {
		code, msg = other.do(t, http.MethodPost, api.PathLease+"?wait=0s", nil)
		return code == http.StatusConflict
	})
	if !strings.Contains(msg, "replicator-A") || !strings.Contains(msg, "one consumer per channel") {
		t.Fatalf("refusal does not name the holder: %s", msg)
	}
	<-done
	// Between two long-polls the holder keeps its connection: still refused.
	if code, msg = other.do(t, http.MethodPost, api.PathLease+"?wait=0s", nil); code != http.StatusConflict {
		t.Fatalf("between the holder's polls: %d %s, want 409", code, msg)
	}
	waitFor(t, 10*time.Second, "the channel freed once the holder's connection closed", func() bool {
		// The transport hands a finished connection back to its idle pool from its own
		// goroutine, so close idle connections on every try, not once.
		holder.c.CloseIdleConnections()
		code, _ = other.do(t, http.MethodPost, api.PathLease+"?wait=0s", nil)
		return code == http.StatusNoContent
	})
}

// TestAgentTokenRotation: a new token written into the token file takes effect at the
// next request, without a restart; the old one is refused from then on.
func TestAgentTokenRotation(t *testing.T) {
	_, a := startPair(t)
	h := newHC(a, "r")
	old := a.Token(t)
	if resp := h.req(t, http.MethodGet, api.PathConfig, old, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("old token before the rotation: %d", resp.StatusCode)
	} else {
		resp.Body.Close()
	}
	a.SetToken(t, "rotated-token")
	for _, c := range []struct {
		tok  string
		want int
	}{{old, http.StatusUnauthorized}, {"rotated-token", http.StatusOK}, {"", http.StatusUnauthorized}, {"rotated-token-x", http.StatusUnauthorized}} {
		resp := h.req(t, http.MethodGet, api.PathConfig, c.tok, nil)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("token %q after the rotation: %d, want %d", c.tok, resp.StatusCode, c.want)
		}
	}
	// A rewrite in place (same inode) counts too.
	if err := os.WriteFile(a.TokenFile, []byte("in-place\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if resp := h.req(t, http.MethodGet, api.PathConfig, "in-place", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("token rewritten in place: %d", resp.StatusCode)
	}
}

// TestAgentPathTraversal: paths, queries and names that try to reach a file get 4xx
// and nothing of the file.
func TestAgentPathTraversal(t *testing.T) {
	p, a := startPair(t)
	secret := "SECRET-" + time.Now().Format(time.RFC3339Nano)
	if err := os.WriteFile(filepath.Join(p.Master.ConfigDir, "secret.txt"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHC(a, "r")
	for _, path := range []string{
		"/v1/../secret.txt", "/v1/config/../../secret.txt", "/v1/%2e%2e/%2e%2e/secret.txt", "/secret.txt",
		"/v1/channel/lease/../../../../etc/passwd", "//v1/config", "/v1/config/", "/v1/mailboxes/users/..%2f..%2fsecret.txt",
		"/v1/channel/ack?lease=../../secret.txt", "/v1/channel/lease?wait=1s&channel=../../secret.txt",
	} {
		req, _ := http.NewRequest(http.MethodGet, a.URL+"/", nil)
		req.URL.Opaque = strings.SplitN(path, "?", 2)[0] // sent as written, not cleaned
		if _, q, ok := strings.Cut(path, "?"); ok {
			req.URL.RawQuery = q
		}
		req.Header.Set("Authorization", "Bearer "+a.Token(t))
		resp, err := h.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode > 499 || strings.Contains(string(b), secret) {
			t.Errorf("%s: %d %q, want 4xx without the file", path, resp.StatusCode, b)
		}
	}
	for _, body := range []string{
		`{"users":["../../secret.txt"]}`, `{"users":["alice/../../secret.txt"]}`, `{"uniqueids":["../secret.txt"]}`,
		`{"users":["a\u0000b"]}`, `{"users":["alice"],"path":"/etc/passwd"}`, `{"users":["alice"]}{}`,
	} {
		code, out := h.do(t, http.MethodPost, api.PathLookup, []byte(body))
		if code != http.StatusBadRequest || strings.Contains(out, secret) {
			t.Errorf("lookup %s: %d %s, want 400", body, code, out)
		}
	}
}

// TestAgentServesTheMaster: config, users, lookups and metrics answer what the
// master's files hold (compared with the replicator's own reader of the same files).
func TestAgentServesTheMaster(t *testing.T) {
	p, a := startPair(t)
	m := p.Master
	for _, u := range []string{"alice", "bob"} {
		m.CreateUser(t, u)
		m.CreateFolder(t, u, "Work")
	}
	m.Delete(t, "bob", "Work")
	m.Deliver(t, "alice", cyruspair.Message("hi", "x"))
	h := newHC(a, "r")

	code, body := h.do(t, http.MethodGet, api.PathConfig, nil)
	var cfg api.Config
	if code != http.StatusOK || json.Unmarshal([]byte(body), &cfg) != nil {
		t.Fatalf("config: %d %s", code, body)
	}
	if cfg.APIVersion != "v1" || !cfg.SyncLog || cfg.Channel != p.Channel || !slices.Contains(cfg.SyncLogChannels, p.Channel) ||
		cfg.ConfigDirectory != m.ConfigDir || cfg.DeletedPrefix != p.DeletedPrefix || cfg.ChannelLastWrite == "" || len(cfg.Partitions) == 0 {
		t.Errorf("config: %s", body)
	}
	if _, err := time.Parse(time.RFC3339Nano, cfg.ChannelLastWrite); err != nil {
		t.Errorf("channelLastWrite %q: %v", cfg.ChannelLastWrite, err)
	}
	// The master's own last change, as the local channel-silence check sees it.
	if got, err := time.Parse(time.RFC3339Nano, cfg.MasterLastChange); err != nil || !got.Equal(setupcheck.MasterLastChange(m.ConfigDir)) {
		t.Errorf("masterLastChange %q (%v), want %v", cfg.MasterLastChange, err, setupcheck.MasterLastChange(m.ConfigDir))
	}

	reader, err := mboxdb.NewReader("/nonexistent", m.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	wantUsers, err := reader.Users(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	code, body = h.do(t, http.MethodGet, api.PathUsers, nil)
	var users api.Users
	if code != http.StatusOK || json.Unmarshal([]byte(body), &users) != nil || !slices.Equal(users.Users, wantUsers) || len(wantUsers) != 2 {
		t.Errorf("users: %d %s, want %v", code, body, wantUsers)
	}
	want, err := reader.ForUsers(context.Background(), []string{"alice", "bob"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	code, body = h.do(t, http.MethodPost, api.PathLookup, []byte(`{"users":["alice","bob"]}`))
	var ev api.Evidence
	if code != http.StatusOK || json.Unmarshal([]byte(body), &ev) != nil || len(ev.Live) != len(want.Live) || len(ev.Live) < 3 {
		t.Fatalf("lookup: %d %s, want %d live folders", code, body, len(want.Live))
	}
	for id, name := range want.Live {
		if ev.Live[id] != name {
			t.Errorf("lookup: %s live at %q, want %q", id, ev.Live[id], name)
		}
	}

	code, body = h.do(t, http.MethodGet, api.PathMetrics, nil)
	if code != http.StatusOK || !strings.Contains(body, "cyrusrepl_agent_backlog_entries ") ||
		strings.Contains(body, "cyrusrepl_agent_backlog_entries 0\n") || !strings.Contains(body, `cyrusrepl_agent_requests_total{endpoint="/v1/config",code="200"} 1`) {
		t.Errorf("metrics:\n%s", body)
	}
	for _, path := range []string{api.PathHealthz, api.PathReadyz} {
		resp := h.req(t, http.MethodGet, path, "", nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s without a token: %d", path, resp.StatusCode)
		}
	}
	resp := h.req(t, http.MethodGet, api.PathMetrics, "", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("metrics without a token: %d, want 401", resp.StatusCode)
	}
	// audit through the agent: the user list and the evidence come from it.
	out := runReplicator(t, p, a, "audit")
	for _, u := range []string{"alice", "bob"} {
		if !strings.Contains(out, `"user":"`+u+`"`) {
			t.Errorf("audit through the agent did not walk %s:\n%s", u, out)
		}
	}
	if st := p.Replica.Status(t, "alice", "INBOX"); st.Messages != 1 {
		t.Errorf("alice's INBOX on the replica after the audit: %d messages", st.Messages)
	}
	// No plaintext listener: a plain HTTP request gets no answer of the API.
	if r, err := http.Get("http://" + a.Addr + api.PathConfig); err == nil {
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP answered: %s", b)
		}
	}
}

// TestAgentLongPoll: a lease request waiting on an empty channel returns the entry
// Cyrus writes meanwhile (not after its wait ran out).
func TestAgentLongPoll(t *testing.T) {
	p, a := startPair(t)
	p.Master.CreateUser(t, "carol")
	h := newHC(a, "r")
	h.drain(t)
	got := make(chan *lease, 1)
	go func() { got <- h.lease(t, "10s") }()
	time.Sleep(200 * time.Millisecond) // the request is waiting
	p.Master.Deliver(t, "carol", cyruspair.Message("wake", "x"))
	l := <-got
	if l == nil || !bytes.Contains(l.content, []byte("carol")) {
		t.Fatalf("long-poll: %+v", l)
	}
	l.resp.Body.Close()
}

// TestAgentMutualTLS: with --client-ca, a client without a certificate signed by it is
// refused in the handshake, one with such a certificate is served; the replicator
// (the real binary) without --agent-client-cert, or with a certificate of another CA,
// exits 2 with one line saying the agent refused the TLS handshake, and with the
// right certificate runs.
func TestAgentMutualTLS(t *testing.T) {
	p := cyruspair.Start(t, cyruspair.Options{})
	clientCA := tlstest.NewCA(t, "clients")
	dir := t.TempDir()
	a := agenttest.Start(t, p.Master, p.Channel, "--client-ca", clientCA.WriteFile(t, dir))
	h := newHC(a, "r")
	if _, err := h.c.Get(a.URL + api.PathHealthz); err == nil {
		t.Fatal("served a client without a certificate")
	}
	crt, key := a.ClientCert(t, clientCA, "replicator")
	pair, err := tls.LoadX509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := a.ClientTLS()
	cfg.Certificates = []tls.Certificate{pair}
	h.c = &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	if code, body := h.do(t, http.MethodGet, api.PathConfig, nil); code != http.StatusOK {
		t.Fatalf("with a client certificate: %d %s", code, body)
	}
	otherCrt, otherKey := a.ClientCert(t, tlstest.NewCA(t, "other-clients"), "stranger")
	for _, tc := range []struct {
		name  string
		extra []string
	}{
		{"no client certificate", nil},
		{"a certificate of another CA", []string{"--agent-client-cert", otherCrt, "--agent-client-key", otherKey}},
	} {
		code, out := runReplicatorCode(t, p, a, "verify", append([]string{"--user", "nobody"}, tc.extra...)...)
		if code != 2 || !strings.Contains(out, "refused the TLS handshake") || !strings.Contains(out, "--agent-client-cert") {
			t.Errorf("replicator with %s: exit %d, want 2 and a line saying the agent refused the TLS handshake:\n%s", tc.name, code, out)
		}
	}
	code, out := runReplicatorCode(t, p, a, "verify", "--user", "nobody", "--agent-client-cert", crt, "--agent-client-key", key)
	if code == 2 || strings.Contains(out, "TLS") {
		t.Fatalf("replicator with a client certificate: exit %d\n%s", code, out)
	}
}

// drain consumes what the pair's set-up logged.
func (h *hc) drain(t *testing.T) {
	t.Helper()
	for l := h.lease(t, "0s"); l != nil; l = h.lease(t, "0s") {
		if code := h.ack(t, l); code != http.StatusNoContent {
			t.Fatalf("drain: ack %d", code)
		}
		l.resp.Body.Close()
	}
}

func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", bound, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
