package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/agent/api"
	"github.com/cyrusrepl/cyrusrepl/internal/agentclient"
	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
	"github.com/cyrusrepl/cyrusrepl/internal/replication"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
)

// The agent's Take long-polls: rolling does not pause between its passes.
var _ replication.LongPoller = (*agentclient.Client)(nil)

// agentFlags point a replicator at the master's agent (docs/agent.md) instead of the
// master's disk: the sync log and mailboxes.db come over its API, bodies still over csync.
type agentFlags struct {
	url, tokenFile, caFile string
	clientCert, clientKey  string
	client                 *agentclient.Client
}

func (a *agentFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&a.url, "agent", "", "the master's agent, https://HOST:PORT: the sync log, mailboxes.db and the master's settings come from it (instead of --sync-log and --master-config)")
	fs.StringVar(&a.tokenFile, "agent-token-file", "", "file holding the agent's bearer token (read at every request); required with --agent")
	fs.StringVar(&a.caFile, "agent-ca-file", "", "PEM CA bundle to verify the agent's certificate (default: system roots)")
	fs.StringVar(&a.clientCert, "agent-client-cert", "", "PEM client certificate for an agent that requires mutual TLS (with --agent-client-key)")
	fs.StringVar(&a.clientKey, "agent-client-key", "", "PEM key of --agent-client-cert")
}

// check refuses agent flags without --agent, and --agent without a token.
func (a *agentFlags) check(masterConfig string) error {
	if a.url == "" {
		if a.tokenFile != "" || a.caFile != "" || a.clientCert != "" || a.clientKey != "" {
			return usageErrorf("--agent-token-file, --agent-ca-file and --agent-client-* need --agent")
		}
		return nil
	}
	if masterConfig != "" {
		return usageErrorf("--agent and --master-config exclude each other: with --agent, mailboxes.db and the master's settings come from the agent")
	}
	if a.tokenFile == "" {
		return usageErrorf("--agent needs --agent-token-file")
	}
	return nil
}

// open builds the client, naming this replicator to the agent by its mode, process and
// state directory (one consumer per channel; a restart on the same state takes over).
func (a *agentFlags) open(mode, stateID string) error {
	host, _ := os.Hostname()
	c, err := agentclient.New(agentclient.Options{
		URL: a.url, TokenFile: a.tokenFile, CAFile: a.caFile, ClientCert: a.clientCert, ClientKey: a.clientKey,
		Consumer: fmt.Sprintf("replicator %s pid %d on %s (state %s)", mode, os.Getpid(), host, stateID),
		Owner:    stateID,
	})
	if err != nil {
		return usageErrorf("--agent: %v", err)
	}
	a.client = c
	return nil
}

// settings asks the agent for the master's settings (bounded: an agent that does not
// answer is an error, not a hang).
func (a *agentFlags) settings(ctx context.Context) (api.Config, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return a.client.Config(ctx)
}

// applySettings sets the deleted namespace's prefix from the agent's answer; it must
// agree with --deleted-prefix when both are given.
func applyAgentSettings(cfg api.Config, flagPrefix string) error {
	prefix := cfg.DeletedPrefix
	if flagPrefix != "" && flagPrefix != prefix {
		return usageErrorf("--deleted-prefix %q contradicts the master's imapd.conf (deletedprefix %q, from the agent)", flagPrefix, prefix)
	}
	if prefix == "" {
		prefix = mboxname.DefaultMasterSettings.DeletedPrefix
	}
	if err := mboxname.SetDeletedPrefix(prefix); err != nil {
		return usageErrorf("the agent's deletedprefix: %v", err)
	}
	return nil
}

// agentHealth keeps the agent check of the report current (the operator's
// AgentUnavailable condition): failed, with the reason, while the agent cannot be had,
// ok once it answers. Every failure prints an "agent-unavailable" record (the reason,
// the error, the pause before the next try); the first answer after one prints
// "agent-available". The records carry the client's error lines, which name the URL
// and the agent's message, never the token.
type agentHealth struct {
	rec  *replication.Recorder
	out  *jsonLines
	down bool
}

// agentWaitRecord says the agent could not be had and when it is asked again.
type agentWaitRecord struct {
	Type    string `json:"type"`   // "agent-unavailable"
	Reason  string `json:"reason"` // agentclient.Problem
	Error   string `json:"error"`
	RetryIn string `json:"retryIn"`
}

// agentBackRecord says the agent answers again after it could not be had.
type agentBackRecord struct {
	Type string `json:"type"` // "agent-available"
}

// taken is Rolling.OnTake: the outcome of one take from the agent.
func (h *agentHealth) taken(err error, retryIn time.Duration) {
	if err == nil || errors.Is(err, synclog.ErrNoLog) {
		h.answered()
		return
	}
	h.failed(err, retryIn)
}

// failed records err when it says why the agent cannot be had; other errors (the
// handler's own, a lost lease) are left to the report's lastError.
func (h *agentHealth) failed(err error, retryIn time.Duration) {
	p := agentclient.ProblemOf(err)
	if p == "" {
		return
	}
	h.down = true
	h.rec.SetCheck(report.Check{Name: report.CheckAgent, Status: report.CheckFailed, Reason: string(p), Message: err.Error()})
	h.out.emit(agentWaitRecord{Type: "agent-unavailable", Reason: string(p), Error: err.Error(), RetryIn: retryIn.String()})
}

// answered records that the agent served a request.
func (h *agentHealth) answered() {
	if chk := h.rec.Check(report.CheckAgent); chk != nil && chk.Status == report.CheckOK {
		return
	}
	h.rec.SetCheck(report.Check{Name: report.CheckAgent, Status: report.CheckOK, Message: "the agent answers"})
	if h.down {
		h.out.emit(agentBackRecord{Type: "agent-available"})
	}
	h.down = false
}
