package agentclient

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cyrusrepl/cyrusrepl/internal/agent/api"
	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
)

// TestProblemOf: the agent's answers and transport failures are told apart as the
// operator's AgentUnavailable reasons; what is not about the agent is no problem.
func TestProblemOf(t *testing.T) {
	status := func(path string, code int) error {
		return fmt.Errorf("wrapped: %w", &StatusError{URL: "https://a:1", Path: path, Code: code, Msg: "m"})
	}
	c := &Client{o: Options{URL: "https://a:1"}}
	for _, tc := range []struct {
		name string
		err  error
		want Problem
	}{
		{"nil", nil, ""},
		{"no log", synclog.ErrNoLog, ""},
		{"401", status(api.PathBacklog, http.StatusUnauthorized), ProblemUnauthorized},
		{"403", status(api.PathConfig, http.StatusForbidden), ProblemUnauthorized},
		{"409 lease", status(api.PathLease, http.StatusConflict), ProblemChannelHeld},
		{"409 ack", status(api.PathAck, http.StatusConflict), ""},
		{"500", status(api.PathLookup, http.StatusInternalServerError), ProblemAgentError},
		{"no token file", func() error { _, err := readToken("/nonexistent/token"); return err }(), ProblemUnauthorized},
		{"refused", c.describe(&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}), ProblemUnreachable},
		{"TLS alert", c.describe(&net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}), ProblemTLS},
		{"handler", errors.New("processing sync log: disk full"), ""},
	} {
		if got := ProblemOf(tc.err); got != tc.want {
			t.Errorf("%s: ProblemOf(%v) = %q, want %q", tc.name, tc.err, got, tc.want)
		}
	}
}

// TestNewRefusesUserInfo: a URL with a password is refused without repeating it.
func TestNewRefusesUserInfo(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(Options{URL: "https://u:s3cret@agent:8443", TokenFile: tok})
	if err == nil {
		t.Fatal("accepted a URL with user information")
	}
	if got := err.Error(); strings.Contains(got, "s3cret") {
		t.Fatalf("error %q", got)
	}
}
