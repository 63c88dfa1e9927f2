package controllers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
)

// newAgentPair is newPair reaching the master's sync log and mailboxes.db through its
// agent instead of a mounted volume.
func newAgentPair(ns, name string) *v1.ReplicationPair {
	p := newPair(ns, name)
	p.Spec.SyncLog = nil
	p.Spec.Master.Agent = &v1.AgentSource{
		URL:            "https://cyrus-master-0.cyrus.mail.svc:8443",
		TokenSecretRef: v1.SecretKeyRef{Name: "agent-token", Key: "token"},
		CAConfigMapRef: &v1.ConfigMapKeyRef{Name: "agent-ca", Key: "ca.crt"},
	}
	return p
}

// createAgentObjects creates the token Secret and CA ConfigMap newAgentPair references.
func createAgentObjects(t *testing.T, ctx context.Context, ns string) {
	t.Helper()
	for _, o := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent-token"}, StringData: map[string]string{"token": "t1"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent-ca"}, Data: map[string]string{"ca.crt": "-----BEGIN CERTIFICATE-----\n"}},
	} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatalf("create %s: %v", o.GetName(), err)
		}
	}
}

// TestAgentPairPod: a pair with spec.master.agent passes admission and gets a rolling
// replicator whose pod mounts nothing of the master's (no hostPath, no claim but the
// pair's own state), holds the token and CA as read-only Secret/ConfigMap files and
// passes --agent, --agent-token-file and --agent-ca-file instead of --sync-log and
// --master-config (a seed lists the master's users through the agent too: no
// --master-imap); the status says rolling.
func TestAgentPairPod(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	createAgentObjects(t, ctx, ns)
	createPair(t, ctx, newAgentPair(ns, "ag"))

	var d *appsv1.Deployment
	eventually(t, "deployment", func() (err error) { d, err = getDeployment(ctx, ns, "ag"); return err })
	pod := d.Spec.Template.Spec
	args := pod.Containers[0].Args
	want := []string{"rolling", "--seed", "auto",
		"--master", "cyrus-master.mail.svc:2005", "--master-user", "repl",
		"--master-password-file", "/etc/cyrusrepl/master-password/password",
		"--master-tls", "starttls", "--master-ca-file", "/etc/cyrusrepl/master-ca/ca.crt",
		"--agent", "https://cyrus-master-0.cyrus.mail.svc:8443",
		"--agent-token-file", "/etc/cyrusrepl/agent-token/token",
		"--agent-ca-file", "/etc/cyrusrepl/agent-ca/ca.crt",
		"--replica", "cyrus-replica.mail.svc:12005", "--replica-user", "repl",
		"--replica-password-file", "/etc/cyrusrepl/replica-password/password", "--replica-tls", "starttls",
		"--workers", "4", "--replica-only-policy", "keep", "--report-configmap", "ag-report", "--pair", "ag",
		"--state-dir", "/var/lib/cyrusrepl/state", "--metrics-addr", ":9090"}
	if !slices.Equal(args, want) {
		t.Fatalf("args\n got %q\nwant %q", args, want)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range pod.Containers[0].VolumeMounts {
		mounts[m.Name] = m
	}
	for _, v := range pod.Volumes {
		if v.HostPath != nil || v.NFS != nil ||
			(v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName != operator.StateClaimName("ag")) {
			t.Fatalf("volume %s reaches the master's disk: %+v", v.Name, v.VolumeSource)
		}
		switch v.Name {
		case "agent-token":
			if v.Secret == nil || v.Secret.SecretName != "agent-token" || v.Secret.Items[0].Key != "token" || !mounts[v.Name].ReadOnly {
				t.Fatalf("token volume %+v mount %+v", v, mounts[v.Name])
			}
		case "agent-ca":
			if v.ConfigMap == nil || v.ConfigMap.Name != "agent-ca" || v.ConfigMap.Items[0].Key != "ca.crt" || !mounts[v.Name].ReadOnly {
				t.Fatalf("CA volume %+v mount %+v", v, mounts[v.Name])
			}
		}
	}
	if _, ok := mounts["agent-token"]; !ok {
		t.Fatalf("no token volume: %+v", pod.Volumes)
	}
	if _, ok := mounts["agent-ca"]; !ok {
		t.Fatalf("no CA volume: %+v", pod.Volumes)
	}
	eventually(t, "status mode rolling", func() error {
		p, err := getPair(ctx, ns, "ag")
		if err != nil {
			return err
		}
		if p.Status.Replicator.Mode != operator.ModeRolling {
			return fmt.Errorf("status.replicator.mode %q", p.Status.Replicator.Mode)
		}
		return nil
	})
}

// TestAgentTokenRotationRollsReplicator: the replicator reads its CA at start, and a
// mounted Secret reaches a running pod only after the kubelet's refresh, so a changed
// token Secret (or CA ConfigMap) must change the pod template's references revision,
// which rolls the Deployment at once; a deleted token is reported by its field.
func TestAgentTokenRotationRollsReplicator(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	createAgentObjects(t, ctx, ns)
	createPair(t, ctx, newAgentPair(ns, "agrot"))
	revision := func() string {
		d, err := getDeployment(ctx, ns, "agrot")
		if err != nil {
			return ""
		}
		return d.Spec.Template.Annotations[operator.AnnotationReferencesRevision]
	}
	var before string
	eventually(t, "references revision", func() error {
		if before = revision(); before == "" {
			return fmt.Errorf("no %s on the pod template yet", operator.AnnotationReferencesRevision)
		}
		return nil
	})
	changes := func(what string, from string, edit func() error) string {
		t.Helper()
		if err := edit(); err != nil {
			t.Fatal(err)
		}
		var now string
		eventually(t, "revision changes after "+what, func() error {
			if now = revision(); now == from || now == "" {
				return fmt.Errorf("revision %q, was %q", now, from)
			}
			return nil
		})
		return now
	}
	key := types.NamespacedName{Namespace: ns, Name: "agent-token"}
	afterToken := changes("the token rotation", before, func() error {
		var s corev1.Secret
		if err := k8s.Get(ctx, key, &s); err != nil {
			return err
		}
		s.StringData = map[string]string{"token": "t2"}
		return k8s.Update(ctx, &s)
	})
	changes("the CA rotation", afterToken, func() error {
		var cm corev1.ConfigMap
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "agent-ca"}, &cm); err != nil {
			return err
		}
		cm.Data["ca.crt"] = "-----BEGIN CERTIFICATE-----\nnew\n"
		return k8s.Update(ctx, &cm)
	})
	if err := k8s.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent-token"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pair reports the token missing", func() error {
		p, err := getPair(ctx, ns, "agrot")
		if err != nil {
			return err
		}
		return wantReferenceMissing(p.Status.Conditions, `Secret "agent-token" not found (spec.master.agent.tokenSecretRef)`)
	})
}

// TestAgentAdmission: the API server refuses an agent beside mounted master volumes,
// a URL that is not https, and two CA sources.
func TestAgentAdmission(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	cases := []struct {
		name   string
		mutate func(*v1.ReplicationPair)
		want   string
	}{
		{"agent with a hostPath sync log", func(p *v1.ReplicationPair) {
			p.Spec.SyncLog = &v1.SyncLogSource{Volume: v1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/cyrus/sync/cyrusrepl"}}}
		}, "master.agent serves the master's sync log and mailboxes.db over the network: remove syncLog and masterConfig"},
		{"agent with a master config claim", func(p *v1.ReplicationPair) {
			p.Spec.MasterConfig = &v1.MasterConfigSource{Volume: v1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "cyrus"}}, Path: "imapd.conf"}
		}, "master.agent serves the master's sync log and mailboxes.db over the network: remove syncLog and masterConfig"},
		{"http URL", func(p *v1.ReplicationPair) { p.Spec.Master.Agent.URL = "http://cyrus-0:8443" }, "url must be an https:// URL with a host"},
		{"URL without a host", func(p *v1.ReplicationPair) { p.Spec.Master.Agent.URL = "https://" }, "url must be an https:// URL with a host"},
		{"not a URL", func(p *v1.ReplicationPair) { p.Spec.Master.Agent.URL = "cyrus-0:8443" }, "url must be an https:// URL with a host"},
		{"URL with a path", func(p *v1.ReplicationPair) { p.Spec.Master.Agent.URL = "https://agents.example.org/cyrus-0" }, "url must have no path"},
		{"URL with user information", func(p *v1.ReplicationPair) { p.Spec.Master.Agent.URL = "https://u:secret@cyrus-0:8443" }, "url must not carry user information"},
		{"two CA sources", func(p *v1.ReplicationPair) {
			p.Spec.Master.Agent.CASecretRef = &v1.SecretKeyRef{Name: "ca", Key: "ca.crt"}
		}, "agent takes at most one of caSecretRef or caConfigMapRef"},
		{"no token", func(p *v1.ReplicationPair) { p.Spec.Master.Agent.TokenSecretRef = v1.SecretKeyRef{} }, "spec.master.agent.tokenSecretRef.name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newAgentPair(ns, "bad")
			tc.mutate(p)
			err := k8s.Create(ctx, p)
			if err == nil {
				t.Fatal("created an invalid pair")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			t.Logf("rejected: %v", err)
		})
	}
	// The valid shapes: an IPv6 address, a name without a port (443), a trailing slash;
	// with no CA (system roots).
	for i, url := range []string{"https://[fd00::1]:8443", "https://agent.example.org", "https://10.0.0.5:8443/"} {
		p := newAgentPair(ns, fmt.Sprintf("ok%d", i))
		p.Spec.Master.Agent.URL = url
		p.Spec.Master.Agent.CAConfigMapRef = nil
		if err := k8s.Create(ctx, p); err != nil {
			t.Fatalf("valid agent URL %s refused: %v", url, err)
		}
	}
}

// TestAgentExamplesAdmitted: the chart's agent-sidecar example (the Cyrus StatefulSet
// with the agent sidecar, its Service and ConfigMap, and the pair with
// spec.master.agent) passes the real API server's validation, CEL rules included.
func TestAgentExamplesAdmitted(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	dir := filepath.Join("..", "charts", "cyrusrepl", "examples", "agent-sidecar")
	kinds := map[string]bool{}
	for _, file := range []string{"cyrus-statefulset.yaml", "replicationpair.yaml"} {
		raw, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(raw), "\n---\n") {
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			u.SetNamespace(ns)
			if err := k8s.Create(ctx, u, client.DryRunAll); err != nil {
				t.Fatalf("%s: %s %s refused: %v", file, u.GetKind(), u.GetName(), err)
			}
			kinds[u.GetKind()] = true
		}
	}
	for _, k := range []string{"ConfigMap", "Service", "StatefulSet", "ReplicationPair"} {
		if !kinds[k] {
			t.Errorf("the example holds no %s", k)
		}
	}
}
