package controllers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
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
		{"client certificate without a name", func(p *v1.ReplicationPair) {
			p.Spec.Master.Agent.ClientCertSecretRef = &v1.TLSSecretRef{}
		}, "spec.master.agent.clientCertSecretRef.name"},
		{"client certificate Secret name not a Secret's", func(p *v1.ReplicationPair) {
			p.Spec.Master.Agent.ClientCertSecretRef = &v1.TLSSecretRef{Name: "Agent_Client/cert"}
		}, "name must be a Secret's name"},
		{"client certificate Secret name ending in a dot", func(p *v1.ReplicationPair) {
			p.Spec.Master.Agent.ClientCertSecretRef = &v1.TLSSecretRef{Name: "agent-client."}
		}, "name must be a Secret's name"},
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
	// A client certificate Secret with a valid name, dotted or not.
	for i, name := range []string{"agent-client", "replicator.agent-client.tls", "0"} {
		p := newAgentPair(ns, fmt.Sprintf("cert%d", i))
		p.Spec.Master.Agent.ClientCertSecretRef = &v1.TLSSecretRef{Name: name}
		if err := k8s.Create(ctx, p); err != nil {
			t.Fatalf("valid clientCertSecretRef %q refused: %v", name, err)
		}
	}
}

// TestAgentClientCertPod: with clientCertSecretRef the replicator pod mounts that
// Secret's tls.crt and tls.key read-only (group-readable only), passes them as
// --agent-client-cert and --agent-client-key, and stays hardened (non-root, read-only
// root filesystem, nothing of the master's disk); a Secret without tls.key is reported
// by its field.
func TestAgentClientCertPod(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	createAgentObjects(t, ctx, ns)
	if err := k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent-client"},
		Type: corev1.SecretTypeTLS, StringData: map[string]string{"tls.crt": "crt", "tls.key": "key"}}); err != nil {
		t.Fatal(err)
	}
	p := newAgentPair(ns, "agc")
	p.Spec.Master.Agent.ClientCertSecretRef = &v1.TLSSecretRef{Name: "agent-client"}
	createPair(t, ctx, p)

	var d *appsv1.Deployment
	eventually(t, "deployment", func() (err error) { d, err = getDeployment(ctx, ns, "agc"); return err })
	pod := d.Spec.Template.Spec
	ctr := pod.Containers[0]
	flag := func(name string) string {
		i := slices.Index(ctr.Args, name)
		if i < 0 || i+1 >= len(ctr.Args) {
			return ""
		}
		return ctr.Args[i+1]
	}
	if got := flag("--agent-client-cert"); got != "/etc/cyrusrepl/agent-client-cert/tls.crt" {
		t.Errorf("--agent-client-cert %q in %q", got, ctr.Args)
	}
	if got := flag("--agent-client-key"); got != "/etc/cyrusrepl/agent-client-cert/tls.key" {
		t.Errorf("--agent-client-key %q in %q", got, ctr.Args)
	}
	var vol *corev1.Volume
	for i, v := range pod.Volumes {
		if v.HostPath != nil || v.NFS != nil {
			t.Fatalf("volume %s reaches a node's or the master's disk: %+v", v.Name, v.VolumeSource)
		}
		if v.Name == "agent-client-cert" {
			vol = &pod.Volumes[i]
		}
	}
	if vol == nil || vol.Secret == nil || vol.Secret.SecretName != "agent-client" ||
		len(vol.Secret.Items) != 2 || vol.Secret.Items[0].Key != "tls.crt" || vol.Secret.Items[1].Key != "tls.key" ||
		vol.Secret.DefaultMode == nil || *vol.Secret.DefaultMode != 0o440 {
		t.Fatalf("client certificate volume %+v", vol)
	}
	mounted := false
	for _, m := range ctr.VolumeMounts {
		if m.Name == "agent-client-cert" {
			mounted = m.ReadOnly && m.MountPath == "/etc/cyrusrepl/agent-client-cert"
		}
	}
	if !mounted {
		t.Fatalf("client certificate not mounted read-only at /etc/cyrusrepl/agent-client-cert: %+v", ctr.VolumeMounts)
	}
	sc := ctr.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
		pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Fatalf("pod not hardened: container %+v pod %+v", sc, pod.SecurityContext)
	}

	// A Secret that is not a TLS pair: the pod cannot start, the pair says why.
	var s corev1.Secret
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "agent-client"}, &s); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx, &s); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent-client"},
		StringData: map[string]string{"tls.crt": "crt"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pair reports tls.key missing", func() error {
		p, err := getPair(ctx, ns, "agc")
		if err != nil {
			return err
		}
		return wantReferenceMissing(p.Status.Conditions, `Secret "agent-client" has no key "tls.key" (spec.master.agent.clientCertSecretRef)`)
	})
}

// TestPairAgentUnavailable: the replicator's agent check reaches the pair as the
// AgentUnavailable condition: True with the check's reason (Unauthorized, then
// Unreachable; a Warning Event each time it turns true with a new reason), False
// (Answering) once the agent answers, and absent while no report names the agent.
func TestPairAgentUnavailable(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	createAgentObjects(t, ctx, ns)
	createPair(t, ctx, newAgentPair(ns, "agu"))
	eventually(t, "role bound", func() error {
		return k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "agu-replicator"}, &rbacv1.RoleBinding{})
	})
	markAvailable(t, ctx, ns, "agu")
	sink := replicatorSink(t, ns, "agu", operator.ReportConfigMapName("agu"))
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	publish := func(checks ...report.Check) {
		t.Helper()
		backlog := 0
		s := &report.Summary{Kind: report.SummaryKind, Mode: "rolling", Pair: "agu", Started: t0, Updated: t0, Backlog: &backlog, Checks: checks}
		if err := sink.Publish(ctx, s); err != nil {
			t.Fatalf("publish as the replicator: %v", err)
		}
	}
	waitAgent := func(st, reason, says string) *v1.ReplicationPair {
		t.Helper()
		var p *v1.ReplicationPair
		eventually(t, "AgentUnavailable "+st+" "+reason, func() (err error) {
			if p, err = getPair(ctx, ns, "agu"); err != nil {
				return err
			}
			c := apimeta.FindStatusCondition(p.Status.Conditions, v1.ConditionAgentUnavailable)
			switch {
			case st == "" && c != nil:
				return fmt.Errorf("still there: %+v", c)
			case st == "":
				return nil
			case c == nil || string(c.Status) != st || c.Reason != reason || !strings.Contains(c.Message, says):
				return fmt.Errorf("AgentUnavailable = %+v", c)
			}
			return nil
		})
		return p
	}

	publish() // a report that does not name the agent yet
	waitAgent("", "", "")
	publish(report.Check{Name: report.CheckAgent, Status: report.CheckFailed, Reason: report.ReasonAgentUnauthorized,
		Message: "agent https://cyrus-master-0.cyrus.mail.svc:8443: 401 wrong or missing token (check --agent-token-file): missing or wrong bearer token"})
	p := waitAgent("True", v1.ReasonAgentUnauthorized, "401")
	waitWarning(t, ns, p, v1.ReasonAgentUnauthorized)
	if c := apimeta.FindStatusCondition(p.Status.Conditions, v1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Ready = %+v: the replicator runs and retries", c)
	}
	publish(report.Check{Name: report.CheckAgent, Status: report.CheckFailed, Reason: report.ReasonAgentUnreachable,
		Message: "agent https://cyrus-master-0.cyrus.mail.svc:8443: unreachable: dial tcp 10.0.0.9:8443: connect: connection refused"})
	p = waitAgent("True", v1.ReasonAgentUnreachable, "connection refused")
	waitWarning(t, ns, p, v1.ReasonAgentUnreachable)
	publish(report.Check{Name: report.CheckAgent, Status: report.CheckOK, Message: "the agent answers"})
	waitAgent("False", v1.ReasonAgentAnswering, "answers")
}

// TestAgentExamplesAdmitted: the chart's agent-sidecar example (the Cyrus StatefulSet
// with the agent sidecar, its Service and ConfigMap, and the pair with
// spec.master.agent, token-only and with a client certificate) passes the real API
// server's validation, CEL rules included.
func TestAgentExamplesAdmitted(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	dir := filepath.Join("..", "charts", "cyrusrepl", "examples", "agent-sidecar")
	kinds := map[string]bool{}
	for _, file := range []string{"cyrus-statefulset.yaml", "replicationpair.yaml", "replicationpair-mtls.yaml"} {
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
