package helm

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
)

const agentExampleDir = chartDir + "/examples/agent-sidecar"

// exampleDocs splits an example manifest into its documents.
func exampleDocs(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), agentExampleDir, name))
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	for _, d := range strings.Split(string(b), "\n---\n") {
		if strings.Contains(d, "kind:") {
			docs = append(docs, d)
		}
	}
	return docs
}

// TestAgentSidecarExample: the chart's sidecar example runs the agent with the command
// line the agent's contract names, in the image the chart's agentImage renders to, as a
// non-root container with a read-only root, reading the master's configuration
// read-only and writing only its own channel directory; the token and certificate come
// from whole-directory Secret mounts (so a rotated token reaches it). The pair example
// uses spec.master.agent and mounts nothing of the master's (admission of both is
// checked against the real API server in controllers/agent_test.go).
func TestAgentSidecarExample(t *testing.T) {
	var sts appsv1.StatefulSet
	for _, d := range exampleDocs(t, "cyrus-statefulset.yaml") {
		if strings.Contains(d, "kind: StatefulSet") {
			if err := yaml.UnmarshalStrict([]byte(d), &sts); err != nil {
				t.Fatal(err)
			}
		}
	}
	var agent *corev1.Container
	for i, c := range sts.Spec.Template.Spec.Containers {
		if c.Name == "cyrusrepl-agent" {
			agent = &sts.Spec.Template.Spec.Containers[i]
		}
	}
	if agent == nil {
		t.Fatal("no cyrusrepl-agent container in the example StatefulSet")
	}

	c := newChart(t)
	var values struct {
		AgentImage struct{ Repository, Tag string } `json:"agentImage"`
	}
	var meta struct {
		AppVersion string `json:"appVersion"`
	}
	for file, into := range map[string]any{"values.yaml": &values, "Chart.yaml": &meta} {
		b, err := os.ReadFile(filepath.Join(c.repo, chartDir, file))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, into); err != nil {
			t.Fatal(err)
		}
	}
	if want := values.AgentImage.Repository + ":" + meta.AppVersion; values.AgentImage.Tag != "" || agent.Image != want {
		t.Errorf("example image %q, the chart's agentImage renders %q (tag %q)", agent.Image, want, values.AgentImage.Tag)
	}

	flags := map[string]string{}
	for _, a := range agent.Args {
		k, v, _ := strings.Cut(a, "=")
		flags[k] = v
	}
	for _, f := range []string{"--master-config", "--listen", "--token-file", "--tls-cert", "--tls-key"} {
		if flags[f] == "" {
			t.Errorf("args %q lack %s", agent.Args, f)
		}
	}
	sc := agent.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("agent security context %+v", sc)
	}
	if agent.ReadinessProbe != nil {
		t.Error("a readiness probe on the sidecar takes the Cyrus pod out of its Services when the agent is not ready")
	}

	// Mounts: read-only except the channel directory; the files the flags name are mounted.
	channel := "/var/lib/cyrus/sync/" + flags["--channel"]
	var writable []string
	mounted := func(file string) bool {
		for _, m := range agent.VolumeMounts {
			if file == m.MountPath || strings.HasPrefix(file, m.MountPath+"/") {
				return true
			}
		}
		return false
	}
	for _, m := range agent.VolumeMounts {
		if !m.ReadOnly {
			writable = append(writable, m.MountPath)
		}
		if strings.HasPrefix(m.Name, "agent-") && m.SubPath != "" {
			t.Errorf("mount %s uses subPath: a rotated Secret would not reach the agent", m.Name)
		}
	}
	if !slices.Equal(writable, []string{channel}) {
		t.Errorf("writable mounts %q, want only the channel %s", writable, channel)
	}
	for _, f := range []string{"--master-config", "--token-file", "--tls-cert", "--tls-key"} {
		if !mounted(flags[f]) {
			t.Errorf("%s %s is on no mount", f, flags[f])
		}
	}

	var pair v1.ReplicationPair
	docs := exampleDocs(t, "replicationpair.yaml")
	if len(docs) != 1 {
		t.Fatalf("replicationpair.yaml: %d documents", len(docs))
	}
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &pair); err != nil {
		t.Fatal(err)
	}
	a := pair.Spec.Master.Agent
	if a == nil || !strings.HasPrefix(a.URL, "https://") || pair.Spec.SyncLog != nil || pair.Spec.MasterConfig != nil {
		t.Fatalf("example pair: agent %+v, syncLog %v, masterConfig %v", a, pair.Spec.SyncLog, pair.Spec.MasterConfig)
	}
	var tokenSecret string
	for _, v := range sts.Spec.Template.Spec.Volumes {
		if v.Name == "agent-token" && v.Secret != nil {
			tokenSecret = v.Secret.SecretName
		}
	}
	if tokenSecret != a.TokenSecretRef.Name {
		t.Errorf("the agent reads Secret %q, the pair sends %q", tokenSecret, a.TokenSecretRef.Name)
	}
}
