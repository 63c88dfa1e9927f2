package operator

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
)

func pair() *v1.ReplicationPair {
	return &v1.ReplicationPair{
		ObjectMeta: metav1.ObjectMeta{Namespace: "mail", Name: "p", UID: "uid-p"},
		Spec: v1.ReplicationPairSpec{
			Master:  v1.MasterEndpoint{Endpoint: v1.Endpoint{Host: "m", Username: "repl", PasswordSecretRef: v1.SecretKeyRef{Name: "s", Key: "mp"}}},
			Replica: v1.Endpoint{Host: "fd00::1", Port: 3005, Username: "repl2", PasswordSecretRef: v1.SecretKeyRef{Name: "s", Key: "rp"}},
		},
	}
}

func TestAuditArgsAndIPv6(t *testing.T) {
	p := pair()
	p.Spec.AuditInterval = &metav1.Duration{Duration: 30 * time.Minute}
	p.Spec.ReplicaOnlyPolicy = v1.ReplicaOnlyFail
	p.Spec.Replica.TLS = &v1.TLSConfig{Mode: v1.TLSModeTLS, CAConfigMapRef: &v1.ConfigMapKeyRef{Name: "ca", Key: "bundle.pem"}}
	p.Spec.MasterConfig = &v1.MasterConfigSource{Volume: v1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/etc"}}, Path: "imapd.conf"}
	got := PairArgs(p)
	want := []string{"audit", "--interval", "30m0s",
		"--master", "m:2005", "--master-user", "repl", "--master-password-file", "/etc/cyrusrepl/master-password/password", "--master-tls", "starttls",
		"--replica", "[fd00::1]:3005", "--replica-user", "repl2", "--replica-password-file", "/etc/cyrusrepl/replica-password/password",
		"--replica-tls", "tls", "--replica-ca-file", "/etc/cyrusrepl/replica-ca/ca.crt",
		"--master-config", "/etc/cyrusrepl/master-config/imapd.conf",
		"--workers", "4", "--replica-only-policy", "fail", "--report-configmap", "p-report", "--pair", "p",
		"--state-dir", "/var/lib/cyrusrepl/state", "--metrics-addr", ":9090"}
	if !slices.Equal(got, want) {
		t.Fatalf("args\n got %q\nwant %q", got, want)
	}
	d := Deployment(p, PodOptions{Image: "img"})
	var ca, mc *corev1.Volume
	for i, v := range d.Spec.Template.Spec.Volumes {
		switch v.Name {
		case "replica-ca":
			ca = &d.Spec.Template.Spec.Volumes[i]
		case "master-config":
			mc = &d.Spec.Template.Spec.Volumes[i]
		}
	}
	if ca == nil || ca.ConfigMap == nil || ca.ConfigMap.Name != "ca" || ca.ConfigMap.Items[0].Key != "bundle.pem" {
		t.Fatalf("replica CA volume %+v", ca)
	}
	if mc == nil || mc.HostPath == nil {
		t.Fatalf("master config volume %+v", mc)
	}
	for _, m := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
		if m.Name == "master-config" && !m.ReadOnly {
			t.Fatal("master config mounted read-write")
		}
	}
}

func TestDeploymentSuspendAndHash(t *testing.T) {
	p := pair()
	d1 := Deployment(p, PodOptions{Image: "img"})
	p.Spec.Suspend = true
	d2 := Deployment(p, PodOptions{Image: "img"})
	if *d1.Spec.Replicas != 1 || *d2.Spec.Replicas != 0 {
		t.Fatalf("replicas %d/%d", *d1.Spec.Replicas, *d2.Spec.Replicas)
	}
	if d1.Spec.Template.Annotations[AnnotationSpecHash] != d2.Spec.Template.Annotations[AnnotationSpecHash] {
		t.Fatal("suspend changed the spec hash (it would roll the pod)")
	}
	p.Spec.Workers = 2
	if SpecHash(p) == d1.Spec.Template.Annotations[AnnotationSpecHash] {
		t.Fatal("spec edit kept the spec hash")
	}
	p.Spec.Replicator.Image = "override:1"
	p.Spec.Replicator.RunAsUser = ptr.To[int64](97)
	d3 := Deployment(p, PodOptions{Image: "img"})
	if d3.Spec.Template.Spec.Containers[0].Image != "override:1" || *d3.Spec.Template.Spec.SecurityContext.RunAsUser != 97 {
		t.Fatal("image or runAsUser override ignored")
	}
}

func TestJob(t *testing.T) {
	rs := &v1.UserResync{ObjectMeta: metav1.ObjectMeta{Namespace: "mail", Name: "r", UID: "uid-r"},
		Spec: v1.UserResyncSpec{PairName: "p", Users: []string{"a", "b@x.org"}, Mode: v1.ResyncVerify}}
	j := Job(rs, pair(), PodOptions{Image: "img"})
	args := j.Spec.Template.Spec.Containers[0].Args
	if !slices.Equal(args[:5], []string{"verify", "--user", "a", "--user", "b@x.org"}) || strings.Contains(strings.Join(args, " "), "--metrics-addr") {
		t.Fatalf("args %q", args)
	}
	if i := slices.Index(args, "--report-configmap"); args[i+1] != "r-report" {
		t.Fatalf("report configmap %q", args[i+1])
	}
	if j.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever || *j.Spec.BackoffLimit != JobBackoffLimit {
		t.Fatal("restart policy / backoff")
	}
	rule := j.Spec.PodFailurePolicy.Rules[0]
	if !slices.Equal(rule.OnExitCodes.Values, []int32{1, 2}) {
		t.Fatalf("pod failure policy %+v", rule)
	}
	if j.OwnerReferences[0].UID != "uid-r" || j.Labels[LabelPair] != "p" {
		t.Fatalf("owner/labels %+v %v", j.OwnerReferences, j.Labels)
	}
	if j.Spec.Template.Spec.ServiceAccountName != "r-replicator" {
		t.Fatal("service account")
	}
}

func TestRole(t *testing.T) {
	r := Role(ResyncOwner(&metav1.ObjectMeta{Namespace: "mail", Name: "r"}, "p"))
	if !slices.Equal(r.Rules[0].ResourceNames, []string{"r-report"}) || slices.Contains(r.Rules[0].Verbs, "delete") ||
		len(r.Rules[1].ResourceNames) != 0 || !slices.Equal(r.Rules[1].Verbs, []string{"create"}) {
		t.Fatalf("rules %+v", r.Rules)
	}
}

func TestHostNetworkOptions(t *testing.T) {
	d := Deployment(pair(), PodOptions{Image: "img", HostNetwork: true, APIServerHost: "127.0.0.1", APIServerPort: "6443"})
	ps := d.Spec.Template.Spec
	if !ps.HostNetwork || ps.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Fatalf("host network %v dns %q", ps.HostNetwork, ps.DNSPolicy)
	}
	env := map[string]string{}
	for _, e := range ps.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if env["KUBERNETES_SERVICE_HOST"] != "127.0.0.1" || env["KUBERNETES_SERVICE_PORT"] != "6443" {
		t.Fatalf("env %v", env)
	}
	// in the node's network namespace the metrics listener must stay on loopback
	if args := ps.Containers[0].Args; args[len(args)-1] != "127.0.0.1:9090" {
		t.Fatalf("metrics address with host network: %q", args[len(args)-1])
	}
	if d := Deployment(pair(), PodOptions{Image: "img"}); d.Spec.Template.Spec.HostNetwork || len(d.Spec.Template.Spec.Containers[0].Env) != 1 {
		t.Fatal("host network or API env without the option")
	}
}

func TestAuditListsUsersThroughIMAPWithoutMasterConfig(t *testing.T) {
	p := pair()
	p.Spec.Master.IMAPPort = 143
	args := PairArgs(p)
	if args[0] != "audit" || !slices.Contains(args, "--master-imap") || args[slices.Index(args, "--master-imap")+1] != "m:143" {
		t.Fatalf("args %q lack --master-imap m:143", args)
	}
	p.Spec.MasterConfig = &v1.MasterConfigSource{Volume: v1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/etc"}}, Path: "imapd.conf"}
	if slices.Contains(PairArgs(p), "--master-imap") {
		t.Fatal("--master-imap passed although the master's config is mounted")
	}
}

// TestAuditJob: an Audit resync's Job runs one audit pass (no --interval, no --user) with
// the pair's master user source, as the audit Deployment has it, on the state claim.
func TestAuditJob(t *testing.T) {
	rs := &v1.UserResync{ObjectMeta: metav1.ObjectMeta{Namespace: "mail", Name: "p-audit-r1", UID: "uid-r"},
		Spec: v1.UserResyncSpec{PairName: "p", Mode: v1.ResyncAudit}}
	p := pair()
	p.Spec.SyncLog = &v1.SyncLogSource{Volume: v1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/cyrus"}}, Path: "sync/x"}
	p.Spec.Master.IMAPPort = 143
	args := Job(rs, p, PodOptions{Image: "img"}).Spec.Template.Spec.Containers[0].Args
	if !slices.Equal(args[:3], []string{"audit", "--master-imap", "m:143"}) ||
		slices.Contains(args, "--interval") || slices.Contains(args, "--user") || slices.Contains(args, "--sync-log") {
		t.Fatalf("args %q", args)
	}
	p.Spec.MasterConfig = &v1.MasterConfigSource{Volume: v1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/etc"}}, Path: "imapd.conf"}
	j := Job(rs, p, PodOptions{Image: "img"})
	args = j.Spec.Template.Spec.Containers[0].Args
	if slices.Contains(args, "--master-imap") || !slices.Contains(args, "--master-config") {
		t.Fatalf("with masterConfig: args %q", args)
	}
	claim := false
	for _, v := range j.Spec.Template.Spec.Volumes {
		claim = claim || (v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == StateClaimName("p"))
	}
	if !claim || args[slices.Index(args, "--state-dir")+1] != stateMount {
		t.Fatalf("state claim not mounted: %+v", j.Spec.Template.Spec.Volumes)
	}
}
