package controllers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
)

// One envtest (real kube-apiserver + etcd from KUBEBUILDER_ASSETS) and one manager for
// the whole package. Without KUBEBUILDER_ASSETS the envtest tests skip, unless
// CYRUSREPL_REQUIRE_ENVTEST=1, which makes the package fail.
var (
	env         *envtest.Environment
	restCfg     *rest.Config
	k8s         client.Client
	mgrClient   client.Client // the manager's own (cached) client
	testScheme  *runtime.Scheme
	skipReason  string
	testImage   = "example.org/cyrusrepl/replicator:test"
	envStartDur time.Duration
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	testScheme = runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(testScheme)
	_ = v1.AddToScheme(testScheme)

	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		if os.Getenv("CYRUSREPL_REQUIRE_ENVTEST") == "1" {
			fmt.Fprintln(os.Stderr, "FAIL: CYRUSREPL_REQUIRE_ENVTEST=1 but KUBEBUILDER_ASSETS is not set (run hack/k8s-binaries.sh kube-apiserver etcd)")
			return 1
		}
		skipReason = "KUBEBUILDER_ASSETS not set: no kube-apiserver/etcd for envtest"
		return m.Run()
	}
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.Level(zapcore.Level(zapLevel()))))
	env = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	start := time.Now()
	var err error
	restCfg, err = env.Start()
	envStartDur = time.Since(start)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: start envtest:", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop envtest:", err)
		}
	}()
	fmt.Fprintf(os.Stderr, "envtest started in %v\n", envStartDur.Round(time.Millisecond))
	k8s, err = client.New(restCfg, client.Options{Scheme: testScheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: client:", err)
		return 1
	}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                 testScheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  CacheOptions(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: manager:", err)
		return 1
	}
	mgrClient = mgr.GetClient()
	summaryInterval = 2 * time.Second // the test manager's summaries: see TestEventsRateLimited for the limit itself
	if err := Setup(mgr, operator.PodOptions{Image: testImage}); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: setup:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	code := m.Run()
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "manager:", err)
	}
	return code
}

func zapLevel() int8 {
	if os.Getenv("CYRUSREPL_TEST_VERBOSE") != "" {
		return -1
	}
	return 2 // errors only: keep test output readable
}

// needEnv skips a test when there is no envtest (see TestMain).
func needEnv(t *testing.T) context.Context {
	t.Helper()
	if env == nil {
		t.Skip(skipReason)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// eventually retries f until it returns nil, failing the test with f's last error when
// the deadline passes. The deadline is generous: it is a hang guard, not a timing check.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// newNamespace creates a fresh namespace for one test.
func newNamespace(t *testing.T, ctx context.Context) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}}
	if err := k8s.Create(ctx, ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}
