package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
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

// One envtest (real kube-apiserver + etcd) for the package, started by the first test
// that needs it.
var (
	envOnce sync.Once
	testEnv *envtest.Environment
	envCfg  *rest.Config
	envErr  error
	admin   client.Client
)

func TestMain(m *testing.M) {
	controllerOptions.SkipNameValidation = ptrTo(true) // several managers in one process
	code := m.Run()
	if testEnv != nil {
		_ = testEnv.Stop()
	}
	os.Exit(code)
}

func needEnv(t *testing.T) (*rest.Config, client.Client) {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		if os.Getenv("CYRUSREPL_REQUIRE_ENVTEST") == "1" {
			t.Fatal("CYRUSREPL_REQUIRE_ENVTEST=1 but KUBEBUILDER_ASSETS is not set")
		}
		t.Skip("KUBEBUILDER_ASSETS not set: no kube-apiserver/etcd for envtest")
	}
	envOnce.Do(func() {
		testEnv = &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join("..", "..", "config", "crd", "bases")}, ErrorIfCRDPathMissing: true}
		if envCfg, envErr = testEnv.Start(); envErr != nil {
			return
		}
		scheme := runtime.NewScheme()
		_ = clientgoscheme.AddToScheme(scheme)
		_ = v1.AddToScheme(scheme)
		admin, envErr = client.New(envCfg, client.Options{Scheme: scheme})
	})
	if envErr != nil {
		t.Fatal(envErr)
	}
	return envCfg, admin
}

// startManager runs the manager with args until the test ends.
func startManager(t *testing.T, args []string, cfg *rest.Config) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("manager: %v", err)
		}
	})
}

// waitFor retries f until it returns nil; the deadline is a hang guard.
func waitFor(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// httpGet fetches url (skipping TLS verification: the manager's metrics certificate is
// self-signed) with an optional bearer token, and returns the status and body.
func httpGet(url, token string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// serviceAccountToken creates a ServiceAccount and returns a token for it.
func serviceAccountToken(t *testing.T, ctx context.Context, ns, name string) string {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := admin.Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(3600))}}
	if err := admin.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatalf("token request: %v", err)
	}
	return tr.Status.Token
}

func ptrTo[T any](v T) *T { return &v }

func newNS(t *testing.T, ctx context.Context, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix}}
	if err := admin.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// TestManagerServes starts the real manager (leader election on) and checks its probes
// and its metrics, which answer only callers the API server authenticates and
// authorizes: no token 401, a token without `get /metrics` 403, with it 200.
func TestManagerServes(t *testing.T) {
	cfg, _ := needEnv(t)
	ctx := context.Background()
	metrics, probes := freeAddr(t), freeAddr(t)
	startManager(t, []string{"--metrics-bind-address", metrics, "--health-probe-bind-address", probes,
		"--leader-elect", "--leader-election-namespace", "default", "--log-level", "error"}, cfg)

	ns := newNS(t, ctx, "scrape-")
	denied := serviceAccountToken(t, ctx, ns, "nosy")
	allowed := serviceAccountToken(t, ctx, ns, "prometheus")
	reader := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{GenerateName: "metrics-reader-"},
		Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}
	if err := admin.Create(ctx, reader); err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{GenerateName: "metrics-reader-"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader.Name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "prometheus"}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "manager serving", func() error {
		if code, _, err := httpGet("http://"+probes+"/readyz", ""); err != nil || code != http.StatusOK {
			return fmt.Errorf("readyz %d %v", code, err)
		}
		code, body, err := httpGet("https://"+metrics+"/metrics", allowed)
		if err != nil || code != http.StatusOK || !strings.Contains(body, "cyrusrepl_pairs") || !strings.Contains(body, "leader_election_master_status") {
			return fmt.Errorf("metrics with a reader's token: %d %v (has cyrusrepl_pairs: %v)", code, err, strings.Contains(body, "cyrusrepl_pairs"))
		}
		return nil
	})
	if code, _, err := httpGet("https://"+metrics+"/metrics", ""); err != nil || code != http.StatusUnauthorized {
		t.Errorf("metrics without a token: %d %v, want 401", code, err)
	}
	if code, _, err := httpGet("https://"+metrics+"/metrics", denied); err != nil || code != http.StatusForbidden {
		t.Errorf("metrics with a token lacking get /metrics: %d %v, want 403", code, err)
	}
	if code, _, err := httpGet("http://"+metrics+"/metrics", ""); err == nil && code == http.StatusOK {
		t.Errorf("metrics served in clear")
	}
}

// TestManagerOutOfClusterNoFlags: against a kubeconfig, outside a pod, the manager needs
// no flag (before: "unable to find leader election namespace"). Only the listen
// addresses are given, so parallel tests on this machine do not collide.
func TestManagerOutOfClusterNoFlags(t *testing.T) {
	cfg, _ := needEnv(t)
	t.Setenv("POD_NAMESPACE", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	probes := freeAddr(t)
	startManager(t, []string{"--metrics-bind-address", "0", "--health-probe-bind-address", probes}, cfg)
	waitFor(t, "manager ready", func() error {
		code, _, err := httpGet("http://"+probes+"/readyz", "")
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("readyz %d %v", code, err)
		}
		return nil
	})
	if err := run(context.Background(), []string{"--leader-elect", "--metrics-bind-address", "0", "--health-probe-bind-address", "0"}, cfg); err == nil ||
		!strings.Contains(err.Error(), "--leader-election-namespace") {
		t.Errorf("leader election out of a cluster without a namespace: %v, want a hint at --leader-election-namespace", err)
	}
}

// TestManagerNamespaced: the manager, as a ServiceAccount holding the generated rules
// (config/rbac/role.yaml) as Roles in two namespaces only, with --namespace naming them,
// runs the pairs there; a pair in a third namespace gets nothing.
func TestManagerNamespaced(t *testing.T) {
	cfg, _ := needEnv(t)
	ctx := context.Background()
	home := newNS(t, ctx, "op-")
	a, b, other := newNS(t, ctx, "mail-a-"), newNS(t, ctx, "mail-b-"), newNS(t, ctx, "other-")
	token := serviceAccountToken(t, ctx, home, "manager")

	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var generated rbacv1.ClusterRole
	if err := yaml.Unmarshal(raw, &generated); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{a, b} {
		role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cyrusrepl-manager"}, Rules: generated.Rules}
		if err := admin.Create(ctx, role); err != nil {
			t.Fatal(err)
		}
		if err := admin.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cyrusrepl-manager"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: home, Name: "manager"}}}); err != nil {
			t.Fatal(err)
		}
	}
	saCfg := rest.AnonymousClientConfig(cfg)
	saCfg.BearerToken = token
	startManager(t, []string{"--namespace", a + "," + b, "--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--log-level", "error"}, saCfg)

	for _, ns := range []string{a, b, other} {
		if err := admin.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "creds"},
			StringData: map[string]string{"pw": "x"}}); err != nil {
			t.Fatal(err)
		}
		pair := &v1.ReplicationPair{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"}, Spec: v1.ReplicationPairSpec{
			Master:  v1.MasterEndpoint{Endpoint: v1.Endpoint{Host: "m", Username: "repl", PasswordSecretRef: v1.SecretKeyRef{Name: "creds", Key: "pw"}, IMAPPort: 143}},
			Replica: v1.Endpoint{Host: "r", Username: "repl", PasswordSecretRef: v1.SecretKeyRef{Name: "creds", Key: "pw"}},
		}}
		if err := admin.Create(ctx, pair); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []string{a, b} {
		waitFor(t, "pair in "+ns+" reconciled", func() error {
			var p v1.ReplicationPair
			if err := admin.Get(ctx, types.NamespacedName{Namespace: ns, Name: "p"}, &p); err != nil {
				return err
			}
			if p.Status.ObservedGeneration != p.Generation || len(p.Status.Conditions) == 0 {
				return fmt.Errorf("status %+v", p.Status)
			}
			var d appsv1.Deployment
			return admin.Get(ctx, types.NamespacedName{Namespace: ns, Name: operator.ReplicatorName("p")}, &d)
		})
	}
	var p v1.ReplicationPair
	if err := admin.Get(ctx, types.NamespacedName{Namespace: other, Name: "p"}, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Status.Conditions) != 0 {
		t.Errorf("the pair outside --namespace was reconciled: %+v", p.Status)
	}
}
