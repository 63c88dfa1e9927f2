// Package cyruspair starts a real Cyrus IMAP 3.6 master and replica (and optionally a
// second replica) on 127.0.0.1 for tests, through hack/cyrus-pair.sh, and offers the
// seeding helpers tests need: users, folders, deliveries, renames, deletes, flags,
// subscriptions, quota, annotations, and stock sync_client runs.
//
// A test that needs Cyrus fails when CYRUSREPL_REQUIRE_CYRUS=1 (as in CI) and Cyrus is
// missing; otherwise it is skipped with the reason.
package cyruspair

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// CyrusBin is where Debian installs the Cyrus binaries.
const CyrusBin = "/usr/lib/cyrus/bin"

// Options select how a pair is configured.
type Options struct {
	// DeleteMode is the master's and replicas' delete_mode: "delayed" (default) or "immediate".
	DeleteMode string
	// SecondReplica adds Replica2, the target of the master's "stock" channel, so that a
	// test can replicate the same master with stock sync_client and with cyrusrepl.
	SecondReplica bool
	// Namespace is NamespaceNetnews or NamespaceDefault; "" takes $CYRUSREPL_NAMESPACE,
	// else netnews. Internal names (csync, mailboxes.db, sync log) do not depend on it;
	// only what IMAP clients see does, and the helpers translate.
	Namespace string
	// DeletedPrefix is imapd.conf's deletedprefix ("" = Cyrus's default, DELETED).
	DeletedPrefix string
	// TLS gives every instance a certificate from a CA of the pair's own (Pair.TLSCA):
	// sync_server, imapd and lmtpd then offer STARTTLS. "false" takes $CYRUSREPL_TLS.
	TLS bool
	// NoTLS keeps the pair without certificates even under CYRUSREPL_TLS=1, for tests
	// of what happens when a server offers no STARTTLS.
	NoTLS bool
	// MasterPartitions are partitions the master has besides "default" and the replica
	// lacks (partition-NAME in the master's imapd.conf only).
	MasterPartitions []string
	// MasterSettings are "key: value" lines that replace (or add) options of the
	// master's imapd.conf, e.g. "sync_log_channels: stock". They must be set at start:
	// Cyrus's idle children keep the configuration they read.
	MasterSettings []string
}

// The namespace configurations a pair can run.
const (
	// NamespaceNetnews: unixhierarchysep no, altnamespace no, virtdomains off. Users see
	// INBOX.Sent; the admin sees user.alice.Sent.
	NamespaceNetnews = "netnews"
	// NamespaceDefault: Cyrus 3's defaults (unixhierarchysep yes, altnamespace yes) plus
	// virtdomains userid. Users see Sent and Work/Old; a dot is an ordinary character;
	// the admin sees user/alice/Sent and user/john.doe/Sent@example.com.
	NamespaceDefault = "default"
)

// Namespaces are both configurations, for tests that run over each.
var Namespaces = []string{NamespaceNetnews, NamespaceDefault}

// namespaceOf resolves Options.Namespace ("" = $CYRUSREPL_NAMESPACE, else netnews).
func namespaceOf(opts Options) string {
	if opts.Namespace != "" {
		return opts.Namespace
	}
	if ns := os.Getenv("CYRUSREPL_NAMESPACE"); ns != "" {
		return ns
	}
	return NamespaceNetnews
}

// Pair is a running master and replica.
type Pair struct {
	Dir           string
	ID            string
	DeleteMode    string
	Master        *Instance
	Replica       *Instance
	Replica2      *Instance // nil unless Options.SecondReplica
	ReplUser      string    // csync admin on every instance
	ReplPassword  string
	AdminUser     string // IMAP admin, allowed to proxy as any user
	AdminPassword string
	Channel       string // the master's sync-log channel for cyrusrepl
	SyslogPrefix  string
	Namespace     string // NamespaceNetnews or NamespaceDefault
	DeletedPrefix string // imapd.conf deletedprefix
	TLSCA         string // PEM file of the CA that signed every instance's certificate ("" without TLS)
	script        string
	// tlsFromEnv: TLS came from $CYRUSREPL_TLS, so every login must be over TLS
	// unless the test says otherwise (AllowPlainLogins).
	tlsFromEnv  bool
	plainLogins bool
}

// Instance is one Cyrus server of a pair.
type Instance struct {
	Name       string
	Dir        string
	ConfigPath string // imapd.conf
	ConfigDir  string // configdirectory
	Servername string
	IMAPAddr   string
	LMTPAddr   string
	SyncAddr   string
	SieveAddr  string
	pair       *Pair
}

type pairJSON struct {
	Dir           string `json:"dir"`
	ID            string `json:"id"`
	DeleteMode    string `json:"deleteMode"`
	ReplUser      string `json:"replUser"`
	ReplPassword  string `json:"replPassword"`
	AdminUser     string `json:"adminUser"`
	AdminPassword string `json:"adminPassword"`
	Channel       string `json:"channel"`
	SyslogPrefix  string `json:"syslogPrefix"`
	Namespace     string `json:"namespace"`
	DeletedPrefix string `json:"deletedPrefix"`
	TLSCA         string `json:"tlsCA"`
	Instances     map[string]struct {
		Dir        string `json:"dir"`
		Config     string `json:"config"`
		ConfigDir  string `json:"configDir"`
		IMAP       string `json:"imap"`
		LMTP       string `json:"lmtp"`
		Sync       string `json:"sync"`
		Sieve      string `json:"sieve"`
		Servername string `json:"servername"`
	} `json:"instances"`
}

// Available reports whether Cyrus is installed, and why not.
func Available() (bool, string) {
	for _, b := range []string{"master", "imapd", "sync_server", "sync_client", "lmtpd"} {
		if _, err := os.Stat(filepath.Join(CyrusBin, b)); err != nil {
			return false, fmt.Sprintf("Cyrus is not installed (%s missing); run hack/cyrus-install.sh", b)
		}
	}
	if _, err := exec.LookPath("saslpasswd2"); err != nil {
		return false, "saslpasswd2 missing (Debian sasl2-bin); run hack/cyrus-install.sh"
	}
	return true, ""
}

// Require skips the test when Cyrus is missing, or fails it when CYRUSREPL_REQUIRE_CYRUS=1.
// CYRUSREPL_UNIT_ONLY=1 skips it on purpose: the race-detector pass of `make test` runs
// the server-free tests only (the server tests run in the main pass).
func Require(t testing.TB) {
	t.Helper()
	if os.Getenv("CYRUSREPL_UNIT_ONLY") == "1" {
		t.Skip("CYRUSREPL_UNIT_ONLY=1: server tests run in the main pass")
	}
	if ok, why := Available(); !ok {
		if os.Getenv("CYRUSREPL_REQUIRE_CYRUS") == "1" {
			t.Fatalf("CYRUSREPL_REQUIRE_CYRUS=1 but %s", why)
		}
		t.Skip(why)
	}
}

// Start starts a fresh pair and stops it when the test ends.
func Start(t testing.TB, opts Options) *Pair {
	t.Helper()
	Require(t)
	script, err := scriptPath()
	if err != nil {
		t.Fatal(err)
	}
	// A start can lose a race for a port with another pair started at the same moment
	// (the script picks free ports, then Cyrus binds them): try again with new ports.
	var dir string
	var out []byte
	for attempt := 1; ; attempt++ {
		dir, out, err = startOnce(script, opts)
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("starting the Cyrus pair (%d attempts): %v\n%s", attempt, err, out)
		}
		t.Logf("starting the Cyrus pair failed (attempt %d), retrying: %v\n%s", attempt, err, out)
	}
	p, err := Load(dir)
	if err != nil {
		stop(script, dir)
		t.Fatal(err)
	}
	p.script = script
	p.tlsFromEnv = !opts.TLS && tlsOf(opts)
	t.Cleanup(func() {
		if !t.Failed() {
			p.checkLoginsTLS(t)
		}
		if t.Failed() {
			t.Logf("Cyrus pair %s: last syslog lines:\n%s", dir, p.SyslogTail(40))
		}
		stop(script, dir)
		if os.Getenv("CYRUSREPL_KEEP_PAIR") == "1" {
			t.Logf("kept %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return p
}

// startOnce runs hack/cyrus-pair.sh start in a new directory; on failure the directory
// is removed.
func startOnce(script string, opts Options) (string, []byte, error) {
	// Not t.TempDir: the cyrus user must be able to traverse every parent directory.
	dir, err := os.MkdirTemp("", "cyrusrepl-pair-")
	if err != nil {
		return "", nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", nil, err
	}
	args := []string{"start", dir}
	if opts.DeleteMode != "" {
		args = append(args, "--delete-mode", opts.DeleteMode)
	}
	if opts.SecondReplica {
		args = append(args, "--second-replica")
	}
	args = append(args, "--namespace", namespaceOf(opts))
	if opts.DeletedPrefix != "" {
		args = append(args, "--deleted-prefix", opts.DeletedPrefix)
	}
	if tlsOf(opts) {
		args = append(args, "--tls")
	}
	for _, part := range opts.MasterPartitions {
		args = append(args, "--master-partition", part)
	}
	for _, kv := range opts.MasterSettings {
		args = append(args, "--master-set", kv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "CYRUS_PAIR_QUIET=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		stop(script, dir)
		_ = os.RemoveAll(dir)
		return "", out, err
	}
	return dir, out, nil
}

func stop(script, dir string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script, "stop", dir)
	cmd.Env = append(os.Environ(), "CYRUS_PAIR_QUIET=1")
	_ = cmd.Run()
}

// Load reads the description of a pair started by hack/cyrus-pair.sh in dir.
func Load(dir string) (*Pair, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "pair.json"))
	if err != nil {
		return nil, fmt.Errorf("read pair.json: %w", err)
	}
	var pj pairJSON
	if err := json.Unmarshal(raw, &pj); err != nil {
		return nil, fmt.Errorf("parse pair.json: %w", err)
	}
	p := &Pair{
		Dir: pj.Dir, ID: pj.ID, DeleteMode: pj.DeleteMode,
		ReplUser: pj.ReplUser, ReplPassword: pj.ReplPassword,
		AdminUser: pj.AdminUser, AdminPassword: pj.AdminPassword,
		Channel: pj.Channel, SyslogPrefix: pj.SyslogPrefix,
		Namespace: pj.Namespace, DeletedPrefix: pj.DeletedPrefix, TLSCA: pj.TLSCA,
	}
	if p.Namespace == "" {
		p.Namespace = NamespaceNetnews
	}
	if p.DeletedPrefix == "" {
		p.DeletedPrefix = "DELETED"
	}
	for name, in := range pj.Instances {
		inst := &Instance{
			Name: name, Dir: in.Dir, ConfigPath: in.Config, ConfigDir: in.ConfigDir,
			Servername: in.Servername, IMAPAddr: in.IMAP, LMTPAddr: in.LMTP,
			SyncAddr: in.Sync, SieveAddr: in.Sieve, pair: p,
		}
		switch name {
		case "master":
			p.Master = inst
		case "replica":
			p.Replica = inst
		case "replica2":
			p.Replica2 = inst
		}
	}
	if p.Master == nil || p.Replica == nil {
		return nil, fmt.Errorf("pair.json in %s lacks the master or the replica", dir)
	}
	return p, nil
}

// scriptPath finds hack/cyrus-pair.sh from this source file's location.
func scriptPath() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot locate the cyruspair package source")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	p := filepath.Join(root, "hack", "cyrus-pair.sh")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("hack/cyrus-pair.sh not found: %w", err)
	}
	return p, nil
}

// SyslogTail returns the last n syslog lines of this pair's instances.
func (p *Pair) SyslogTail(n int) string {
	raw, err := os.ReadFile(filepath.Join(p.Dir, "syslog.log"))
	if err != nil {
		return "(no syslog: " + err.Error() + ")"
	}
	var mine []string
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.Contains(l, p.SyslogPrefix+"-") {
			mine = append(mine, l)
		}
	}
	if len(mine) > n {
		mine = mine[len(mine)-n:]
	}
	return strings.Join(mine, "\n")
}

// Syslog returns every syslog line of this pair's instances that contains substr.
func (p *Pair) Syslog(substr string) []string {
	raw, err := os.ReadFile(filepath.Join(p.Dir, "syslog.log"))
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.Contains(l, p.SyslogPrefix+"-") && strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

// StockSyncClient runs Cyrus's own sync_client with the master's config against target
// (the Replica, or Replica2 through the master's "stock" channel), e.g. args "-u", "alice".
func (p *Pair) StockSyncClient(t testing.TB, target *Instance, args ...string) (string, error) {
	t.Helper()
	full := []string{"-C", p.Master.ConfigPath}
	if target != nil && target == p.Replica2 {
		full = append(full, "-n", "stock")
	}
	full = append(full, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(CyrusBin, "sync_client"), full...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("sync_client %s: %w", strings.Join(full, " "), err)
	}
	return out.String(), nil
}

// Tool runs a Cyrus tool (from /usr/lib/cyrus/bin) with this instance's config.
func (i *Instance) Tool(t testing.TB, tool string, args ...string) string {
	t.Helper()
	out, err := i.RunTool(tool, args...)
	if err != nil {
		t.Fatalf("%s on %s: %v\n%s", tool, i.Name, err, out)
	}
	return out
}

// RunTool is Tool without the test: it returns the combined output and the error.
func (i *Instance) RunTool(tool string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(CyrusBin, tool), append([]string{"-C", i.ConfigPath}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// MailboxesDB returns the raw dump of the instance's mailboxes.db (tombstones, I records
// with name history); keys use 0x1F as the hierarchy separator.
func (i *Instance) MailboxesDB(t testing.TB) string {
	t.Helper()
	return i.Tool(t, "cyr_dbtool", filepath.Join(i.ConfigDir, "mailboxes.db"), "twoskip", "show")
}

// SyncLogDir is the directory of a sync-log channel on this instance.
func (i *Instance) SyncLogDir(channel string) string {
	if channel == "" {
		return filepath.Join(i.ConfigDir, "sync")
	}
	return filepath.Join(i.ConfigDir, "sync", channel)
}
