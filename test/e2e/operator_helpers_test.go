//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// requireE2E fails the test when CYRUSREPL_REQUIRE_E2E=1 (as `make e2e` sets), and
// skips it otherwise, for something the end-to-end run needs but does not have.
func requireE2E(t *testing.T, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CYRUSREPL_REQUIRE_E2E") == "1" {
		t.Fatalf("CYRUSREPL_REQUIRE_E2E=1 but %s", why)
	}
	t.Skip(why)
}

// upCluster starts (or reuses) the hack/cluster.sh cluster in dir and takes it down at
// the end of the test unless CYRUSREPL_E2E_KEEP=1.
func upCluster(t *testing.T, ctx context.Context, repo, dir string) *cluster {
	t.Helper()
	bins, err := run(t, ctx, repo, "hack/k8s-binaries.sh",
		"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl", "etcd")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{repo: repo, dir: dir, kubectl: filepath.Join(strings.TrimSpace(bins), "kubectl")}
	out, err := run(t, ctx, repo, "hack/cluster.sh", "up", dir)
	t.Cleanup(func() {
		if os.Getenv("CYRUSREPL_E2E_KEEP") == "1" {
			t.Logf("CYRUSREPL_E2E_KEEP=1: cluster left running in %s (hack/cluster.sh down %s)", dir, dir)
			return
		}
		if _, err := run(t, context.Background(), repo, "hack/cluster.sh", "down", dir); err != nil {
			t.Errorf("cluster down: %v", err)
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
	return c
}

// diagnose logs what helps to understand a failure: objects, events, and the logs of
// the manager, the replicator and the resync pods.
func (c *cluster) diagnose(t *testing.T, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, args := range [][]string{
		{"get", "replicationpairs,userresyncs,deployments,jobs,pods,configmaps", "-A", "-o", "wide"},
		{"get", "replicationpairs,userresyncs", "-n", ns, "-o", "yaml"},
		{"get", "events", "-A", "--sort-by=.lastTimestamp"},
		{"-n", "cyrusrepl-system", "logs", "deploy/cyrusrepl-manager", "--tail=200"},
		{"-n", ns, "logs", "-l", "app.kubernetes.io/managed-by=cyrusrepl-operator", "--tail=200", "--prefix", "--all-containers"},
		{"-n", ns, "describe", "pods"},
	} {
		out, err := c.kubectlOut(ctx, args...)
		t.Logf("---- diagnostics: kubectl %s\n%s%v", strings.Join(args, " "), out, errOrEmpty(err))
	}
}

func errOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// plugin runs the kubectl plugin binary with the cluster's kubeconfig.
func (c *cluster) plugin(ctx context.Context, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.kubeconfig)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// folderState is what the replica or master holds in one folder, read as the user.
type folderState struct {
	Exists   bool
	Messages int
}

// readFolder reads MESSAGES of a user's folder without failing the test: a folder that
// does not exist (yet) is reported as such, for polling.
func readFolder(p *cyruspair.Pair, inst *cyruspair.Instance, user, folder string) (folderState, error) {
	c, err := cyruspair.DialIMAP(inst.IMAPAddr, user, p.AdminUser, p.AdminPassword)
	if err != nil {
		return folderState{}, err
	}
	defer c.Close()
	lines, err := c.Cmd("STATUS %s (MESSAGES)", cyruspair.Quote(cyruspair.FolderName(folder)))
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") || strings.Contains(err.Error(), "Invalid user") {
			return folderState{}, nil
		}
		return folderState{}, err
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "STATUS ") {
			continue
		}
		st := folderState{Exists: true}
		st.Messages = parseMessages(l)
		return st, nil
	}
	return folderState{}, fmt.Errorf("no STATUS reply for %s/%s", user, folder)
}

// parseMessages reads MESSAGES out of a STATUS line: `STATUS INBOX.Work (MESSAGES 1)`.
func parseMessages(line string) int {
	i := strings.IndexByte(line, '(')
	if i < 0 {
		return 0
	}
	f := strings.Fields(strings.Trim(line[i:], "()"))
	for k := 0; k+1 < len(f); k += 2 {
		if strings.EqualFold(f[k], "MESSAGES") {
			n, _ := strconv.Atoi(f[k+1])
			return n
		}
	}
	return 0
}
