package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestLogLevel(t *testing.T) {
	for _, ok := range []string{"debug", "info", "error", "-2"} {
		if _, err := newLogger(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	if _, err := newLogger("loud"); err == nil {
		t.Error("bad level accepted")
	}
}

// TestManagerServes starts the real manager (leader election on) against envtest and
// checks its probes and metrics.
func TestManagerServes(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		if os.Getenv("CYRUSREPL_REQUIRE_ENVTEST") == "1" {
			t.Fatal("CYRUSREPL_REQUIRE_ENVTEST=1 but KUBEBUILDER_ASSETS is not set")
		}
		t.Skip("KUBEBUILDER_ASSETS not set: no kube-apiserver/etcd for envtest")
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join("..", "..", "config", "crd", "bases")}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })

	metrics, probes := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--metrics-bind-address", metrics, "--health-probe-bind-address", probes,
			"--leader-elect", "--leader-election-namespace", "default", "--log-level", "error"}, cfg)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("manager: %v", err)
		}
	}()
	get := func(url string) (string, error) {
		resp, err := http.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("%s: %s", url, resp.Status)
		}
		return string(b), nil
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, errReady := get("http://" + probes + "/readyz")
		body, errMetrics := get("http://" + metrics + "/metrics")
		if errReady == nil && errMetrics == nil && strings.Contains(body, "cyrusrepl_pairs") && strings.Contains(body, "leader_election_master_status") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("manager not serving: readyz %v, metrics %v (has cyrusrepl_pairs: %v)", errReady, errMetrics, strings.Contains(body, "cyrusrepl_pairs"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
