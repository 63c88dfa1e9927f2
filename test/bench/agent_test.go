package bench

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/tlstest"
)

// startAgent builds and starts the master agent (cmd/agent) beside the pair's master on
// channel, with a certificate from a CA of its own and a bearer token, and returns the
// replicator flags that reach it.
func startAgent(b *testing.B, p *cyruspair.Pair, channel string) []string {
	b.Helper()
	dir := b.TempDir()
	bin := filepath.Join(dir, "agent")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/cyrusrepl/cyrusrepl/cmd/agent").CombinedOutput(); err != nil {
		b.Fatalf("build agent: %v\n%s", err, out)
	}
	ca := tlstest.NewCA(b, "bench agent CA")
	caFile := ca.WriteFile(b, dir)
	cert := ca.Valid(b, "127.0.0.1")
	certFile, keyFile := writeKeyPair(b, dir, cert)
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("bench-agent-token-0123456789abcdef\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	d := startDaemon(b, "agent", bin, "--master-config", p.Master.ConfigPath, "--channel", channel,
		"--listen", addr, "--token-file", token, "--tls-cert", certFile, "--tls-key", keyFile)
	b.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Kill()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("agent did not listen on %s: %v\n%s", addr, err, tail(d.out.String(), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return []string{"--agent", fmt.Sprintf("https://%s", addr), "--agent-token-file", token, "--agent-ca-file", caFile}
}

// writeKeyPair writes cert's chain and key as PEM files into dir.
func writeKeyPair(b *testing.B, dir string, cert tls.Certificate) (string, string) {
	b.Helper()
	var chain []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		b.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "agent.crt"), filepath.Join(dir, "agent.key")
	if err := os.WriteFile(certFile, chain, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
		b.Fatal(err)
	}
	return certFile, keyFile
}
