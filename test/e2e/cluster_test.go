//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The loopback ports hack/cluster.sh listens on.
var clusterPorts = []int{2379, 2380, 2381, 6443, 10248, 10250, 10257, 10259}

// hardened is the container securityContext the chart gives the manager; the smoke pods
// use it too, so the runtime is known to accept it.
const hardened = `
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          runAsNonRoot: true
          capabilities: {drop: [ALL]}
          seccompProfile: {type: RuntimeDefault}`

// TestCluster brings a fresh cluster up, runs a pod and a Job from a locally built image,
// reads their logs through the API server (apiserver -> kubelet on localhost), and takes
// the cluster down again, checking that nothing it started is left.
func TestCluster(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the e2e cluster needs root (containerd, runc, kubelet)")
	}
	ctx := context.Background()
	repo := repoRoot(t)
	dir := os.Getenv("CYRUSREPL_E2E_CLUSTER_DIR")
	if dir == "" {
		dir = "/tmp/cyrusrepl-e2e"
	}
	bins, err := run(t, ctx, repo, "hack/k8s-binaries.sh", "kubectl")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{repo: repo, dir: dir, kubectl: filepath.Join(strings.TrimSpace(bins), "kubectl")}

	out, err := run(t, ctx, repo, "hack/cluster.sh", "up", dir)
	downDone := false
	t.Cleanup(func() {
		if !downDone {
			run(t, context.Background(), repo, "hack/cluster.sh", "down", dir)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	c.kubeconfig = lines[len(lines)-1]
	if _, err := os.Stat(c.kubeconfig); err != nil {
		t.Fatalf("cluster.sh up printed %q, not a kubeconfig: %v", c.kubeconfig, err)
	}
	pids := recordedPIDs(t, dir)
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "containerd", "kubelet"} {
		p, ok := pids[name]
		if !ok || !procRunning(p[0], p[1]) {
			t.Fatalf("%s is not running after up (pid record %v)", name, p)
		}
	}
	if _, err := run(t, ctx, repo, "hack/images.sh", "--cluster", dir, "smoke"); err != nil {
		t.Fatal(err)
	}

	t.Run("node", func(t *testing.T) { checkNode(t, ctx, c) })
	t.Run("pod", func(t *testing.T) { runSmokePod(t, ctx, c) })
	t.Run("job", func(t *testing.T) { runSmokeJob(t, ctx, c) })
	// The project's own image and chart need cmd/ to build; opt in until the manager lands.
	if os.Getenv("CYRUSREPL_E2E_DEV_IMAGE") == "1" {
		t.Run("dev-image", func(t *testing.T) { runDevImage(t, ctx, c) })
		t.Run("chart", func(t *testing.T) { runChart(t, ctx, c) })
	}

	// a pod still running at `down` must not survive it
	c.apply(t, ctx, smokePod("left-running", []string{"-sleep", "1h"}, "Always"))
	waitPhase(t, ctx, c, "left-running", "Running")
	// exec streams apiserver -> kubelet (localhost) -> containerd (127.0.0.1); the exit
	// code must come back through all of them
	out2, err := osexec.CommandContext(ctx, c.kubectl, "--kubeconfig", c.kubeconfig,
		"exec", "left-running", "--", "/smoke", "-exit", "3").CombinedOutput()
	out = string(out2)
	if ee, ok := err.(*osexec.ExitError); !ok || ee.ExitCode() != 3 || !strings.Contains(out, "hello from pod=left-running ") {
		t.Errorf("kubectl exec: err %v, output %q; want exit code 3 and the greeting", err, out)
	}

	nodeIPs := nodeInternalIPs(t, ctx, c)
	if _, err := run(t, ctx, repo, "hack/cluster.sh", "down", dir); err != nil {
		t.Fatal(err)
	}
	downDone = true
	checkNoDialsTo(t, dir, nodeIPs)
	for name, p := range pids {
		if procRunning(p[0], p[1]) {
			t.Errorf("%s (pid %s) still runs after down", name, p[0])
		}
	}
	if left := processesMentioning(dir + "/"); len(left) > 0 {
		t.Errorf("processes mentioning %s still run after down: %v", dir, left)
	}
	if left := processesMentioning("/smoke\x00"); len(left) > 0 {
		t.Errorf("smoke containers still run after down: %v", left)
	}
	// runc state of our containers (kept by a shim that died without cleaning up)
	tasks, _ := filepath.Glob(filepath.Join(dir, "containerd", "state", "io.containerd.runtime.v2.task", "*", "*"))
	for _, task := range tasks {
		state := filepath.Join("/run/containerd/runc", filepath.Base(filepath.Dir(task)), filepath.Base(task))
		if _, err := os.Stat(state); err == nil {
			t.Errorf("runc state %s left after down", state)
		}
	}
	if m := mountsUnder(t, dir); len(m) > 0 {
		t.Errorf("still mounted under %s after down: %v", dir, m)
	}
	for _, port := range clusterPorts {
		if !portFree(port) {
			t.Errorf("127.0.0.1:%d still taken after down", port)
		}
	}
	// down twice is fine
	if _, err := run(t, ctx, repo, "hack/cluster.sh", "down", dir); err != nil {
		t.Errorf("second down: %v", err)
	}
}

func checkNode(t *testing.T, ctx context.Context, c *cluster) {
	var node struct {
		Status struct {
			Addresses []struct{ Type, Address string }
			NodeInfo  struct{ KubeletVersion, ContainerRuntimeVersion string }
		}
	}
	if err := c.getJSON(ctx, &node, "node", "localhost"); err != nil {
		t.Fatal(err)
	}
	hostname := ""
	for _, a := range node.Status.Addresses {
		if a.Type == "Hostname" {
			hostname = a.Address
		}
	}
	// the apiserver reaches the kubelet by this name (--kubelet-preferred-address-types=Hostname)
	if hostname != "localhost" {
		t.Errorf("node Hostname address %q, want localhost (addresses %v)", hostname, node.Status.Addresses)
	}
	t.Logf("node: kubelet %s, runtime %s", node.Status.NodeInfo.KubeletVersion, node.Status.NodeInfo.ContainerRuntimeVersion)
}

func smokePod(name string, args []string, restart string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = fmt.Sprintf("%q", a)
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: default}
spec:
  hostNetwork: true
  restartPolicy: %s
  terminationGracePeriodSeconds: 1
  containers:
      - name: smoke
        image: cyrusrepl-smoke:dev
        imagePullPolicy: Never
        args: [%s]
        env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: KUBERNETES_SERVICE_HOST, value: "127.0.0.1"}
        - {name: KUBERNETES_SERVICE_PORT, value: "6443"}%s
`, name, restart, strings.Join(q, ", "), hardened)
}

func waitPhase(t *testing.T, ctx context.Context, c *cluster, name, want string) {
	t.Helper()
	waitFor(t, ctx, 3*time.Minute, "pod "+name+" "+want, func(ctx context.Context) (bool, string, error) {
		var pod struct {
			Status struct {
				Phase             string
				ContainerStatuses []struct{ State map[string]any }
			}
		}
		if err := c.getJSON(ctx, &pod, "pod", name); err != nil {
			return false, err.Error(), nil
		}
		if pod.Status.Phase == want {
			return true, "", nil
		}
		if pod.Status.Phase == "Failed" || (pod.Status.Phase == "Succeeded" && want != "Succeeded") {
			logs, _ := c.kubectlOut(ctx, "logs", name)
			return false, "", fmt.Errorf("pod %s is %s (containers %v), logs: %s", name, pod.Status.Phase, pod.Status.ContainerStatuses, logs)
		}
		return false, fmt.Sprintf("phase %q containers %v", pod.Status.Phase, pod.Status.ContainerStatuses), nil
	})
}

// runSmokePod: a hostNetwork pod from the locally built image runs to Succeeded, talks to
// the API server with its service account, and its log is readable.
func runSmokePod(t *testing.T, ctx context.Context, c *cluster) {
	c.apply(t, ctx, smokePod("smoke", []string{"-apiserver"}, "Never"))
	waitPhase(t, ctx, c, "smoke", "Succeeded")
	logs, err := c.kubectlOut(ctx, "logs", "smoke")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pod log:\n%s", logs)
	for _, want := range []string{"hello from pod=smoke ", "uid=65532 ", "in-cluster apiserver version=v1."} {
		if !strings.Contains(logs, want) {
			t.Errorf("pod log lacks %q", want)
		}
	}
}

// runSmokeJob: a Job with two Guaranteed-QoS completions (the kubelet asks for a
// negative oom_score_adj, which containerd must clamp here) completes.
func runSmokeJob(t *testing.T, ctx context.Context, c *cluster) {
	c.apply(t, ctx, fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata: {name: smoke-job, namespace: default}
spec:
  completions: 2
  parallelism: 2
  backoffLimit: 0
  template:
    spec:
      hostNetwork: true
      restartPolicy: Never
      containers:
      - name: smoke
        image: cyrusrepl-smoke:dev
        imagePullPolicy: Never
        env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        resources:
          requests: {cpu: 20m, memory: 32Mi}
          limits: {cpu: 20m, memory: 32Mi}%s
`, hardened))
	waitFor(t, ctx, 3*time.Minute, "job smoke-job Complete", func(ctx context.Context) (bool, string, error) {
		var job struct {
			Status struct {
				Succeeded, Failed int
				Conditions        []struct{ Type, Status, Message string }
			}
		}
		if err := c.getJSON(ctx, &job, "job", "smoke-job"); err != nil {
			return false, err.Error(), nil
		}
		for _, cond := range job.Status.Conditions {
			if cond.Status != "True" {
				continue
			}
			switch cond.Type {
			case "Complete":
				if job.Status.Succeeded != 2 {
					return false, "", fmt.Errorf("job Complete with %d succeeded pods, want 2", job.Status.Succeeded)
				}
				return true, "", nil
			case "Failed":
				return false, "", fmt.Errorf("job failed: %s", cond.Message)
			}
		}
		return false, fmt.Sprintf("succeeded=%d failed=%d", job.Status.Succeeded, job.Status.Failed), nil
	})
	var pods struct {
		Items []struct {
			Metadata struct{ Name string }
			Status   struct{ QOSClass string }
		}
	}
	if err := c.getJSON(ctx, &pods, "pods", "-l", "job-name=smoke-job"); err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 2 {
		t.Fatalf("job has %d pods, want 2", len(pods.Items))
	}
	for _, p := range pods.Items {
		if p.Status.QOSClass != "Guaranteed" {
			t.Errorf("pod %s QoS %s, want Guaranteed", p.Metadata.Name, p.Status.QOSClass)
		}
		logs, err := c.kubectlOut(ctx, "logs", p.Metadata.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs, "hello from pod="+p.Metadata.Name+" ") {
			t.Errorf("pod %s log lacks its greeting: %q", p.Metadata.Name, logs)
		}
	}
}

// runDevImage: the project's own image (hack/images.sh dev) runs `replicator version`.
func runDevImage(t *testing.T, ctx context.Context, c *cluster) {
	if _, err := run(t, ctx, c.repo, "hack/images.sh", "--cluster", c.dir, "dev"); err != nil {
		t.Fatal(err)
	}
	c.apply(t, ctx, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: dev-version, namespace: default}
spec:
  hostNetwork: true
  restartPolicy: Never
  containers:
      - name: replicator
        image: cyrusrepl:dev
        imagePullPolicy: Never
        command: [/replicator, version]%s
`, hardened))
	waitPhase(t, ctx, c, "dev-version", "Succeeded")
	logs, err := c.kubectlOut(ctx, "logs", "dev-version")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(logs) == "" {
		t.Errorf("replicator version printed nothing")
	}
	t.Logf("replicator version: %s", strings.TrimSpace(logs))
}

// runChart installs charts/cyrusrepl with the local-cluster values (hack/deploy-local.sh
// builds and imports cyrusrepl:dev first), waits for the manager Deployment to become
// Available — its probes hit /healthz and /readyz on 127.0.0.1 — and uninstalls it,
// checking that the CRDs stay behind (helm.sh/resource-policy: keep).
func runChart(t *testing.T, ctx context.Context, c *cluster) {
	if _, err := run(t, ctx, c.repo, "hack/deploy-local.sh", "--cluster", c.dir, "--wait"); err != nil {
		out, _ := c.kubectlOut(ctx, "-n", "cyrusrepl-system", "describe", "pods")
		t.Fatalf("%v\n%s", err, out)
	}
	var dep struct {
		Status struct {
			Conditions []struct{ Type, Status string }
		}
	}
	if err := c.getJSON(ctx, &dep, "-n", "cyrusrepl-system", "deployment", "cyrusrepl-manager"); err != nil {
		t.Fatal(err)
	}
	available := false
	for _, cond := range dep.Status.Conditions {
		if cond.Type == "Available" && cond.Status == "True" {
			available = true
		}
	}
	if !available {
		t.Errorf("manager Deployment not Available: %v", dep.Status.Conditions)
	}
	crdsBefore, err := c.kubectlOut(ctx, "get", "crd", "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	if srcs, _ := filepath.Glob(filepath.Join(c.repo, "config", "crd", "bases", "*.yaml")); len(srcs) > 0 &&
		!strings.Contains(crdsBefore, "replicationpairs.replication.cyrusrepl.io") {
		t.Errorf("chart installed no ReplicationPair CRD; CRDs:\n%s", crdsBefore)
	}
	if _, err := run(t, ctx, c.repo, "hack/deploy-local.sh", "--cluster", c.dir, "--uninstall"); err != nil {
		t.Fatal(err)
	}
	crdsAfter, err := c.kubectlOut(ctx, "get", "crd", "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	if crdsAfter != crdsBefore {
		t.Errorf("CRDs changed on uninstall:\nbefore:\n%s\nafter:\n%s", crdsBefore, crdsAfter)
	}
}

// nodeInternalIPs returns the node's auto-detected non-loopback addresses.
func nodeInternalIPs(t *testing.T, ctx context.Context, c *cluster) []string {
	t.Helper()
	var node struct {
		Status struct {
			Addresses []struct{ Type, Address string }
		}
	}
	if err := c.getJSON(ctx, &node, "node", "localhost"); err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, a := range node.Status.Addresses {
		if a.Type == "InternalIP" || a.Type == "ExternalIP" {
			ips = append(ips, a.Address)
		}
	}
	return ips
}

// checkNoDialsTo fails when a component logged a connection attempt to one of the node's
// non-loopback addresses: everything must go through 127.0.0.1 / localhost.
func checkNoDialsTo(t *testing.T, dir string, ips []string) {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no component logs in %s/logs: %v", dir, err)
	}
	for _, f := range logs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, ip := range ips {
			if strings.Contains(string(b), "dial tcp "+ip+":") {
				t.Errorf("%s: a connection to the node's address %s was attempted", filepath.Base(f), ip)
			}
		}
	}
}
