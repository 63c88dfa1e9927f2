// Command agent runs beside a Cyrus master and serves a replicator what only the
// master's disk holds: its sync-log channel (leased), mailboxes.db lookups, mailbox
// index reads (for update deltas) and its imapd.conf settings, over HTTPS with a bearer token (docs/agent.md).
//
//	agent --master-config /etc/imapd.conf [--channel NAME] --listen HOST:PORT \
//	      --token-file FILE --tls-cert FILE --tls-key FILE [--client-ca FILE]
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/agent"
)

// Exit codes.
const (
	exitOK    = 0
	exitUsage = 2 // bad flags, unreadable files, address in use
	exitServe = 1 // the server stopped with an error
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr))
}

type flags struct {
	masterConfig, channel, listen  string
	tokenFile, tlsCert, tlsKey, ca string
	leaseTTL                       time.Duration
}

func parse(args []string, stderr io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.masterConfig, "master-config", "", "the master's imapd.conf (required)")
	fs.StringVar(&f.channel, "channel", "", "sync-log channel to serve: <configdirectory>/sync/NAME/log (default: the unnamed channel, <configdirectory>/sync/log)")
	fs.StringVar(&f.listen, "listen", "", "HOST:PORT to serve HTTPS on (required; there is no plaintext listener)")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the bearer token clients must send (required; re-read when it changes)")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "PEM server certificate (required; re-read when it changes)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM private key of --tls-cert (required)")
	fs.StringVar(&f.ca, "client-ca", "", "PEM CA bundle: clients must present a certificate it signed (mutual TLS)")
	fs.DurationVar(&f.leaseTTL, "lease-ttl", 5*time.Minute, "longest a lease stays unacknowledged before it is handed out again")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	for _, req := range []struct{ name, v string }{
		{"--master-config", f.masterConfig}, {"--listen", f.listen}, {"--token-file", f.tokenFile},
		{"--tls-cert", f.tlsCert}, {"--tls-key", f.tlsKey},
	} {
		if req.v == "" {
			return f, fmt.Errorf("%s is required", req.name)
		}
	}
	if _, _, err := net.SplitHostPort(f.listen); err != nil {
		return f, fmt.Errorf("--listen %q: %v", f.listen, err)
	}
	if _, err := os.Stat(f.tokenFile); err != nil {
		return f, fmt.Errorf("--token-file: %v", err)
	}
	return f, nil
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	f, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "agent: %v\n", err)
		return exitUsage
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil))
	srv, err := agent.New(agent.Options{MasterConfig: f.masterConfig, Channel: f.channel, TokenFile: f.tokenFile, LeaseTTL: f.leaseTTL, Log: logger})
	if err != nil {
		fmt.Fprintf(stderr, "agent: --master-config: %v\n", err)
		return exitUsage
	}
	tlsCfg, err := serverTLS(f.tlsCert, f.tlsKey, f.ca)
	if err != nil {
		fmt.Fprintf(stderr, "agent: %v\n", err)
		return exitUsage
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		fmt.Fprintf(stderr, "agent: --listen: %v\n", err)
		return exitUsage
	}
	hs := &http.Server{
		Handler: srv, TLSConfig: tlsCfg, ConnContext: srv.ConnContext, ConnState: srv.ConnState,
		// No WriteTimeout: a lease answer stays open until it is acknowledged.
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("agent serving", "listen", ln.Addr().String(), "channel", f.channel, "channelDir", srv.ChannelDir(), "mutualTLS", f.ca != "")
	done := make(chan error, 1)
	go func() { done <- hs.ServeTLS(ln, "", "") }()
	select {
	case err := <-done:
		logger.Error("agent stopped", "err", err)
		return exitServe
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx) // open leases end unacknowledged: their log-run stays
	return exitOK
}

// serverTLS is TLS 1.2+ with the certificate re-read when its files change, and client
// certificates required and verified when clientCA is given.
func serverTLS(certFile, keyFile, clientCA string) (*tls.Config, error) {
	kp := &keyPair{cert: certFile, key: keyFile}
	if _, err := kp.get(nil); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: kp.get}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, fmt.Errorf("--client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--client-ca %s holds no PEM certificate", clientCA)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
