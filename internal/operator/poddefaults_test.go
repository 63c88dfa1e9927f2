package operator

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
)

// TestBuiltinDefaultsNeverBestEffort: a manager without a defaults file gives every
// replicator pod requests, a memory limit, the 65532 ids and probes on the metrics port.
func TestBuiltinDefaultsNeverBestEffort(t *testing.T) {
	d := Deployment(pair(), PodOptions{Image: "img"})
	ps := d.Spec.Template.Spec
	c := ps.Containers[0]
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Fatalf("resources %+v: the pod would be BestEffort", c.Resources)
	}
	if c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("pull policy %q", c.ImagePullPolicy)
	}
	sc := ps.SecurityContext
	if *sc.RunAsUser != 65532 || *sc.RunAsGroup != 65532 || *sc.FSGroup != 65532 || !*sc.RunAsNonRoot {
		t.Errorf("security context %+v", sc)
	}
	for name, p := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != name || p.HTTPGet.Port.StrVal != "metrics" || p.HTTPGet.Host != "" {
			t.Errorf("probe %s: %+v", name, p)
		}
	}
	hn := Deployment(pair(), PodOptions{Image: "img", HostNetwork: true}).Spec.Template.Spec.Containers[0]
	if hn.LivenessProbe.HTTPGet.Host != "127.0.0.1" || hn.ReadinessProbe.HTTPGet.Host != "127.0.0.1" {
		t.Errorf("host-network probes must target 127.0.0.1: %+v", hn.LivenessProbe.HTTPGet)
	}
	rs := &v1.UserResync{}
	rs.Name, rs.Namespace = "r", "mail"
	if j := Job(rs, pair(), PodOptions{Image: "img"}).Spec.Template.Spec.Containers[0]; j.LivenessProbe != nil || j.Resources.Limits.Memory().IsZero() {
		t.Errorf("job container: probes %v (a one-shot run serves none), limits %v", j.LivenessProbe, j.Resources.Limits)
	}
}

// TestPodDefaultsAndOverrides: the manager's defaults reach the Deployment and the Job;
// a pair's spec.replicator wins field by field; labels, annotations and pull secrets add
// up; the operator's own labels cannot be overridden.
func TestPodDefaultsAndOverrides(t *testing.T) {
	def := &v1.ReplicatorPodSpec{
		ImagePullPolicy:   corev1.PullAlways,
		ImagePullSecrets:  []corev1.LocalObjectReference{{Name: "registry"}},
		PodLabels:         map[string]string{"team": "mail", LabelPair: "spoofed"},
		PodAnnotations:    map[string]string{"a": "1"},
		PriorityClassName: "mail-critical",
		NodeSelector:      map[string]string{"zone": "a"},
		Tolerations:       []corev1.Toleration{{Key: "mail", Operator: corev1.TolerationOpExists}},
		Resources:         corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}},
		RunAsUser:         ptr.To[int64](1000),
		RunAsGroup:        ptr.To[int64](1000),
		FSGroup:           ptr.To[int64](2000),
	}
	o := PodOptions{Image: "img", Defaults: def}
	rs := &v1.UserResync{}
	rs.Name, rs.Namespace = "r", "mail"
	for _, tmpl := range []corev1.PodTemplateSpec{Deployment(pair(), o).Spec.Template, Job(rs, pair(), o).Spec.Template} {
		ps, c := tmpl.Spec, tmpl.Spec.Containers[0]
		if c.ImagePullPolicy != corev1.PullAlways || ps.ImagePullSecrets[0].Name != "registry" || ps.PriorityClassName != "mail-critical" ||
			ps.NodeSelector["zone"] != "a" || len(ps.Tolerations) != 1 || c.Resources.Limits.Memory().String() != "1Gi" {
			t.Errorf("defaults not applied: %+v", ps)
		}
		if *ps.SecurityContext.RunAsUser != 1000 || *ps.SecurityContext.FSGroup != 2000 {
			t.Errorf("ids %+v", ps.SecurityContext)
		}
		if tmpl.Labels["team"] != "mail" || tmpl.Labels[LabelPair] != "p" || tmpl.Annotations["a"] != "1" {
			t.Errorf("labels %v annotations %v", tmpl.Labels, tmpl.Annotations)
		}
	}
	p := pair()
	p.Spec.Replicator = v1.ReplicatorPodSpec{
		ImagePullPolicy:   corev1.PullNever,
		ImagePullSecrets:  []corev1.LocalObjectReference{{Name: "own"}},
		PodLabels:         map[string]string{"team": "imap"},
		PodAnnotations:    map[string]string{"b": "2"},
		PriorityClassName: "low",
		NodeSelector:      map[string]string{"zone": "b"},
		RunAsGroup:        ptr.To[int64](8),
	}
	tmpl := Deployment(p, o).Spec.Template
	ps, c := tmpl.Spec, tmpl.Spec.Containers[0]
	if c.ImagePullPolicy != corev1.PullNever || ps.PriorityClassName != "low" || ps.NodeSelector["zone"] != "b" {
		t.Errorf("pair overrides ignored: %+v", ps)
	}
	var secrets []string
	for _, s := range ps.ImagePullSecrets {
		secrets = append(secrets, s.Name)
	}
	if !slices.Equal(secrets, []string{"registry", "own"}) {
		t.Errorf("pull secrets %v", secrets)
	}
	if tmpl.Labels["team"] != "imap" || tmpl.Annotations["a"] != "1" || tmpl.Annotations["b"] != "2" || tmpl.Annotations[AnnotationSpecHash] == "" {
		t.Errorf("labels %v annotations %v", tmpl.Labels, tmpl.Annotations)
	}
	if *ps.SecurityContext.RunAsGroup != 8 || *ps.SecurityContext.FSGroup != 8 || *ps.SecurityContext.RunAsUser != 1000 {
		t.Errorf("a pair's runAsGroup is its fsGroup too: %+v", ps.SecurityContext)
	}
	if len(ps.Tolerations) != 1 {
		t.Errorf("default tolerations lost: %v", ps.Tolerations)
	}
}

// TestPlatformAssignedIDs: a defaults file without ids leaves them to the platform
// (OpenShift restricted-v2 assigns a uid from the namespace's range).
func TestPlatformAssignedIDs(t *testing.T) {
	f := filepath.Join(t.TempDir(), "defaults.yaml")
	if err := os.WriteFile(f, []byte("imagePullPolicy: IfNotPresent\nresources:\n  requests: {cpu: 10m, memory: 32Mi}\n  limits: {memory: 128Mi}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := LoadPodDefaults(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := Deployment(pair(), PodOptions{Image: "img", Defaults: &d}).Spec.Template.Spec.SecurityContext
	if sc.RunAsUser != nil || sc.RunAsGroup != nil || sc.FSGroup != nil || !*sc.RunAsNonRoot {
		t.Errorf("ids should be left to the platform: %+v", sc)
	}
	for _, bad := range []string{"imagePullPolicy: Sometimes\nbogus: 1\n", "image: x\n"} {
		if err := os.WriteFile(f, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadPodDefaults(f); err == nil {
			t.Errorf("defaults %q accepted", bad)
		}
	}
}

// TestDisallowedVolumes: hostPath and nfs need --allow-host-path; a claim never does.
func TestDisallowedVolumes(t *testing.T) {
	p := pair()
	if f := DisallowedVolumes(p, false); len(f) != 0 {
		t.Fatalf("audit pair without volumes: %v", f)
	}
	p.Spec.SyncLog = &v1.SyncLogSource{Volume: v1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/cyrus"}}}
	p.Spec.MasterConfig = &v1.MasterConfigSource{Volume: v1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "n", Path: "/"}}, Path: "imapd.conf"}
	f := DisallowedVolumes(p, false)
	if !slices.Equal(f, []string{"spec.syncLog.volume.hostPath", "spec.masterConfig.volume.nfs"}) {
		t.Fatalf("fields %v", f)
	}
	if msg := VolumeMessage(f); !strings.Contains(msg, "spec.syncLog.volume.hostPath") || !strings.Contains(msg, "--allow-host-path") {
		t.Errorf("message %q", msg)
	}
	if f := DisallowedVolumes(p, true); len(f) != 0 {
		t.Errorf("allowed, yet %v", f)
	}
	p.Spec.SyncLog.Volume = v1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}}
	p.Spec.MasterConfig = nil
	if f := DisallowedVolumes(p, false); len(f) != 0 {
		t.Errorf("a claim is allowed: %v", f)
	}
	st := PairStatus(p, PairObservation{DisallowedVolumes: []string{"spec.syncLog.volume.hostPath"}})
	for _, c := range st.Conditions {
		if c.Type == v1.ConditionStalled && (c.Reason != v1.ReasonVolumeNotAllowed || !strings.Contains(c.Message, "spec.syncLog.volume.hostPath")) {
			t.Errorf("stalled %+v", c)
		}
	}
}
