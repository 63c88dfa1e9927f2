package kubectlplugin

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	replv1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
)

var (
	k8s  client.Client
	kube kubernetes.Interface
)

// TestMain starts one real kube-apiserver + etcd (envtest) with the project's CRDs.
func TestMain(m *testing.M) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		if os.Getenv("CYRUSREPL_REQUIRE_ENVTEST") == "1" {
			os.Stderr.WriteString("CYRUSREPL_REQUIRE_ENVTEST=1 but KUBEBUILDER_ASSETS is not set; run hack/k8s-binaries.sh\n")
			os.Exit(1)
		}
		os.Stderr.WriteString("skipping envtest tests: KUBEBUILDER_ASSETS is not set\n")
		os.Exit(m.Run())
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		os.Stderr.WriteString("envtest: " + err.Error() + "\n")
		os.Exit(1)
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = replv1.AddToScheme(scheme)
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	if err == nil {
		kube, err = kubernetes.NewForConfig(cfg)
	}
	if err != nil {
		os.Stderr.WriteString("client: " + err.Error() + "\n")
		_ = env.Stop()
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func needEnvtest(t *testing.T) {
	if k8s == nil {
		t.Skip("no envtest (KUBEBUILDER_ASSETS unset)")
	}
}

func TestParseArgsFlagsAnywhere(t *testing.T) {
	cmd, pos, kc, ctxName, opts, err := ParseArgs([]string{"resync", "-n", "mail", "pair1", "alice", "--wait=false", "bob", "--kubeconfig", "/k", "--context", "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if cmd != "resync" || strings.Join(pos, ",") != "pair1,alice,bob" || opts.Namespace != "mail" || opts.Wait || kc != "/k" || ctxName != "c1" {
		t.Fatalf("got cmd=%q pos=%v ns=%q wait=%v kc=%q ctx=%q", cmd, pos, opts.Namespace, opts.Wait, kc, ctxName)
	}
	if _, _, _, _, _, err := ParseArgs([]string{"--bogus"}); err == nil {
		t.Fatal("unknown flag accepted")
	}
}

func newPair(t *testing.T, ns, name string) {
	t.Helper()
	pair := &replv1.ReplicationPair{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: replv1.ReplicationPairSpec{
			Master:  replv1.MasterEndpoint{Endpoint: replv1.Endpoint{Host: "127.0.0.1", Port: 2005, IMAPPort: 143, Username: "repl", PasswordSecretRef: replv1.SecretKeyRef{Name: "s", Key: "master"}}},
			Replica: replv1.Endpoint{Host: "127.0.0.1", Port: 2006, Username: "repl", PasswordSecretRef: replv1.SecretKeyRef{Name: "s", Key: "replica"}},
		},
	}
	if err := k8s.Create(context.Background(), pair); err != nil {
		t.Fatalf("create pair: %v", err)
	}
}

// TestResyncCreatesAndFollows runs `resync` against a real API server: it must create a
// UserResync with the users, wait while it runs, and print the per-user results the
// operator put in status; a Failed resync exits 1.
func TestResyncCreatesAndFollows(t *testing.T) {
	needEnvtest(t)
	ctx := context.Background()
	newPair(t, "default", "p1")
	for _, tc := range []struct {
		phase replv1.ResyncPhase
		want  int
	}{{replv1.ResyncSucceeded, ExitOK}, {replv1.ResyncFailed, ExitFailed}} {
		var out bytes.Buffer
		p := &Plugin{Client: k8s, Out: &out, Opts: Options{Namespace: "default", Wait: true, Timeout: 30 * time.Second, Poll: 50 * time.Millisecond}}
		done := make(chan int, 1)
		go func() {
			code, err := p.Run(ctx, "verify", []string{"p1", "alice", "bob", "alice"})
			if err != nil {
				t.Errorf("run: %v", err)
			}
			done <- code
		}()
		// play the operator: find the new resync and finish it
		ur := waitForResync(ctx, t, func(u *replv1.UserResync) bool { return u.Status.Phase == "" })
		if ur.Spec.Mode != replv1.ResyncVerify || strings.Join(ur.Spec.Users, ",") != "alice,bob" || ur.Spec.PairName != "p1" {
			t.Fatalf("spec = %+v", ur.Spec)
		}
		now := metav1.Now()
		ur.Status = replv1.UserResyncStatus{
			Phase: tc.phase, StartTime: &now, CompletionTime: &now, UsersTotal: 2,
			Users: []replv1.UserResultRecord{{User: "alice", Outcome: "equal"}, {User: "bob", Outcome: "differs", Mismatches: 1}},
			Report: replv1.ReportStatus{
				MismatchCounts:   map[string]int64{"replica-only": 1},
				RecentMismatches: []replv1.MismatchRecord{{ID: "x", Time: now, User: "bob", Kind: "replica-only", ReplicaName: "user.bob.Old"}},
			},
		}
		if err := k8s.Status().Update(ctx, ur); err != nil {
			t.Fatalf("status update: %v", err)
		}
		select {
		case code := <-done:
			if code != tc.want {
				t.Fatalf("phase %s: exit %d, want %d\n%s", tc.phase, code, tc.want, out.String())
			}
		case <-time.After(20 * time.Second):
			t.Fatal("plugin did not return after the resync finished")
		}
		for _, want := range []string{"created", "bob", "differs", "replica-only", "user.bob.Old", string(tc.phase)} {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("output lacks %q:\n%s", want, out.String())
			}
		}
	}
}

func TestResyncUnknownPair(t *testing.T) {
	needEnvtest(t)
	var out bytes.Buffer
	p := &Plugin{Client: k8s, Out: &out, Opts: Options{Namespace: "default", Wait: true, Timeout: time.Second, Poll: 10 * time.Millisecond}}
	code, err := p.Run(context.Background(), "resync", []string{"nosuchpair", "alice"})
	if code != ExitUsage || err == nil || !strings.Contains(err.Error(), "nosuchpair") {
		t.Fatalf("code %d err %v", code, err)
	}
}

func TestStatusRendersPair(t *testing.T) {
	needEnvtest(t)
	ctx := context.Background()
	newPair(t, "default", "p2")
	var pair replv1.ReplicationPair
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: "default", Name: "p2"}, &pair); err != nil {
		t.Fatal(err)
	}
	backlog := int64(7)
	pair.Status.Backlog = &backlog
	pair.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Replicating", Message: "ok", LastTransitionTime: metav1.Now()}}
	if err := k8s.Status().Update(ctx, &pair); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	p := &Plugin{Client: k8s, Out: &out, Opts: Options{Namespace: "default"}}
	code, err := p.Run(ctx, "status", []string{"p2"})
	if err != nil || code != ExitOK {
		t.Fatalf("code %d err %v", code, err)
	}
	for _, want := range []string{"default/p2", "Backlog:", "7 sync-log entries", "Replicating"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// lockedBuffer lets the test read what the plugin writes from another goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestResyncShowsStall: while the resync waits on something a person must fix (the
// operator sets Stalled, e.g. ReferenceMissing), `resync` prints the reason and message
// once, then goes on to the result.
func TestResyncShowsStall(t *testing.T) {
	needEnvtest(t)
	ctx := context.Background()
	newPair(t, "default", "p3")
	out := &lockedBuffer{}
	p := &Plugin{Client: k8s, Out: out, Opts: Options{Namespace: "default", Wait: true, Timeout: 30 * time.Second, Poll: 20 * time.Millisecond}}
	done := make(chan int, 1)
	go func() {
		code, err := p.Run(ctx, "resync", []string{"p3", "alice"})
		if err != nil {
			t.Errorf("run: %v", err)
		}
		done <- code
	}()
	ur := waitForResync(ctx, t, func(u *replv1.UserResync) bool { return u.Spec.PairName == "p3" })
	const msg = `ReplicationPair "p3": Secret "s" not found (spec.master.passwordSecretRef, spec.replica.passwordSecretRef); the Job starts once they exist`
	now := metav1.Now()
	ur.Status = replv1.UserResyncStatus{Phase: replv1.ResyncPending, Conditions: []metav1.Condition{
		{Type: replv1.ConditionReady, Status: metav1.ConditionFalse, Reason: replv1.ReasonReferenceMissing, Message: msg, LastTransitionTime: now},
		{Type: replv1.ConditionStalled, Status: metav1.ConditionTrue, Reason: replv1.ReasonReferenceMissing, Message: msg, LastTransitionTime: now},
	}}
	if err := k8s.Status().Update(ctx, ur); err != nil {
		t.Fatalf("status update: %v", err)
	}
	want := "stalled: ReferenceMissing: " + msg + "\n"
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no stall line in:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	ur.Status = replv1.UserResyncStatus{Phase: replv1.ResyncSucceeded, StartTime: &now, CompletionTime: &now, UsersTotal: 1}
	if err := k8s.Status().Update(ctx, ur); err != nil {
		t.Fatalf("status update: %v", err)
	}
	select {
	case code := <-done:
		if code != ExitOK {
			t.Fatalf("exit %d\n%s", code, out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("plugin did not return after the resync finished")
	}
	if n := strings.Count(out.String(), "stalled:"); n != 1 {
		t.Fatalf("stall printed %d times:\n%s", n, out.String())
	}
}

// waitForResync polls for the UserResync the plugin created (the first one match
// accepts) and fails the test when none shows up in 20 s.
func waitForResync(ctx context.Context, t *testing.T, match func(*replv1.UserResync) bool) *replv1.UserResync {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var list replv1.UserResyncList
		if err := k8s.List(ctx, &list, client.InNamespace("default")); err != nil {
			t.Fatal(err)
		}
		for i := range list.Items {
			if match(&list.Items[i]) {
				return &list.Items[i]
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("plugin created no UserResync")
	return nil
}

// TestResyncLongestPairName: `verify` and `resync` must work for a pair whose name is as
// long as the API allows (48 characters): the generated UserResync name must stay within
// the UserResync's own 52-character limit.
func TestResyncLongestPairName(t *testing.T) {
	needEnvtest(t)
	ctx := context.Background()
	name := strings.Repeat("p", 47) + "x" // 48 characters, the CRD's maximum
	newPair(t, "default", name)
	for _, cmd := range []string{"verify", "resync"} {
		var out bytes.Buffer
		p := &Plugin{Client: k8s, Out: &out, Opts: Options{Namespace: "default", Wait: false}}
		code, err := p.Run(ctx, cmd, []string{name, "alice"})
		if err != nil || code != ExitOK {
			t.Fatalf("%s on a %d-character pair: exit %d, %v", cmd, len(name), code, err)
		}
		if !strings.Contains(out.String(), "created") {
			t.Fatalf("%s: output %q", cmd, out.String())
		}
	}
}
