package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"net"
	"os"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
)

// The TLS modes of one end (--master-tls, --replica-tls).
const (
	tlsNone     = "none"     // plaintext: only when asked for, with a warning
	tlsStartTLS = "starttls" // connect in clear, upgrade with STARTTLS (sync_server's own TLS)
	tlsImplicit = "tls"      // TLS from the first byte (a TLS-terminating proxy in front)
)

// tlsEnd is how the replicator secures its connections to one server.
type tlsEnd struct {
	mode       string
	caFile     string
	serverName string
}

func (e *tlsEnd) bind(fs *flag.FlagSet, side string) {
	fs.StringVar(&e.mode, side+"-tls", tlsStartTLS, "TLS to the "+side+": starttls (STARTTLS, what sync_server offers), tls (TLS from the first byte, e.g. a TLS proxy in front of sync_server) or none (plaintext: the password crosses the network in clear)")
	fs.StringVar(&e.caFile, side+"-ca-file", "", "PEM CA bundle to verify the "+side+"'s certificate (default: system roots); needs --"+side+"-tls starttls or tls")
	fs.StringVar(&e.serverName, side+"-tls-server-name", "", "the name the "+side+"'s certificate must be issued for (default: the host of --"+side+"); needs --"+side+"-tls starttls or tls")
}

// check refuses an unknown mode and a CA file that would verify nothing. side is
// "master", "replica", or "" for inspect's --tls and --ca-file.
func (e *tlsEnd) check(side string) error {
	if side != "" {
		side += "-"
	}
	switch e.mode {
	case tlsNone:
		if e.caFile != "" {
			return usageErrorf("--%sca-file is given but --%stls is none: TLS is off, so nothing would verify the server; use --%stls starttls or tls", side, side, side)
		}
		if e.serverName != "" {
			return usageErrorf("--%stls-server-name is given but --%stls is none: TLS is off; use --%stls starttls or tls", side, side, side)
		}
	case tlsStartTLS, tlsImplicit:
	default:
		return usageErrorf("--%stls %q: want starttls, tls or none", side, e.mode)
	}
	return nil
}

// config is the TLS config for addr (nil for none): the certificate is verified against
// the CA file (or the system roots) and addr's host name or IP address (or the name
// given with --*-tls-server-name).
func (e tlsEnd) config(addr string) (*tls.Config, error) {
	if e.mode == tlsNone {
		return nil, nil
	}
	host, _, _ := net.SplitHostPort(addr)
	if e.serverName != "" {
		host = e.serverName
	}
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if e.caFile != "" {
		pem, err := os.ReadFile(e.caFile)
		if err != nil {
			return nil, usageErrorf("CA file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageErrorf("CA file %s holds no PEM certificate", e.caFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// options are the csync options for this end's TLS.
func (e tlsEnd) options(addr string, o csync.Options) (csync.Options, error) {
	cfg, err := e.config(addr)
	if err != nil {
		return o, err
	}
	o.TLS, o.ImplicitTLS = cfg, e.mode == tlsImplicit
	return o, nil
}
