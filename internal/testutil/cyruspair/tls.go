package cyruspair

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TLSEnv is the environment variable that turns TLS on for every test pair: with
// CYRUSREPL_TLS=1 each pair offers STARTTLS, and the helpers below make every
// connection the tests open (replicator flags, csync dials, IMAP and LMTP seeding)
// STARTTLS verified against the pair's CA. `make test-default-namespace` sets it.
const TLSEnv = "CYRUSREPL_TLS"

// tlsOf resolves Options.TLS, Options.NoTLS and $CYRUSREPL_TLS.
func tlsOf(opts Options) bool {
	if opts.NoTLS {
		return false
	}
	return opts.TLS || os.Getenv(TLSEnv) == "1"
}

// TLS reports whether the pair's instances offer STARTTLS (and the helpers use it).
func (p *Pair) TLS() bool { return p.TLSCA != "" }

// ClientTLS is the client configuration for every instance of the pair: the pair's CA
// as the only root, 127.0.0.1 as the name to verify (every certificate carries it). It
// is nil when the pair runs without TLS, which is what csync.Options.TLS wants then.
func (p *Pair) ClientTLS() *tls.Config {
	if !p.TLS() {
		return nil
	}
	pem, err := os.ReadFile(p.TLSCA)
	if err != nil {
		panic(fmt.Sprintf("cyruspair: read the pair's CA: %v", err))
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		panic("cyruspair: the pair's CA file " + p.TLSCA + " holds no certificate")
	}
	return &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// ReplicatorTLSFlags are the replicator's TLS flags for both ends of this pair:
// STARTTLS verified against the pair's CA, or explicitly plaintext without TLS.
func (p *Pair) ReplicatorTLSFlags() []string {
	if !p.TLS() {
		return []string{"--master-tls", "none", "--replica-tls", "none"}
	}
	return []string{"--master-tls", "starttls", "--master-ca-file", p.TLSCA,
		"--replica-tls", "starttls", "--replica-ca-file", p.TLSCA}
}

// Logins returns the pair's syslog "login:" lines of user (Cyrus appends "+TLS" to
// the mechanism of a session that ran STARTTLS, e.g. "PLAIN+TLS").
func (p *Pair) Logins(user string) []string {
	var out []string
	for _, l := range p.Syslog(" login: ") {
		if strings.Contains(l, " "+user+" ") {
			out = append(out, l)
		}
	}
	return out
}

// AllowPlainLogins exempts the pair from the check that, under CYRUSREPL_TLS=1, every
// login went through TLS: for a test that connects in clear on purpose (through a proxy
// that rewrites the plain stream, say).
func (p *Pair) AllowPlainLogins() { p.plainLogins = true }

// checkLoginsTLS fails the test if a login on a pair that got TLS from $CYRUSREPL_TLS
// was in clear: a connection some test helper forgot to encrypt.
func (p *Pair) checkLoginsTLS(t testing.TB) {
	t.Helper()
	if !p.tlsFromEnv || p.plainLogins {
		return
	}
	for _, l := range p.Syslog(" login: ") {
		if !strings.Contains(l, "+TLS") {
			t.Errorf("%s=1 but a login on the pair was in clear (a test connection without STARTTLS): %s", TLSEnv, l)
			return
		}
	}
}

// RequireTLSLogins fails the test unless user logged in at least once and every one of
// its logins on the pair went through TLS.
func (p *Pair) RequireTLSLogins(t testing.TB, user string) {
	t.Helper()
	logins := p.Logins(user)
	if len(logins) == 0 {
		t.Fatalf("no login of %s in the pair's syslog:\n%s", user, p.SyslogTail(30))
	}
	for _, l := range logins {
		if !strings.Contains(l, "+TLS") {
			t.Fatalf("%s logged in without TLS: %s", user, l)
		}
	}
}
