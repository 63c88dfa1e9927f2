package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/tlstest"
)

// TestCLITLSModes runs `replicator sync` against a real pair whose sync_servers offer
// STARTTLS (tls_server_cert/tls_server_key), in every mode and with every refusal: each
// case gives the flags of both ends and the expected exit code and stderr.
func TestCLITLSModes(t *testing.T) {
	c := newCLIOpts(t, cyruspair.Options{TLS: true})
	c.common = withoutTLSFlags(c.common) // each case gives its own
	m, r := c.p.Master, c.p.Replica
	m.CreateUser(t, "alice")
	m.Deliver(t, "alice", cyruspair.Message("hello", "over TLS"))

	dir := t.TempDir()
	testCA := tlstest.NewCA(t, "test-ca")
	testCAFile := testCA.WriteFile(t, dir)
	otherCAFile := tlstest.NewCA(t, "other-ca").WriteFile(t, dir)
	// TLS from the first byte: a TLS-terminating proxy in front of each sync_server.
	masterTLS := tlstest.Proxy(t, testCA.Valid(t, "127.0.0.1"), m.SyncAddr)
	replicaTLS := tlstest.Proxy(t, testCA.Valid(t, "127.0.0.1"), r.SyncAddr)
	expired := tlstest.Proxy(t, testCA.Expired(t, "127.0.0.1"), m.SyncAddr)
	wrongHost := tlstest.Proxy(t, testCA.Valid(t, "sync.example.org"), m.SyncAddr)

	both := func(mode, ca string) []string {
		args := []string{"--master-tls", mode, "--replica-tls", mode}
		if ca != "" {
			args = append(args, "--master-ca-file", ca, "--replica-ca-file", ca)
		}
		return args
	}
	cases := []struct {
		name     string
		args     []string
		code     int
		stderr   string // a substring of stderr ("" = none expected)
		noStderr string // must not appear
	}{
		{"starttls", both("starttls", c.p.TLSCA), exitOK, "", "in clear"},
		{"tls from the first byte", append(both("tls", testCAFile), "--master", masterTLS, "--replica", replicaTLS), exitOK, "", "in clear"},
		{"plaintext asked for", both("none", ""), exitOK, "--master-tls none: the master password crosses the network in clear", ""},
		{"CA while TLS is off", append(both("starttls", c.p.TLSCA), "--replica-tls", "none"), exitUsage, "--replica-ca-file is given but --replica-tls is none", ""},
		{"unknown mode", append(both("starttls", c.p.TLSCA), "--master-tls", "ssl"), exitUsage, `--master-tls "ssl"`, ""},
		{"wrong CA", both("starttls", otherCAFile), exitUsage, "certificate signed by unknown authority", ""},
		{"system roots do not know the pair's CA", both("starttls", ""), exitUsage, "refused the TLS certificate", ""},
		{"expired certificate", append(both("tls", testCAFile), "--master", expired), exitUsage, "expired", ""},
		{"certificate for another host", append(both("tls", testCAFile), "--master", wrongHost), exitUsage, "cannot validate certificate for 127.0.0.1", ""},
		{"certificate for the name given", append(both("tls", testCAFile), "--master", wrongHost, "--master-tls-server-name", "sync.example.org", "--replica", replicaTLS), exitOK, "", ""},
		{"server name while TLS is off", append(both("none", ""), "--master-tls-server-name", "x"), exitUsage, "--master-tls-server-name is given but --master-tls is none", ""},
		{"TLS from the first byte to a STARTTLS port", both("tls", c.p.TLSCA), exitUsage, "TLS handshake", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := c.run(t, append([]string{"sync", "--user", "alice"}, tc.args...)...)
			if code != tc.code || (tc.stderr != "" && !strings.Contains(errs, tc.stderr)) ||
				(tc.noStderr != "" && strings.Contains(errs, tc.noStderr)) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q, not %q)\n%s", code, tc.code, errs, tc.stderr, tc.noStderr, out)
			}
			if tc.code == exitOK && strings.Contains(errs, "password") && tc.stderr == "" {
				t.Fatalf("stderr mentions the password: %q", errs)
			}
		})
	}
	if st := r.Status(t, "alice", "INBOX"); st.Messages != 1 {
		t.Fatalf("replica INBOX after the TLS syncs: %+v", st)
	}
	// Cyrus itself says the sessions were encrypted.
	if len(c.p.Syslog("starttls: TLS")) == 0 {
		t.Fatalf("no starttls line in the pair's syslog:\n%s", c.p.SyslogTail(30))
	}
}

// TestCLIAuditIMAPListingTLS: the IMAP user listing of audit uses the master's TLS
// settings (STARTTLS on the IMAP port, the same CA), and refuses a wrong CA.
func TestCLIAuditIMAPListingTLS(t *testing.T) {
	c := newCLIOpts(t, cyruspair.Options{TLS: true})
	m := c.p.Master
	for _, u := range []string{"alice", "bob"} {
		m.CreateUser(t, u)
	}
	c.common = append(withoutTLSFlags(withoutFlag(c.common, "--master-config")),
		"--master-imap", m.IMAPAddr, "--replica-tls", "starttls", "--replica-ca-file", c.p.TLSCA, "--master-tls", "starttls")
	code, out, errs := c.run(t, "audit", "--master-ca-file", c.p.TLSCA)
	if code != exitOK {
		t.Fatalf("audit: exit %d\n%s\n%s", code, errs, out)
	}
	var users []string
	for _, l := range lines(t, out, "user") {
		users = append(users, l["user"].(string))
	}
	slices.Sort(users)
	if !slices.Equal(users, []string{"alice", "bob"}) {
		t.Fatalf("audited %q", users)
	}
	// TLS from the first byte to both csync and IMAP (proxies with certificates of one
	// CA): the listing works; an IMAP proxy with another CA's certificate is refused.
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "proxy-ca")
	caFile := ca.WriteFile(t, dir)
	csyncTLS := tlstest.Proxy(t, ca.Valid(t, "127.0.0.1"), m.SyncAddr)
	for _, tc := range []struct {
		name string
		imap string
		code int
	}{
		{"same CA", tlstest.Proxy(t, ca.Valid(t, "127.0.0.1"), m.IMAPAddr), exitOK},
		{"other CA", tlstest.Proxy(t, tlstest.NewCA(t, "other-ca").Valid(t, "127.0.0.1"), m.IMAPAddr), exitFailed},
	} {
		code, out, errs := c.run(t, "audit", "--master", csyncTLS, "--master-tls", "tls", "--master-ca-file", caFile, "--master-imap", tc.imap)
		if code != tc.code || (tc.code == exitFailed && !strings.Contains(errs+out, "certificate signed by unknown authority")) {
			t.Fatalf("%s: audit exit %d (want %d)\n%s\n%s", tc.name, code, tc.code, errs, out)
		}
	}
}

// TestCLISuiteTalksTLS: on a pair with TLS, every connection the suite's helpers open
// (the replicator's flags from newCLIOpts, IMAP seeding and status checks,
// a csync dial with the pair's client config) runs STARTTLS: Cyrus logs every login
// with "+TLS", the repl user's included. Under CYRUSREPL_TLS=1 every pair is like this.
func TestCLISuiteTalksTLS(t *testing.T) {
	c := newCLIOpts(t, cyruspair.Options{TLS: true})
	m, r := c.p.Master, c.p.Replica
	m.CreateUser(t, "alice")
	m.CreateFolder(t, "alice", "Sent")
	m.Deliver(t, "alice", cyruspair.Message("hello", "over TLS"))
	if code, out, errs := c.run(t, "sync", "--user", "alice"); code != exitOK || strings.Contains(errs, "in clear") {
		t.Fatalf("sync: exit %d\n%s\n%s", code, errs, out)
	}
	if st := r.Status(t, "alice", "INBOX"); st.Messages != 1 {
		t.Fatalf("replica INBOX: %+v", st)
	}
	c.p.RequireTLSLogins(t, c.p.ReplUser)
	for _, l := range c.p.Syslog(" login: ") {
		if !strings.Contains(l, "+TLS") {
			t.Fatalf("a login without TLS: %s", l)
		}
	}
}
