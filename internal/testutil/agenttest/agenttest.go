// Package agenttest runs the master agent (cmd/agent) beside a test pair's master, as a
// real process on 127.0.0.1 with TLS and a bearer token, and switches the replication
// suites to it: with CYRUSREPL_VIA_AGENT=1 a test's replicator arguments lose
// --sync-log and --master-config and get --agent flags instead (Rewrite).
package agenttest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/tlstest"
)

// Enabled tells whether the suites run through the agent (CYRUSREPL_VIA_AGENT=1).
func Enabled() bool { return os.Getenv("CYRUSREPL_VIA_AGENT") == "1" }

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Bin builds cmd/agent once per test binary (static, as shipped) and returns its path.
func Bin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cyrusrepl-agent-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "agent")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", binPath, "github.com/cyrusrepl/cyrusrepl/cmd/agent")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build cmd/agent: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// RemoveBin removes the binary Bin built (call it from TestMain after m.Run).
func RemoveBin() {
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
}

// Agent is a running agent process.
type Agent struct {
	URL       string
	Addr      string
	TokenFile string
	CAFile    string // the CA that signed the agent's certificate
	CA        *tlstest.CA
	Config    string // the master's imapd.conf
	Channel   string
	Extra     []string // more agent flags (e.g. --client-ca)
	dir       string
	cmd       *exec.Cmd
	done      chan struct{}
	logFile   *os.File
	t         testing.TB
}

// Start runs an agent for the master's channel with a fresh token and certificate; it
// is stopped when the test ends.
func Start(t testing.TB, master *cyruspair.Instance, channel string, extra ...string) *Agent {
	t.Helper()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "agent-ca")
	cert := ca.Valid(t, "127.0.0.1")
	a := &Agent{dir: dir, CA: ca, Config: master.ConfigPath, Channel: channel, Extra: extra, t: t,
		TokenFile: filepath.Join(dir, "token"), CAFile: ca.WriteFile(t, dir)}
	writePair(t, dir, "agent", cert)
	a.SetToken(t, "token-"+fmt.Sprint(time.Now().UnixNano()))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a.Addr = ln.Addr().String()
	ln.Close()
	a.URL = "https://" + a.Addr
	a.Restart(t)
	t.Cleanup(func() { a.Kill(syscall.SIGTERM) })
	return a
}

// writePair writes cert's certificate and key as PEM files <name>.crt and <name>.key.
func writePair(t testing.TB, dir, name string, cert tls.Certificate) {
	t.Helper()
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	crt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), crt, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// ClientCert writes a client certificate signed by ca into the agent's directory and
// returns the paths of the certificate and key.
func (a *Agent) ClientCert(t testing.TB, ca *tlstest.CA, name string) (crt, key string) {
	t.Helper()
	writePair(t, a.dir, name, ca.Client(t, name))
	return filepath.Join(a.dir, name+".crt"), filepath.Join(a.dir, name+".key")
}

// SetToken writes a new token into the token file (atomically, as a Secret update).
func (a *Agent) SetToken(t testing.TB, tok string) {
	t.Helper()
	tmp := a.TokenFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, a.TokenFile); err != nil {
		t.Fatal(err)
	}
}

// Token is the token in the token file.
func (a *Agent) Token(t testing.TB) string {
	b, err := os.ReadFile(a.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// Args are the agent's command line.
func (a *Agent) Args() []string {
	args := []string{"--master-config", a.Config, "--listen", a.Addr, "--token-file", a.TokenFile,
		"--tls-cert", filepath.Join(a.dir, "agent.crt"), "--tls-key", filepath.Join(a.dir, "agent.key")}
	if a.Channel != "" {
		args = append(args, "--channel", a.Channel)
	}
	return append(args, a.Extra...)
}

// Restart starts the agent process (again, after Kill) and waits until it serves.
func (a *Agent) Restart(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(a.dir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(Bin(t), a.Args()...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a.cmd, a.logFile, a.done = cmd, f, make(chan struct{})
	done := a.done
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: a.ClientTLS()}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get(a.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		} else if c, derr := net.Dial("tcp", a.Addr); derr == nil && slices.Contains(a.Extra, "--client-ca") {
			c.Close()
			return // serving, and refusing a client without a certificate
		}
		select {
		case <-done:
			t.Fatalf("agent exited at start:\n%s", a.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent did not serve within 30s: %v\n%s", err, a.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill signals the agent and waits for it to end.
func (a *Agent) Kill(sig syscall.Signal) {
	if a.cmd == nil {
		return
	}
	select {
	case <-a.done:
		return
	default:
	}
	_ = a.cmd.Process.Signal(sig)
	select {
	case <-a.done:
	case <-time.After(20 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
}

// Log is what the agent wrote.
func (a *Agent) Log() string {
	b, _ := os.ReadFile(filepath.Join(a.dir, "agent.log"))
	return string(b)
}

// ClientTLS trusts the agent's CA.
func (a *Agent) ClientTLS() *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(a.CA.PEM)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// Flags are the replicator's flags to use this agent.
func (a *Agent) Flags() []string {
	return []string{"--agent", a.URL, "--agent-token-file", a.TokenFile, "--agent-ca-file", a.CAFile}
}

var (
	agentsMu sync.Mutex
	agents   = map[string]*Agent{}
)

// For returns the agent serving the master's channel, starting it for this test when
// there is none yet.
func For(t testing.TB, master *cyruspair.Instance, channel string) *Agent {
	t.Helper()
	key := master.ConfigPath + "\x00" + channel
	agentsMu.Lock()
	defer agentsMu.Unlock()
	if a := agents[key]; a != nil {
		return a
	}
	a := Start(t, master, channel)
	agents[key] = a
	t.Cleanup(func() {
		agentsMu.Lock()
		defer agentsMu.Unlock()
		delete(agents, key)
	})
	return a
}

// Rewrite turns replicator arguments for the master's disk into arguments for its
// agent, when the suites run through it (Enabled): --master-config goes, --sync-log DIR
// becomes the agent of DIR's channel, and every replicating mode gets --agent flags.
// Other arguments are kept. Without CYRUSREPL_VIA_AGENT=1 args are returned unchanged.
func Rewrite(t testing.TB, p *cyruspair.Pair, args []string) []string {
	t.Helper()
	if !Enabled() || len(args) == 0 {
		return args
	}
	switch args[0] {
	case "rolling", "sync", "verify", "audit":
	default:
		return args
	}
	master, channel := p.Master, p.Channel
	out := make([]string, 0, len(args)+6)
	had := false
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--master-config":
			i++
			had = true
			continue
		case "--sync-log":
			i++
			channel = ChannelOf(t, master, args[i])
			had = true
			continue
		case "--agent":
			return args // the test chose its agent itself
		}
		out = append(out, args[i])
	}
	if !had {
		return args // a test without the master's disk (e.g. the IMAP user listing)
	}
	return append(out, For(t, master, channel).Flags()...)
}

// ChannelOf is the channel whose directory is dir.
func ChannelOf(t testing.TB, master *cyruspair.Instance, dir string) string {
	t.Helper()
	rel, err := filepath.Rel(filepath.Join(master.ConfigDir, "sync"), dir)
	if err != nil || strings.HasPrefix(rel, "..") || strings.Contains(rel, string(filepath.Separator)) {
		t.Fatalf("agenttest: --sync-log %s is not a channel directory of the master", dir)
	}
	if rel == "." {
		return ""
	}
	return rel
}
