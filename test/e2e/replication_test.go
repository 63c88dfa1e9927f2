//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/mboxdb"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

const (
	e2eNS    = "e2e"
	pairName = "pair"
	waitLong = 3 * time.Minute
)

// pairStatus is the part of a ReplicationPair the test reads.
type pairStatus struct {
	Metadata struct {
		ResourceVersion string
		Generation      int64
	}
	Status struct {
		ObservedGeneration int64
		Conditions         []struct{ Type, Status, Reason, Message string }
		Backlog            *int64
		Replicator         struct{ State string }
		State              *struct{ ID, ReplacedID string }
		Report             struct {
			DecisionCounts  map[string]int64
			MismatchCounts  map[string]int64
			RecentDecisions []struct {
				User, Action, Evidence, MasterName, ReplicaName, UniqueID string
			}
		}
	}
}

func (s *pairStatus) conditionReason(typ string) string {
	for _, c := range s.Status.Conditions {
		if c.Type == typ {
			return c.Reason
		}
	}
	return ""
}

func (s *pairStatus) condition(typ string) string {
	for _, c := range s.Status.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

// resyncStatus is the part of a UserResync the test reads.
type resyncStatus struct {
	Metadata struct{ ResourceVersion string }
	Status   struct {
		Phase      string
		JobName    string
		UsersTotal int32
		Conditions []struct{ Type, Status, Reason, Message string }
		Users      []struct {
			User, Outcome, Error           string
			Actions, Decisions, Mismatches int32
		}
		Report struct {
			MismatchCounts map[string]int64
		}
	}
}

// TestReplication runs the operator as the chart installs it, on the local cluster,
// against a real Cyrus master and replica with the master agent beside the master
// (hack/agent.sh): a ReplicationPair's replicator pod, which mounts nothing of the
// master's and reads its sync log through the agent, replicates new mail and a folder
// rename (as a rename), UserResyncs run as Job pods (kubectl apply and the kubectl
// plugin), a verify finds a deliberate difference and changes nothing, a replicator pod
// deleted mid-stream (its lease lost) loses nothing, a rotated agent token rolls the
// replicator, a resync whose image does not exist fails with PodCannotStart, and
// re-applying the manifests changes nothing.
func TestReplication(t *testing.T) {
	requireE2E(t, os.Geteuid() == 0, "the e2e cluster needs root (containerd, runc, kubelet)")
	ok, why := cyruspair.Available()
	requireE2E(t, ok, why)
	cy, err := user.Lookup("cyrus")
	requireE2E(t, err == nil, fmt.Sprintf("no cyrus user: %v", err))
	cyGroup, err := user.LookupGroupId(cy.Gid)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	repo := repoRoot(t)
	dir := os.Getenv("CYRUSREPL_E2E_CLUSTER_DIR")
	if dir == "" {
		dir = "/tmp/cyrusrepl-e2e"
	}

	p := cyruspair.Start(t, cyruspair.Options{DeleteMode: "delayed"})
	// Cyrus creates the channel directory on its first write; create it now (as cyrus,
	// mode 0700 like Cyrus makes it) so the agent serves it from the start.
	syncLog := p.Master.SyncLogDir(p.Channel)
	uid, _ := strconv.Atoi(cy.Uid)
	gid, _ := strconv.Atoi(cy.Gid)
	for _, d := range []string{filepath.Dir(syncLog), syncLog} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("cyrus runs as %s:%s (%d:%d); sync log %s", cy.Username, cyGroup.Name, uid, gid, syncLog)
	// The master's agent, a process beside the master as on a mail server of its own:
	// the replicator pods reach it over the network (127.0.0.1: they share the node's
	// network on this cluster) and mount nothing of the master's.
	ag := startAgent(t, ctx, repo, p)
	t.Logf("agent %s (pid %s)", ag.url, ag.pid)
	// The pair's state claim: the local cluster has no provisioner, so a hostPath
	// volume bound to the claim in advance, in a directory the replicator's user (the
	// chart's default, 65532) owns. It is a PersistentVolume, not a volume of the pair.
	stateDir := filepath.Join(p.Dir, "replicator-state")
	const replUID = 65532

	c := upCluster(t, ctx, repo, dir)
	t.Cleanup(func() {
		if t.Failed() {
			c.diagnose(t, e2eNS)
		}
	})
	// The operator as users get it: the chart, with the local-cluster values; hostPath
	// and nfs volumes of pairs refused (said here so the test shows it): the pair
	// reaches the master's sync log through the agent.
	if _, err := run(t, ctx, repo, "hack/deploy-local.sh", "--cluster", dir, "--wait", "--set", "replicator.allowHostPath=false"); err != nil {
		t.Fatal(err)
	}
	pluginBin := filepath.Join(t.TempDir(), "kubectl-cyrusrepl")
	if _, err := run(t, ctx, repo, "go", "build", "-o", pluginBin, "./cmd/kubectl-cyrusrepl"); err != nil {
		t.Fatal(err)
	}

	manifests := fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: v1
kind: Secret
metadata: {name: cyrus-repl, namespace: %[1]s}
type: Opaque
data: {password: %[2]s}
---
apiVersion: v1
kind: Secret
metadata: {name: cyrus-agent, namespace: %[1]s}
type: Opaque
data: {token: %[7]s, ca.crt: %[8]s}
---
apiVersion: replication.cyrusrepl.io/v1alpha1
kind: ReplicationPair
metadata: {name: %[3]s, namespace: %[1]s}
spec:
  master:
    host: 127.0.0.1
    port: %[4]s
    username: %[5]s
    passwordSecretRef: {name: cyrus-repl, key: password}
    tls: {mode: None}   # the local test pair is plain on loopback
    agent:
      url: %[9]s
      tokenSecretRef: {name: cyrus-agent, key: token}
      caSecretRef: {name: cyrus-agent, key: ca.crt}
  replica:
    host: 127.0.0.1
    port: %[6]s
    username: %[5]s
    passwordSecretRef: {name: cyrus-repl, key: password}
    tls: {mode: None}   # the local test pair is plain on loopback
  workers: 2
`, e2eNS, b64(p.ReplPassword), pairName, port(t, p.Master.SyncAddr), p.ReplUser, port(t, p.Replica.SyncAddr),
		b64(ag.token(t)), b64(ag.ca(t)), ag.url)

	// Mail before the pair exists: the first cycle finds it in the log.
	for _, u := range []string{"alice", "bob", "carol"} {
		p.Master.CreateUser(t, u)
	}
	p.Master.Deliver(t, "alice", cyruspair.Message("one", "first"))
	p.Master.Deliver(t, "alice", cyruspair.Message("two", "second"))
	p.Master.CreateFolder(t, "alice", "Work")
	p.Master.Append(t, "alice", "Work", cyruspair.Message("work", "a work message"))
	p.Master.Deliver(t, "bob", cyruspair.Message("bob", "for bob"))

	c.apply(t, ctx, statePV(t, pairName, stateDir, replUID, replUID))
	c.apply(t, ctx, manifests)

	t.Run("new mail reaches the replica", func(t *testing.T) {
		waitFolder(t, ctx, p, p.Replica, "alice", "INBOX", 2)
		waitFolder(t, ctx, p, p.Replica, "alice", "Work", 1)
		waitFolder(t, ctx, p, p.Replica, "bob", "INBOX", 1)
		// and mail delivered while the replicator runs
		p.Master.Deliver(t, "alice", cyruspair.Message("three", "third"))
		waitFolder(t, ctx, p, p.Replica, "alice", "INBOX", 3)
	})

	t.Run("status and printer columns", func(t *testing.T) {
		st := waitPair(t, ctx, c, "Ready and InSync", func(s *pairStatus) bool {
			return s.condition("Ready") == "True" && s.condition("InSync") == "True" &&
				s.Status.Backlog != nil && *s.Status.Backlog == 0 && s.Status.ObservedGeneration == s.Metadata.Generation
		})
		if st.Status.Replicator.State != "Running" {
			t.Errorf("status.replicator.state %q, want Running", st.Status.Replicator.State)
		}
		if st.Status.Report.DecisionCounts["create/none"] < 3 {
			t.Errorf("decision counts %v, want at least 3 create/none (user.alice, its Work, user.bob)", st.Status.Report.DecisionCounts)
		}
		out, err := c.kubectlOut(ctx, "-n", e2eNS, "get", "replicationpairs")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("kubectl get replicationpairs:\n%s", out)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 {
			t.Fatalf("want a header and one row, got:\n%s", out)
		}
		header, row := strings.Fields(lines[0]), tableCells(lines[0], lines[1])
		// LAG is empty when nothing waits: cells are cut at the header's offsets.
		if _, ok := row["LAG"]; !ok {
			t.Errorf("no LAG column in %v", header)
		}
		want := map[string]string{"NAME": pairName, "READY": "True", "IN-SYNC": "True", "SPLIT-BRAIN": "False", "BACKLOG": "0", "STATUS": "Available"}
		for h, got := range row {
			if w, ok := want[h]; ok {
				if got != w {
					t.Errorf("column %s = %q, want %q (row %q)", h, got, w, lines[1])
				}
				delete(want, h)
			}
		}
		if len(want) > 0 {
			t.Errorf("columns missing from the header %v: %v", header, want)
		}
	})

	t.Run("the replicator reaches the master through the agent and mounts nothing of it", func(t *testing.T) {
		var pods struct {
			Items []struct {
				Spec struct {
					Volumes []struct {
						Name                  string
						HostPath              any
						NFS                   any `json:"nfs"`
						PersistentVolumeClaim *struct{ ClaimName string }
					}
					Containers []struct{ Args []string }
				}
			}
		}
		sel := "replication.cyrusrepl.io/pair=" + pairName + ",app.kubernetes.io/component=replicator"
		if err := c.getJSON(ctx, &pods, "-n", e2eNS, "pods", "-l", sel); err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) != 1 {
			t.Fatalf("%d replicator pods, want 1", len(pods.Items))
		}
		spec := pods.Items[0].Spec
		for _, v := range spec.Volumes {
			if v.HostPath != nil || v.NFS != nil || (v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName != pairName+"-state") {
				t.Errorf("the replicator pod mounts volume %s: %+v", v.Name, v)
			}
		}
		args := strings.Join(spec.Containers[0].Args, " ")
		if !strings.Contains(args, "--agent "+ag.url) || strings.Contains(args, "--sync-log") || strings.Contains(args, "--master-config") {
			t.Errorf("replicator args %q: want --agent %s, no --sync-log or --master-config", args, ag.url)
		}
		// The entries came through the agent's leases, acknowledged once replicated.
		waitFor(t, ctx, time.Minute, "an acknowledged lease on the agent", func(ctx context.Context) (bool, string, error) {
			m, err := ag.metrics(ctx, t)
			if err != nil {
				return false, err.Error(), nil
			}
			return metricAtLeast(m, `cyrusrepl_agent_leases_total{result="acked"}`, 1), "no acked lease in:\n" + m, nil
		})
	})

	// What the chart's PodMonitor scrapes: the replicator pod's metrics port. On this
	// cluster the pod shares the node's network, so the port listens on 127.0.0.1. The
	// pod became Ready above, so its readiness probe (/readyz) answered the kubelet.
	t.Run("the replicator pod serves its metrics and probes", func(t *testing.T) {
		waitFor(t, ctx, time.Minute, "replicator /metrics", func(ctx context.Context) (bool, string, error) {
			body, code, err := httpGetLocal(ctx, "http://127.0.0.1:9090/metrics")
			if err != nil || code != 200 {
				return false, fmt.Sprintf("%d %v", code, err), nil
			}
			for _, want := range []string{"# HELP cyrusrepl_replication_lag_seconds ", "cyrusrepl_sync_log_backlog_entries ", "cyrusrepl_last_success_timestamp_seconds "} {
				if !strings.Contains(body, want) {
					return false, "no " + want, nil
				}
			}
			return true, "", nil
		})
		for _, path := range []string{"/healthz", "/readyz"} {
			if _, code, err := httpGetLocal(ctx, "http://127.0.0.1:9090"+path); err != nil || code != 200 {
				t.Errorf("%s: %d %v", path, code, err)
			}
		}
	})

	t.Run("a folder rename arrives as a rename", func(t *testing.T) {
		// Uniqueids from each instance's mailboxes.db (Cyrus 3.6's IMAP STATUS MAILBOXID
		// returns garbage bytes, so it cannot be used).
		waitFolder(t, ctx, p, p.Replica, "alice", "Work", 1)
		uid := uniqueIDOf(t, p.Master, "user.alice.Work")
		if r := uniqueIDOf(t, p.Replica, "user.alice.Work"); uid == "" || r != uid {
			t.Fatalf("uniqueid of user.alice.Work: master %q, replica %q; want the same", uid, r)
		}
		p.Master.Rename(t, "alice", "Work", "Projects")
		waitFolder(t, ctx, p, p.Replica, "alice", "Projects", 1)
		if r := uniqueIDOf(t, p.Replica, "user.alice.Projects"); r != uid {
			t.Errorf("replica user.alice.Projects has uniqueid %q, want Work's %q (a rename keeps the folder)", r, uid)
		}
		if r := uniqueIDOf(t, p.Replica, "user.alice.Work"); r != "" {
			t.Errorf("replica still has a live user.alice.Work (uniqueid %s) after the rename", r)
		}
		st := waitPair(t, ctx, c, "the rename decision in status", func(s *pairStatus) bool {
			for _, d := range s.Status.Report.RecentDecisions {
				if d.Action == "rename" && d.User == "alice" {
					return true
				}
			}
			return false
		})
		found := false
		for _, d := range st.Status.Report.RecentDecisions {
			switch {
			case d.Action == "rename" && d.User == "alice":
				found = true
				if d.MasterName != "user.alice.Projects" || d.ReplicaName != "user.alice.Work" || d.UniqueID != uid {
					t.Errorf("rename decision %+v, want user.alice.Work -> user.alice.Projects, uniqueid %s", d, uid)
				}
			case d.Action == "create" && d.MasterName == "user.alice.Projects":
				t.Errorf("the renamed folder was created anew: %+v", d)
			}
		}
		if !found || st.Status.Report.DecisionCounts["rename/name-history"] != 1 {
			t.Errorf("decision counts %v, want rename/name-history=1", st.Status.Report.DecisionCounts)
		}
		// nothing re-uploaded: the replicator's per-user line for that batch sent no body.
		// (The rename's sync-log lines may reach the replicator in two leases: a batch
		// after it finds alice equal.)
		logs, err := c.kubectlOut(ctx, "-n", e2eNS, "logs", "deploy/"+pairName+"-replicator")
		if err != nil {
			t.Fatal(err)
		}
		if u, later, ok := lastSyncedLine(logs, "alice"); !ok || u.BodiesSent != 0 || later != 0 {
			t.Errorf("alice's last synced batch in the replicator log: %+v (found %v), %d bodies sent after it; want bodiesSent 0 and none after", u, ok, later)
		}
		// the decision is announced as an Event on the pair too (the name-differs record)
		waitFor(t, ctx, waitLong, "name-differs Event on the pair", func(ctx context.Context) (bool, string, error) {
			out, err := c.kubectlOut(ctx, "-n", e2eNS, "get", "events", "--field-selector", "involvedObject.kind=ReplicationPair,involvedObject.name="+pairName, "-o", "json")
			if err != nil {
				return false, err.Error(), nil
			}
			return strings.Contains(out, "name-differs") && strings.Contains(out, uid), "no such event yet", nil
		})
	})

	t.Run("UserResync with kubectl apply", func(t *testing.T) {
		c.apply(t, ctx, resyncManifest("sync-alice-bob", "Sync", "alice", "bob"))
		rs := waitResync(t, ctx, c, "sync-alice-bob")
		if rs.Status.Phase != "Succeeded" || rs.Status.UsersTotal != 2 || len(rs.Status.Users) != 2 {
			t.Fatalf("resync: phase %s, %d users, results %+v; want Succeeded with 2", rs.Status.Phase, rs.Status.UsersTotal, rs.Status.Users)
		}
		for _, u := range rs.Status.Users {
			if u.Outcome != "equal" && u.Outcome != "synced" {
				t.Errorf("user %s: outcome %q (%s)", u.User, u.Outcome, u.Error)
			}
		}
		if rs.Status.JobName == "" {
			t.Errorf("status.jobName is empty")
		}
		checkJobEvents(t, ctx, c, rs.Status.JobName)
	})

	t.Run("UserResync with the kubectl plugin", func(t *testing.T) {
		p.Master.Deliver(t, "carol", cyruspair.Message("carol", "for carol"))
		out, err := c.plugin(ctx, pluginBin, "-n", e2eNS, "resync", pairName, "carol", "--timeout", "3m")
		t.Logf("kubectl cyrusrepl resync:\n%s", out)
		if err != nil {
			t.Fatalf("plugin: %v", err)
		}
		if !strings.Contains(out, "Succeeded") || !strings.Contains(out, "carol") {
			t.Errorf("plugin output lacks the result")
		}
		waitFolder(t, ctx, p, p.Replica, "carol", "INBOX", 1)
	})

	t.Run("verify of a diverged user reports and changes nothing", func(t *testing.T) {
		// a message that only the replica has: the master never logged it
		p.Replica.Deliver(t, "bob", cyruspair.Message("stray", "only on the replica"))
		masterBefore, replicaBefore := p.Master.Status(t, "bob", "INBOX"), p.Replica.Status(t, "bob", "INBOX")
		if replicaBefore.Messages != masterBefore.Messages+1 {
			t.Fatalf("setup: replica bob has %d messages, master %d", replicaBefore.Messages, masterBefore.Messages)
		}
		c.apply(t, ctx, resyncManifest("verify-bob", "Verify", "bob"))
		rs := waitResync(t, ctx, c, "verify-bob")
		if len(rs.Status.Users) != 1 || rs.Status.Users[0].Outcome != "differs" || rs.Status.Users[0].Mismatches == 0 {
			t.Errorf("verify results %+v, want bob differs with mismatches", rs.Status.Users)
		}
		if len(rs.Status.Report.MismatchCounts) == 0 {
			t.Errorf("verify reported no mismatch counts")
		}
		t.Logf("verify: phase %s, conditions %+v, mismatches %v", rs.Status.Phase, rs.Status.Conditions, rs.Status.Report.MismatchCounts)
		masterAfter, replicaAfter := p.Master.Status(t, "bob", "INBOX"), p.Replica.Status(t, "bob", "INBOX")
		if masterAfter != masterBefore || replicaAfter != replicaBefore {
			t.Errorf("verify changed something: master %+v -> %+v, replica %+v -> %+v", masterBefore, masterAfter, replicaBefore, replicaAfter)
		}
	})

	t.Run("deleting the replicator pod mid-stream loses nothing", func(t *testing.T) {
		const total = 40
		sel := "replication.cyrusrepl.io/pair=" + pairName + ",app.kubernetes.io/component=replicator"
		podsOf := func(ctx context.Context) (string, error) {
			return c.kubectlOut(ctx, "-n", e2eNS, "get", "pods", "-l", sel, "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.phase}{" "}{end}`)
		}
		oldPods, err := podsOf(ctx)
		if err != nil || strings.Count(oldPods, "=Running") != 1 {
			t.Fatalf("want one running replicator pod, got %q (%v)", oldPods, err)
		}
		oldPod := strings.SplitN(oldPods, "=", 2)[0]
		before := waitPair(t, ctx, c, "the replicator's state reported", func(s *pairStatus) bool { return s.Status.State != nil })
		for i := 0; i < total; i++ {
			p.Master.Deliver(t, "carol", cyruspair.Message(fmt.Sprintf("stream %d", i), "body"))
			if i == total/3 {
				// the log holds entries the old pod has not consumed yet
				if _, err := c.kubectlOut(ctx, "-n", e2eNS, "delete", "pod", oldPod, "--wait=false"); err != nil {
					t.Fatal(err)
				}
			}
		}
		waitFor(t, ctx, waitLong, "a new replicator pod runs in place of "+oldPod, func(ctx context.Context) (bool, string, error) {
			pods, err := podsOf(ctx)
			if err != nil {
				return false, err.Error(), nil
			}
			return !strings.Contains(pods, oldPod+"=") && strings.Count(pods, "=Running") == 1, pods, nil
		})
		want := int(p.Master.Status(t, "carol", "INBOX").Messages)
		if want != total+1 {
			t.Fatalf("master carol has %d messages, want %d", want, total+1)
		}
		waitFolder(t, ctx, p, p.Replica, "carol", "INBOX", want)
		waitPair(t, ctx, c, "Ready again with no backlog", func(s *pairStatus) bool {
			return s.condition("Ready") == "True" && s.Status.Backlog != nil && *s.Status.Backlog == 0
		})
		// The new pod found the old pod's state on the claim: nothing was lost.
		after := waitPair(t, ctx, c, "the new pod's report on the same state", func(s *pairStatus) bool {
			return s.conditionReason("StateLost") == "StateKept"
		})
		if after.Status.State.ID != before.Status.State.ID || after.Status.State.ReplacedID != "" || after.condition("StateLost") != "False" {
			t.Errorf("state after the pod was replaced: %+v, want %+v kept", after.Status.State, before.Status.State)
		}
	})

	t.Run("a rotated agent token rolls the replicator", func(t *testing.T) {
		sel := "replication.cyrusrepl.io/pair=" + pairName + ",app.kubernetes.io/component=replicator"
		running := func(ctx context.Context) (string, error) {
			return c.kubectlOut(ctx, "-n", e2eNS, "get", "pods", "-l", sel, "--field-selector", "status.phase=Running", "-o", "jsonpath={.items[*].metadata.name}")
		}
		before, err := running(ctx)
		if err != nil || before == "" || strings.Contains(before, " ") {
			t.Fatalf("want one running replicator pod, got %q (%v)", before, err)
		}
		// A new token, in the agent's file (it re-reads it) and in the Secret: the
		// kubelet refreshes a mounted Secret only after a minute or so, so the Secret's
		// change brings a new pod at once, which mounts the new value; with the old token
		// it would be refused. The manifests (as in Git)
		// carry the new token from now on.
		oldTok := ag.token(t)
		newTok := ag.rotate(t)
		rotated := strings.Replace(manifests, "token: "+b64(oldTok)+",", "token: "+b64(newTok)+",", 1)
		if rotated == manifests {
			t.Fatal("the manifests hold no token to rotate")
		}
		manifests = rotated
		c.apply(t, ctx, manifests)
		waitFor(t, ctx, waitLong, "a new replicator pod in place of "+before, func(ctx context.Context) (bool, string, error) {
			now, err := running(ctx)
			if err != nil {
				return false, err.Error(), nil
			}
			return now != "" && now != before && !strings.Contains(now, " "), now, nil
		})
		p.Master.Deliver(t, "alice", cyruspair.Message("after rotation", "body"))
		waitFolder(t, ctx, p, p.Replica, "alice", "INBOX", int(p.Master.Status(t, "alice", "INBOX").Messages))
	})

	t.Run("a resync whose image does not exist fails instead of hanging", func(t *testing.T) {
		// A second pair, suspended (no replicator of its own), whose pods use an image that
		// cannot be pulled; its resync must end PodCannotStart, not run for 6 hours.
		ghost := strings.Replace(manifests[strings.Index(manifests, "apiVersion: replication.cyrusrepl.io"):],
			"name: "+pairName+",", "name: ghost,", 1)
		ghost = strings.Replace(ghost, "  workers: 2\n", "  workers: 2\n  suspend: true\n  replicator:\n    image: example.invalid/cyrusrepl/no-such-image:0\n", 1)
		c.apply(t, ctx, statePV(t, "ghost", filepath.Join(p.Dir, "ghost-state"), replUID, replUID))
		c.apply(t, ctx, ghost)
		c.apply(t, ctx, strings.Replace(resyncManifest("ghost-sync", "Sync", "alice"), "pairName: "+pairName, "pairName: ghost", 1))
		rs := waitResync(t, ctx, c, "ghost-sync")
		var reason, msg string
		for _, cd := range rs.Status.Conditions {
			if cd.Type == "Stalled" {
				reason, msg = cd.Reason, cd.Message
			}
		}
		if rs.Status.Phase != "Failed" || reason != "PodCannotStart" || !strings.Contains(msg, "no-such-image") {
			t.Fatalf("resync: phase %s, Stalled %s %q; want Failed, PodCannotStart naming the image", rs.Status.Phase, reason, msg)
		}
		t.Logf("stalled resync: %s", msg)
	})

	t.Run("re-applying the manifests changes nothing", func(t *testing.T) {
		objs := []string{"replicationpair/" + pairName, "userresync/sync-alice-bob", "userresync/verify-bob",
			"secret/cyrus-repl", "secret/cyrus-agent", "deployment/" + pairName + "-replicator", "configmap/" + pairName + "-report"}
		waitPair(t, ctx, c, "idle", func(s *pairStatus) bool { return s.Status.Backlog != nil && *s.Status.Backlog == 0 })
		before := resourceVersions(t, ctx, c, objs)
		for _, m := range []string{manifests, resyncManifest("sync-alice-bob", "Sync", "alice", "bob"), resyncManifest("verify-bob", "Verify", "bob")} {
			cmd := exec.CommandContext(ctx, c.kubectl, "--kubeconfig", c.kubeconfig, "apply", "-f", "-")
			cmd.Stdin = strings.NewReader(m)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("kubectl apply: %v\n%s", err, out)
			}
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if !strings.HasSuffix(l, " unchanged") {
					t.Errorf("kubectl apply: %q, want unchanged", l)
				}
			}
		}
		// give the manager a moment to react to anything it might see as a change
		time.Sleep(3 * time.Second)
		after := resourceVersions(t, ctx, c, objs)
		for _, o := range objs {
			if before[o] != after[o] {
				t.Errorf("%s: resourceVersion %s -> %s after re-applying the same manifests", o, before[o], after[o])
			}
		}
	})
}

// statePV makes dir (owned by the replicator's uid:gid) and returns a hostPath
// PersistentVolume bound in advance to pair's state claim: the local cluster has no
// storage provisioner.
func statePV(t *testing.T, pair, dir string, uid, gid int) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`apiVersion: v1
kind: PersistentVolume
metadata: {name: %[1]s-%[2]s-state}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  claimRef: {namespace: %[1]s, name: %[2]s-state}
  hostPath: {path: %[3]s, type: Directory}
`, e2eNS, pair, dir)
}

// port returns the port of a 127.0.0.1:PORT address.
func port(t *testing.T, addr string) string {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		t.Fatalf("bad address %q", addr)
	}
	return addr[i+1:]
}

func resyncManifest(name, mode string, users ...string) string {
	return fmt.Sprintf(`apiVersion: replication.cyrusrepl.io/v1alpha1
kind: UserResync
metadata: {name: %s, namespace: %s}
spec:
  pairName: %s
  mode: %s
  users: [%s]
`, name, e2eNS, pairName, mode, strings.Join(users, ", "))
}

// waitFolder waits until the folder holds want messages on inst and returns its state.
func waitFolder(t *testing.T, ctx context.Context, p *cyruspair.Pair, inst *cyruspair.Instance, user, folder string, want int) folderState {
	t.Helper()
	var st folderState
	waitFor(t, ctx, waitLong, fmt.Sprintf("%s: %s/%s holds %d messages", inst.Name, user, folder, want), func(ctx context.Context) (bool, string, error) {
		var err error
		st, err = readFolder(p, inst, user, folder)
		if err != nil {
			return false, err.Error(), nil
		}
		if st.Exists && st.Messages > want {
			return false, "", fmt.Errorf("%s/%s holds %d messages, more than the master's %d", user, folder, st.Messages, want)
		}
		return st.Exists && st.Messages == want, fmt.Sprintf("%+v", st), nil
	})
	return st
}

func waitPair(t *testing.T, ctx context.Context, c *cluster, what string, cond func(*pairStatus) bool) *pairStatus {
	t.Helper()
	var st pairStatus
	waitFor(t, ctx, waitLong, "pair: "+what, func(ctx context.Context) (bool, string, error) {
		st = pairStatus{}
		if err := c.getJSON(ctx, &st, "-n", e2eNS, "replicationpair", pairName); err != nil {
			return false, err.Error(), nil
		}
		return cond(&st), fmt.Sprintf("%+v", st.Status), nil
	})
	return &st
}

func waitResync(t *testing.T, ctx context.Context, c *cluster, name string) *resyncStatus {
	t.Helper()
	var st resyncStatus
	waitFor(t, ctx, waitLong, "userresync "+name+" finished", func(ctx context.Context) (bool, string, error) {
		st = resyncStatus{}
		if err := c.getJSON(ctx, &st, "-n", e2eNS, "userresync", name); err != nil {
			return false, err.Error(), nil
		}
		return st.Status.Phase == "Succeeded" || st.Status.Phase == "Failed", fmt.Sprintf("%+v", st.Status), nil
	})
	return &st
}

// checkJobEvents: the resync's Job ran a pod that completed (the Job itself may already
// be gone: the manager deletes it once the result is folded; its Events remain).
func checkJobEvents(t *testing.T, ctx context.Context, c *cluster, job string) {
	t.Helper()
	waitFor(t, ctx, waitLong, "job "+job+" Completed event", func(ctx context.Context) (bool, string, error) {
		out, err := c.kubectlOut(ctx, "-n", e2eNS, "get", "events", "--field-selector", "involvedObject.kind=Job,involvedObject.name="+job, "-o", "jsonpath={.items[*].reason}")
		if err != nil {
			return false, err.Error(), nil
		}
		return strings.Contains(out, "SuccessfulCreate") && strings.Contains(out, "Completed"), out, nil
	})
}

type userLine struct {
	Type, User, Outcome string
	BodiesSent          int
}

// lastSyncedLine finds the replicator's last per-user JSON line for user that synced
// something, and the bodies sent for user in the lines after it.
func lastSyncedLine(logs, user string) (last userLine, bodiesAfter int, found bool) {
	for _, l := range strings.Split(logs, "\n") {
		var u userLine
		if json.Unmarshal([]byte(l), &u) != nil || u.Type != "user" || u.User != user {
			continue
		}
		if u.Outcome == "synced" {
			last, bodiesAfter, found = u, 0, true
		} else {
			bodiesAfter += u.BodiesSent
		}
	}
	return last, bodiesAfter, found
}

func resourceVersions(t *testing.T, ctx context.Context, c *cluster, objs []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, o := range objs {
		rv, err := c.kubectlOut(ctx, "-n", e2eNS, "get", o, "-o", "jsonpath={.metadata.resourceVersion}")
		if err != nil {
			t.Fatal(err)
		}
		out[o] = rv
	}
	return out
}

// uniqueIDOf returns the uniqueid of the live folder name (internal name, user.alice.X)
// in the instance's mailboxes.db, or "" when no live folder has that name.
func uniqueIDOf(t *testing.T, inst *cyruspair.Instance, name string) string {
	t.Helper()
	db := mboxdb.Parse([]byte(inst.MailboxesDB(t)))
	for uid, n := range db.Live {
		if n == name {
			return uid
		}
	}
	return ""
}
