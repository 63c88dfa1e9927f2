package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/agenttest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	agenttest.RemoveBin()
	if replBin != "" {
		_ = os.RemoveAll(filepath.Dir(replBin))
	}
	os.Exit(code)
}

// TestUsage: missing flags, a channel that is not one directory name, a config without
// configdirectory and a TLS key pair that does not load exit 2 with one line.
func TestUsage(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "imapd.conf")
	if err := os.WriteFile(conf, []byte("configdirectory: "+dir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noDir := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(noDir, []byte("partition-default: /x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	full := []string{"--master-config", conf, "--listen", "127.0.0.1:0", "--token-file", tok, "--tls-cert", tok, "--tls-key", tok}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"nothing", nil, "--master-config is required"},
		{"no token", []string{"--master-config", conf, "--listen", "127.0.0.1:0"}, "--token-file is required"},
		{"channel path", append(slices.Clone(full), "--channel", "../../etc"), "want one directory name"},
		{"no configdirectory", append(slices.Clone(full), "--master-config", noDir), "configdirectory"},
		{"bad key pair", full, "--tls-cert/--tls-key"},
		{"bad listen", append(slices.Clone(full), "--listen", "nowhere"), "--listen"},
	} {
		var errb strings.Builder
		code := run(context.Background(), c.args, &errb)
		lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
		if code != exitUsage || !strings.Contains(lines[len(lines)-1], c.want) {
			t.Errorf("%s: exit %d %q, want 2 and %q", c.name, code, errb.String(), c.want)
		}
	}
}
