// Package scale measures the operator at scale on a real kube-apiserver + etcd (envtest):
// many ReplicationPairs reconciled by the real manager binary (cmd/manager, run as its own
// process so that its RSS is its own). It holds only a benchmark, so a plain
// `go test ./...` runs nothing here.
//
//	KUBEBUILDER_ASSETS=$(hack/k8s-binaries.sh) go test -run '^$' -bench BenchmarkOperatorScale \
//	    -benchtime 1x -timeout 60m ./test/scale/
//
// Sizes: CYRUSREPL_SCALE_PAIRS (1000), CYRUSREPL_SCALE_NAMESPACES (10),
// CYRUSREPL_SCALE_QUIET (quiet window, 60s).
package scale

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/loadavg"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func BenchmarkOperatorScale(b *testing.B) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		if os.Getenv("CYRUSREPL_REQUIRE_ENVTEST") == "1" {
			b.Fatal("CYRUSREPL_REQUIRE_ENVTEST=1 but KUBEBUILDER_ASSETS is not set (run hack/k8s-binaries.sh)")
		}
		b.Skip("KUBEBUILDER_ASSETS not set: no kube-apiserver/etcd for envtest")
	}
	pairs := envInt("CYRUSREPL_SCALE_PAIRS", 1000)
	nss := envInt("CYRUSREPL_SCALE_NAMESPACES", 10)
	quiet := time.Duration(envInt("CYRUSREPL_SCALE_QUIET", 60)) * time.Second
	for range b.N {
		b.StopTimer()
		operatorScaleOnce(b, pairs, nss, quiet)
		b.StartTimer()
	}
}

func operatorScaleOnce(b *testing.B, pairs, nss int, quiet time.Duration) {
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		b.Fatalf("start envtest: %v", err)
	}
	b.Cleanup(func() { _ = env.Stop() })
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1.AddToScheme(scheme)
	cfg.QPS, cfg.Burst = 500, 1000 // the benchmark's own client must not be the bottleneck
	k8s, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(dir, "manager")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/cyrusrepl/cyrusrepl/cmd/manager").CombinedOutput(); err != nil {
		b.Fatalf("build manager: %v\n%s", err, out)
	}
	metricsAddr := freeAddr(b)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Minute)
	defer cancel()
	mgr := exec.CommandContext(ctx, bin, "--metrics-bind-address", metricsAddr, "--health-probe-bind-address", "0",
		"--leader-elect=false", "--log-level", "error", "--replicator-image", "example.org/cyrusrepl/replicator:bench")
	mgr.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	mgrLog, err := os.Create(filepath.Join(dir, "manager.log"))
	if err != nil {
		b.Fatal(err)
	}
	mgr.Stdout, mgr.Stderr = mgrLog, mgrLog
	if err := mgr.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- mgr.Wait() }()
	b.Cleanup(func() {
		_ = mgr.Process.Signal(os.Interrupt)
		<-exited
	})

	// create the namespaces, their Secret, and the pairs (8 goroutines).
	start := time.Now()
	names := make([]string, nss)
	for i := range names {
		names[i] = fmt.Sprintf("scale-%02d", i)
		if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: names[i]}}); err != nil {
			b.Fatal(err)
		}
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: names[i], Name: "cyrus-creds"},
			StringData: map[string]string{"master-password": "m", "replica-password": "r"}}
		if err := k8s.Create(ctx, sec); err != nil {
			b.Fatal(err)
		}
	}
	work := make(chan int)
	var wg sync.WaitGroup
	var createErr error
	var mu sync.Mutex
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := k8s.Create(ctx, newPair(names[i%nss], fmt.Sprintf("pair-%04d", i))); err != nil {
					mu.Lock()
					createErr = err
					mu.Unlock()
				}
			}
		}()
	}
	for i := range pairs {
		work <- i
	}
	close(work)
	wg.Wait()
	if createErr != nil {
		b.Fatalf("create pair: %v", createErr)
	}
	created := time.Since(start)
	b.Logf("created %d pairs in %d namespaces in %s (load %s)", pairs, nss, created.Round(time.Millisecond), loadavg.String())

	// steady state: every pair observed at its generation, with a Ready condition, and
	// its Deployment present.
	var steady time.Duration
	for {
		settled, deps, err := countSettled(ctx, k8s)
		if err != nil {
			b.Fatal(err)
		}
		if settled == pairs && deps == pairs {
			steady = time.Since(start)
			break
		}
		select {
		case err := <-exited:
			exited <- err
			b.Fatalf("manager exited: %v (log %s)", err, mgrLog.Name())
		default:
		}
		if ctx.Err() != nil {
			b.Fatalf("no steady state: %d/%d pairs settled, %d deployments (manager log %s)", settled, pairs, deps, mgrLog.Name())
		}
		time.Sleep(time.Second)
	}
	settleRSS := procStatus(mgr.Process.Pid)
	b.Logf("steady state after %s: %d pairs settled with Deployments (load %s)", steady.Round(time.Millisecond), pairs, loadavg.String())

	// quiet window: nothing changes; count the manager's API writes and the objects whose
	// resourceVersion moved.
	before := scrape(b, metricsAddr)
	rvBefore := resourceVersions(b, ctx, k8s)
	time.Sleep(quiet)
	after := scrape(b, metricsAddr)
	rvAfter := resourceVersions(b, ctx, k8s)
	changed := 0
	for k, rv := range rvAfter {
		if rvBefore[k] != rv {
			changed++
		}
	}
	writes := map[string]float64{}
	var totalWrites, totalReqs float64
	for k, v := range after.requests {
		d := v - before.requests[k]
		totalReqs += d
		if m := k.method; m == "POST" || m == "PUT" || m == "PATCH" || m == "DELETE" {
			writes[m] += d
			totalWrites += d
		}
	}
	var rampWrites float64
	for k, v := range before.requests {
		if m := k.method; m == "POST" || m == "PUT" || m == "PATCH" || m == "DELETE" {
			rampWrites += v
		}
	}
	rss := procStatus(mgr.Process.Pid)
	fmt.Printf("operator pairs=%d: %g API writes by the manager from start to steady state (%.1f per pair)\n", pairs, rampWrites, rampWrites/float64(pairs))
	fmt.Printf("operator pairs=%d namespaces=%d | created in %.1fs | steady state after %.1fs (%.1f pairs/s) | quiet %s: %g API writes by the manager (%.4f per pair) %v, %g requests in all, %d objects changed resourceVersion | manager RSS %s kB (peak %s kB), heap in use %.1f MB, goroutines %g | load %s\n",
		pairs, nss, created.Seconds(), steady.Seconds(), float64(pairs)/steady.Seconds(), quiet,
		totalWrites, totalWrites/float64(pairs), writes, totalReqs, changed,
		rss["VmRSS"], rss["VmHWM"], after.gauge["go_memstats_heap_inuse_bytes"]/1e6, after.gauge["go_goroutines"], loadavg.String())
	b.Logf("manager RSS at steady state %s kB", settleRSS["VmRSS"])
	b.ReportMetric(steady.Seconds(), "steady-s")
	b.ReportMetric(totalWrites/float64(pairs), "quiet-writes/pair")
	b.ReportMetric(float64(changed), "quiet-objects-changed")
	b.ReportMetric(rampWrites/float64(pairs), "ramp-writes/pair")
	if v, err := strconv.ParseFloat(rss["VmHWM"], 64); err == nil {
		b.ReportMetric(v, "manager-peak-rss-kB")
	}
	b.ReportMetric(after.gauge["go_memstats_heap_inuse_bytes"]/1e6, "manager-heap-MB")
}

func newPair(ns, name string) *v1.ReplicationPair {
	return &v1.ReplicationPair{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.ReplicationPairSpec{
			Master: v1.MasterEndpoint{Endpoint: v1.Endpoint{Host: "cyrus-master.mail.svc", Username: "repl",
				PasswordSecretRef: v1.SecretKeyRef{Name: "cyrus-creds", Key: "master-password"}}},
			Replica: v1.Endpoint{Host: "cyrus-replica.mail.svc", Username: "repl",
				PasswordSecretRef: v1.SecretKeyRef{Name: "cyrus-creds", Key: "replica-password"}},
			SyncLog: &v1.SyncLogSource{
				Volume: v1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "cyrus-master-config"}},
				Path:   "sync/cyrusrepl",
			},
		},
	}
}

// countSettled counts pairs whose status is at their generation with a Ready condition,
// and the Deployments the manager owns.
func countSettled(ctx context.Context, k8s client.Client) (int, int, error) {
	var list v1.ReplicationPairList
	if err := k8s.List(ctx, &list); err != nil {
		return 0, 0, err
	}
	n := 0
	for _, p := range list.Items {
		if p.Status.ObservedGeneration == p.Generation && meta.FindStatusCondition(p.Status.Conditions, "Ready") != nil {
			n++
		}
	}
	var deps appsv1.DeploymentList
	if err := k8s.List(ctx, &deps); err != nil {
		return 0, 0, err
	}
	return n, len(deps.Items), nil
}

// resourceVersions of every object the manager reads or writes, keyed by kind/ns/name.
func resourceVersions(b *testing.B, ctx context.Context, k8s client.Client) map[string]string {
	b.Helper()
	out := map[string]string{}
	lists := []client.ObjectList{&v1.ReplicationPairList{}, &appsv1.DeploymentList{}, &corev1.ConfigMapList{},
		&corev1.ServiceAccountList{}, &corev1.SecretList{}, &corev1.EventList{}}
	for _, l := range lists {
		if err := k8s.List(ctx, l); err != nil {
			b.Fatal(err)
		}
		items, err := meta.ExtractList(l)
		if err != nil {
			b.Fatal(err)
		}
		for _, it := range items {
			o := it.(client.Object)
			out[fmt.Sprintf("%T/%s/%s", l, o.GetNamespace(), o.GetName())] = o.GetResourceVersion()
		}
	}
	return out
}

type reqKey struct{ code, method string }

type metricsSample struct {
	requests map[reqKey]float64
	gauge    map[string]float64
}

// scrape reads rest_client_requests_total and a few gauges from the manager's /metrics.
func scrape(b *testing.B, addr string) metricsSample {
	b.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		b.Fatalf("scrape manager metrics: %v", err)
	}
	defer resp.Body.Close()
	s := metricsSample{requests: map[reqKey]float64{}, gauge: map[string]float64{}}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		val, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(name, "rest_client_requests_total{"):
			s.requests[reqKey{code: label(name, "code"), method: label(name, "method")}] += val
		case name == "go_memstats_heap_inuse_bytes", name == "go_goroutines", name == "process_resident_memory_bytes":
			s.gauge[name] = val
		}
	}
	return s
}

func label(series, key string) string {
	_, v, ok := strings.Cut(series, key+`="`)
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, `"`)
	return v
}

func procStatus(pid int) map[string]string {
	out := map[string]string{}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return out
	}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			out[k] = strings.TrimSuffix(strings.TrimSpace(v), " kB")
		}
	}
	return out
}

func freeAddr(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
