package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/agenttest"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/faultproxy"
)

// rolling runs `replicator rolling` on the channel in dir: from the master's disk, or,
// with CYRUSREPL_VIA_AGENT=1, through an agent serving that channel (the set-up checks
// then read the master's settings from the agent's /v1/config).
func (c *cli) rolling(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	full := agenttest.Rewrite(t, c.p, append(append([]string{"rolling"}, c.local...), append([]string{"--sync-log", dir}, args...)...))
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if agenttest.Enabled() != slices.Contains(full, "--agent") {
		t.Fatalf("rolling args %q: through the agent %v", full, agenttest.Enabled())
	}
	code := run(ctx, full, &out, &errb)
	return code, out.String(), errb.String()
}

// upstream cyrus-imapd #2248: a master whose sync_log_channels does not list the
// channel the replicator consumes never writes it. The replicator must say so and
// refuse to start instead of waiting forever on a channel that stays empty.
func TestCLIRollingRefusesUnwrittenChannel(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings []string
		channel  string // "" = the unnamed channel
		setting  string // the setting the error line must name
		written  string // a channel Cyrus does write ("-": none)
	}{
		{"channel not listed", []string{"sync_log_channels: stock squatter"}, "cyrusrepl", "sync_log_channels", "stock"},
		{"unnamed channel dropped", []string{"sync_log_channels: cyrusrepl stock"}, "", "sync_log_channels", "cyrusrepl"},
		{"sync_log off", []string{"sync_log: 0"}, "cyrusrepl", "sync_log", "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLIOpts(t, cyruspair.Options{MasterSettings: tc.settings})
			m := c.p.Master
			// Cyrus itself: mail comes in, and the consumed channel stays unwritten.
			m.CreateUser(t, "alice")
			m.Deliver(t, "alice", cyruspair.Message("one", "body"))
			dir := m.SyncLogDir(tc.channel)
			if _, err := os.Stat(filepath.Join(dir, "log")); err == nil {
				t.Fatalf("Cyrus wrote %s/log although %v", dir, tc.settings)
			}
			if tc.written != "-" {
				if _, err := os.Stat(filepath.Join(m.SyncLogDir(tc.written), "log")); err != nil {
					t.Fatalf("Cyrus did not write channel %s either: %v", tc.written, err)
				}
			}
			rep := filepath.Join(t.TempDir(), "report.json")
			code, out, errs := c.rolling(t, dir, "--once", "--report", rep)
			if code != exitUsage {
				t.Fatalf("rolling on an unwritten channel: exit %d, want %d\nstderr: %s\n%s", code, exitUsage, errs, out)
			}
			var refusal []string
			for _, l := range strings.Split(strings.TrimSpace(errs), "\n") {
				if strings.HasPrefix(l, "replicator rolling: ") {
					refusal = append(refusal, l)
				}
			}
			if len(refusal) != 1 || !strings.Contains(refusal[0], tc.setting) {
				t.Fatalf("want one line naming %s, stderr:\n%s", tc.setting, errs)
			}
			if tc.setting == "sync_log_channels" && strings.Contains(refusal[0], "sync_log is off") {
				t.Fatalf("wrong setting named: %s", refusal[0])
			}
			chk := report.FindCheck(readSummary(t, rep).Checks, report.CheckSyncLog)
			if chk == nil || chk.Status != report.CheckFailed || chk.Reason != report.ReasonSyncLogNotWritten || chk.Setting != tc.setting {
				t.Fatalf("report check: %+v", chk)
			}
			if len(lines(t, out, "user")) != 0 {
				t.Fatalf("the refused replicator replicated users:\n%s", out)
			}
		})
	}
}

// Channels the master does write pass the check and rolling runs: the pair's own
// set-up (sync_log_channels: cyrusrepl stock), and the unnamed channel listed as "" —
// Cyrus 3.6's spelling, checked here against Cyrus itself.
func TestCLIRollingChannelWritten(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings []string
		channel  string
	}{
		{"named channel", nil, "cyrusrepl"},
		{`unnamed channel listed as ""`, []string{`sync_log_channels: "" cyrusrepl stock`}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLIOpts(t, cyruspair.Options{MasterSettings: tc.settings})
			m := c.p.Master
			m.CreateUser(t, "alice")
			m.Deliver(t, "alice", cyruspair.Message("one", "body"))
			dir := m.SyncLogDir(tc.channel)
			if _, err := os.Stat(filepath.Join(dir, "log")); err != nil {
				t.Fatalf("Cyrus did not write %s: %v", dir, err)
			}
			code, out, errs := c.rolling(t, dir, "--once")
			if code != exitOK {
				t.Fatalf("rolling: exit %d\n%s\n%s", code, errs, out)
			}
			var sawSyncLog bool
			for _, chk := range lines(t, out, "check") {
				if chk["name"] == report.CheckSyncLog {
					sawSyncLog = chk["status"] == string(report.CheckOK)
				}
			}
			if !sawSyncLog {
				t.Fatalf("no ok sync-log check line:\n%s", out)
			}
			if got := c.p.Replica.List(t, "alice"); len(got) == 0 {
				t.Fatalf("alice not replicated from channel %q", tc.channel)
			}
		})
	}
}

// A master partition the replica lacks: the users with folders there fail, each with
// an error naming the partition; the other users are replicated; nothing is deleted;
// the report's partitions check names the partition and the users. Run as an audit
// pass, so the check is part of every audit.
func TestCLIPartitionMissingOnReplica(t *testing.T) {
	c := newCLIOpts(t, cyruspair.Options{MasterPartitions: []string{"second"}})
	m, r := c.p.Master, c.p.Replica
	m.CreateUser(t, "alice") // default partition only
	m.Deliver(t, "alice", cyruspair.Message("a", "alice's"))
	m.CreateUserOn(t, "bob", "second") // INBOX on the partition the replica lacks
	m.Deliver(t, "bob", cyruspair.Message("b", "bob's"))
	m.CreateUser(t, "carol") // INBOX on default, one folder on second
	m.CreateFolder(t, "carol", "Keep")
	m.Deliver(t, "carol", cyruspair.Message("c", "carol's"))
	// carol's INBOX and Keep are on the replica already, so a delete would show.
	if code, out, errs := c.run(t, "sync", "--user", "carol"); code != exitOK {
		t.Fatalf("first sync of carol: exit %d\n%s\n%s", code, errs, out)
	}
	m.CreateFolderOn(t, "carol", "Far", "second")
	m.Deliver(t, "carol", cyruspair.Message("c2", "carol's second"))
	before := r.List(t, "carol")

	rep := filepath.Join(t.TempDir(), "report.json")
	code, out, errs := c.run(t, "audit", "--report", rep)
	if code != exitFailed {
		t.Fatalf("audit: exit %d, want %d\n%s\n%s", code, exitFailed, errs, out)
	}
	outcome := map[string]map[string]any{}
	for _, u := range lines(t, out, "user") {
		outcome[u["user"].(string)] = u
	}
	if o := outcome["alice"]; o == nil || o["outcome"] != "synced" {
		t.Errorf("alice: %v", o)
	}
	for _, u := range []string{"bob", "carol"} {
		o := outcome[u]
		if o == nil || o["outcome"] != "failed" || !strings.Contains(o["error"].(string), `partition "second"`) {
			t.Errorf("%s: want a failure naming partition \"second\", got %v", u, o)
		}
	}
	for _, d := range lines(t, out, "decision") {
		if d["action"] == string(report.ActionDelete) || d["action"] == string(report.ActionMoveAside) || d["action"] == string(report.ActionMirrorDelete) {
			t.Errorf("decision dropping a replica folder: %v", d)
		}
	}
	after := r.List(t, "carol")
	for _, f := range before {
		if !strings.Contains(strings.Join(after, "\n"), f) {
			t.Errorf("carol's replica folder %s is gone: before %v, after %v", f, before, after)
		}
	}
	if got := r.List(t, "alice"); len(got) == 0 {
		t.Errorf("alice not replicated")
	}
	chk := report.FindCheck(readSummary(t, rep).Checks, report.CheckPartitions)
	if chk == nil || chk.Status != report.CheckWarning || chk.Reason != report.ReasonPartitionMissing ||
		!strings.Contains(chk.Message, `"second"`) || !strings.Contains(chk.Message, "bob") || !strings.Contains(chk.Message, "carol") {
		t.Fatalf("partitions check: %+v", chk)
	}
}

// Master and replica on different Cyrus releases: the master's csync banner rewritten
// by the fault proxy to name 3.8.0. Plaintext, so the proxy sees the banner.
func TestCLIVersionSkewFromBanner(t *testing.T) {
	c := newCLIOpts(t, cyruspair.Options{NoTLS: true})
	c.common = append(withoutTLSFlags(c.common), "--master-tls", "none", "--replica-tls", "none")
	m := c.p.Master
	m.CreateUser(t, "alice")
	px, err := faultproxy.Start(m.SyncAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	px.RewriteServer("Cyrus sync server 3.6.", "Cyrus sync server 3.8.")
	c.common = append(withoutFlag(c.common, "--master"), "--master", px.Addr)

	rep := filepath.Join(t.TempDir(), "report.json")
	code, out, errs := c.run(t, "sync", "--user", "alice", "--report", rep)
	if code != exitOK {
		t.Fatalf("sync: exit %d\n%s\n%s", code, errs, out)
	}
	chk := report.FindCheck(readSummary(t, rep).Checks, report.CheckVersions)
	if chk == nil || chk.Status != report.CheckWarning || chk.Reason != report.ReasonVersionSkew ||
		!strings.Contains(chk.Message, "Cyrus 3.8.") || !strings.Contains(chk.Message, "Cyrus 3.6.") {
		t.Fatalf("versions check: %+v", chk)
	}

	// Without the rewrite, the same pair shows no skew.
	px.RewriteServer("", "")
	code, out, errs = c.run(t, "sync", "--user", "alice", "--report", rep)
	if code != exitOK {
		t.Fatalf("sync: exit %d\n%s\n%s", code, errs, out)
	}
	if chk := report.FindCheck(readSummary(t, rep).Checks, report.CheckVersions); chk == nil || chk.Status != report.CheckOK {
		t.Fatalf("versions check without the rewrite: %+v", chk)
	}
}

// The master's imapd.conf is changed under a running replicator (the channel dropped
// from sync_log_channels, Cyrus restarted): mail keeps arriving, the channel stays
// silent, and the rolling replicator's report says so once the silence outlasts
// --channel-silence.
func TestCLIChannelSilence(t *testing.T) {
	c := newCLI(t, "delayed")
	m := c.p.Master
	m.CreateUser(t, "alice")
	m.Deliver(t, "alice", cyruspair.Message("one", "body"))
	dir := m.SyncLogDir(c.p.Channel)
	rep := filepath.Join(t.TempDir(), "report.json")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var out, errb syncBuffer
	go func() {
		args := append([]string{"rolling"}, c.local...) // the master's files: not through an agent
		args = append(args, "--sync-log", dir, "--channel-silence", "2s", "--setup-recheck", "500ms", "--report", rep,
			"--report-heartbeat", "100ms", "--interval", "100ms")
		done <- run(ctx, args, &out, &errb)
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("rolling did not stop")
		}
	}()
	silence := func() *report.Check {
		raw, err := os.ReadFile(rep)
		if err != nil {
			return nil
		}
		var s report.Summary
		if json.Unmarshal(raw, &s) != nil {
			return nil
		}
		return report.FindCheck(s.Checks, report.CheckChannelSilence)
	}
	waitFor := func(what string, ok func(*report.Check) bool, tick func()) *report.Check {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			if chk := silence(); chk != nil && ok(chk) {
				return chk
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: check %+v\nstdout:\n%s\nstderr:\n%s", what, silence(), out.String(), errb.String())
			}
			if tick != nil {
				tick()
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	n := 0
	deliver := func() { n++; m.Deliver(t, "alice", cyruspair.Message(fmt.Sprintf("m%d", n), "body")) }
	// Written as the master changes: ok, while mail flows for longer than the silence.
	waitFor("channel written", func(c *report.Check) bool { return c.Status == report.CheckOK }, nil)
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
		deliver()
	}
	if chk := silence(); chk == nil || chk.Status != report.CheckOK {
		t.Fatalf("while the channel is written: %+v", chk)
	}

	m.Restart(t, "sync_log_channels: stock")
	chk := waitFor("channel silent", func(c *report.Check) bool { return c.Status == report.CheckWarning }, deliver)
	if chk.Reason != report.ReasonChannelSilent || !strings.Contains(chk.Message, "cyrusrepl") {
		t.Fatalf("check %+v", chk)
	}
	if _, err := os.Stat(filepath.Join(dir, "log")); err == nil {
		t.Fatalf("Cyrus still writes %s", dir)
	}
	// The settings asked again while running: the channel is no longer listed.
	var chkSL *report.Check
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if chkSL = report.FindCheck(readSummary(t, rep).Checks, report.CheckSyncLog); chkSL != nil && chkSL.Status == report.CheckFailed {
			break
		}
	}
	if chkSL == nil || chkSL.Status != report.CheckFailed || chkSL.Setting != "sync_log_channels" {
		t.Fatalf("sync-log check after the change: %+v", chkSL)
	}
}
