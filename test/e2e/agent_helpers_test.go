//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// agentProc is the master agent hack/agent.sh runs beside the pair's master.
type agentProc struct {
	dir, url, tokenFile, caFile, pid string
}

// startAgent starts the agent for p's master (as Cyrus's user, on 127.0.0.1) and stops
// it by its recorded PID when the test ends.
func startAgent(t *testing.T, ctx context.Context, repo string, p *cyruspair.Pair) *agentProc {
	t.Helper()
	dir := filepath.Join(p.Dir, "agent")
	t.Cleanup(func() {
		if _, err := run(t, context.Background(), repo, "hack/agent.sh", "stop", dir); err != nil {
			t.Errorf("stopping the agent: %v", err)
		}
	})
	if _, err := run(t, ctx, repo, "hack/agent.sh", "start", dir, p.Dir); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "agent.env"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, l := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			env[k] = v
		}
	}
	a := &agentProc{dir: dir, url: env["AGENT_URL"], tokenFile: env["AGENT_TOKEN_FILE"], caFile: env["AGENT_CA"], pid: env["AGENT_PID"]}
	if a.url == "" || a.tokenFile == "" || a.caFile == "" || a.pid == "" {
		t.Fatalf("agent.env incomplete: %q", raw)
	}
	return a
}

func (a *agentProc) token(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(a.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func (a *agentProc) ca(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(a.caFile)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// metrics reads the agent's /metrics (bearer token, TLS verified against its CA).
func (a *agentProc) metrics(ctx context.Context, t *testing.T) (string, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(a.ca(t))) {
		return "", fmt.Errorf("no certificate in %s", a.caFile)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url+"/metrics", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+a.token(t))
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s/metrics: %d %v", a.url, resp.StatusCode, err)
	}
	return string(body), nil
}

// rotate writes a new token into the agent's file (it re-reads it on the next request)
// and returns it; the caller puts it in the pair's Secret.
func (a *agentProc) rotate(t *testing.T) string {
	t.Helper()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	tok := base64.StdEncoding.EncodeToString(raw)
	// WriteFile keeps the file's owner (Cyrus's user) and mode.
	if err := os.WriteFile(a.tokenFile, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return tok
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// metricAtLeast says whether the Prometheus text m has the sample name (with its
// labels, as written) at min or more.
func metricAtLeast(m, name string, min float64) bool {
	for _, l := range strings.Split(m, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && f >= min
		}
	}
	return false
}
