package operator

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
)

func agentPair() *v1.ReplicationPair {
	p := pair()
	p.Spec.Master.Agent = &v1.AgentSource{
		URL:            "https://cyrus-0.cyrus.mail.svc:8443",
		TokenSecretRef: v1.SecretKeyRef{Name: "agent", Key: "token"},
		CAConfigMapRef: &v1.ConfigMapKeyRef{Name: "agent-ca", Key: "ca.pem"},
	}
	return p
}

// TestAgentPodMountsNothingOfTheMaster: with spec.master.agent the Deployment runs in
// rolling mode through the agent; its pod holds the token and CA as read-only Secret
// and ConfigMap files and no volume that could reach the master's disk, and passes
// neither --sync-log nor --master-config.
func TestAgentPodMountsNothingOfTheMaster(t *testing.T) {
	p := agentPair()
	p.Spec.Master.IMAPPort = 143 // the agent lists the users for a seed: no --master-imap
	if PairMode(p) != ModeRolling {
		t.Fatalf("mode %q with an agent, want rolling", PairMode(p))
	}
	d := Deployment(p, PodOptions{Image: "img"})
	ps := d.Spec.Template.Spec
	args := ps.Containers[0].Args
	if args[0] != ModeRolling || args[1] != "--seed" || args[2] != "auto" {
		t.Fatalf("args %q: want rolling, seeding when the replica is new", args)
	}
	wantFlag := func(flag, value string) {
		t.Helper()
		i := slices.Index(args, flag)
		if i < 0 || args[i+1] != value {
			t.Fatalf("args %q: want %s %s", args, flag, value)
		}
	}
	wantFlag("--agent", "https://cyrus-0.cyrus.mail.svc:8443")
	wantFlag("--agent-token-file", "/etc/cyrusrepl/agent-token/token")
	wantFlag("--agent-ca-file", "/etc/cyrusrepl/agent-ca/ca.crt")
	for _, f := range []string{"--sync-log", "--master-config", "--master-imap", "--interval"} {
		if slices.Contains(args, f) {
			t.Fatalf("args %q carry %s", args, f)
		}
	}
	checkAgentVolumes(t, ps)
	if PlaintextMessage(p) != "" {
		t.Fatalf("the agent pair fixture has no plaintext endpoint: %q", PlaintextMessage(p))
	}
}

// checkAgentVolumes: only Secrets, ConfigMaps, the scratch emptyDir and the pair's own
// state claim; the token and CA read-only.
func checkAgentVolumes(t *testing.T, ps corev1.PodSpec) {
	t.Helper()
	var token, ca bool
	for _, v := range ps.Volumes {
		switch {
		case v.HostPath != nil || v.NFS != nil:
			t.Fatalf("volume %s reaches a host's files: %+v", v.Name, v.VolumeSource)
		case v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName != StateClaimName("p"):
			t.Fatalf("volume %s mounts claim %s", v.Name, v.PersistentVolumeClaim.ClaimName)
		case v.Name == volAgentToken:
			token = v.Secret != nil && v.Secret.SecretName == "agent" && v.Secret.Items[0].Key == "token"
		case v.Name == volAgentCA:
			ca = v.ConfigMap != nil && v.ConfigMap.Name == "agent-ca" && v.ConfigMap.Items[0].Key == "ca.pem"
		}
	}
	if !token || !ca {
		t.Fatalf("token volume %v, CA volume %v: %+v", token, ca, ps.Volumes)
	}
	for _, m := range ps.Containers[0].VolumeMounts {
		if (m.Name == volAgentToken || m.Name == volAgentCA) && !m.ReadOnly {
			t.Fatalf("%s mounted read-write", m.Name)
		}
	}
}

// TestAgentJobs: resyncs of every mode reach the master's data through the agent too;
// an audit lists the users through it (no --master-imap, even with an IMAP port).
func TestAgentJobs(t *testing.T) {
	p := agentPair()
	p.Spec.Master.IMAPPort = 143
	p.Spec.Master.Agent.CAConfigMapRef = nil
	p.Spec.Master.Agent.CASecretRef = &v1.SecretKeyRef{Name: "agent", Key: "ca.crt"}
	for _, mode := range []v1.ResyncMode{v1.ResyncSync, v1.ResyncVerify, v1.ResyncAudit} {
		rs := &v1.UserResync{Spec: v1.UserResyncSpec{PairName: "p", Users: []string{"alice"}, Mode: mode}}
		rs.Name = "r-" + strings.ToLower(string(mode))
		if mode == v1.ResyncAudit {
			rs.Spec.Users = nil
		}
		args := Job(rs, p, PodOptions{Image: "img"}).Spec.Template.Spec.Containers[0].Args
		if !slices.Contains(args, "--agent") || slices.Contains(args, "--sync-log") ||
			slices.Contains(args, "--master-config") || slices.Contains(args, "--master-imap") {
			t.Fatalf("%s: args %q", mode, args)
		}
	}
	if !HasMasterUsers(p) {
		t.Fatal("an agent lists the master's users, but HasMasterUsers says no")
	}
}

// TestAgentReferences: the token, CA and client certificate are references of the
// pair, named by their spec fields, so a missing one is reported and a changed one
// rolls the replicator.
func TestAgentReferences(t *testing.T) {
	p := agentPair()
	p.Spec.Master.Agent.ClientCertSecretRef = &v1.TLSSecretRef{Name: "agent-client"}
	var fields []string
	for _, r := range PairReferences(p) {
		if strings.HasPrefix(r.Field, "spec.master.agent.") {
			fields = append(fields, r.Kind+" "+r.Name+"/"+r.Key+" "+r.Field)
		}
	}
	want := []string{"Secret agent/token spec.master.agent.tokenSecretRef", "ConfigMap agent-ca/ca.pem spec.master.agent.caConfigMapRef",
		"Secret agent-client/tls.crt spec.master.agent.clientCertSecretRef", "Secret agent-client/tls.key spec.master.agent.clientCertSecretRef"}
	if !slices.Equal(fields, want) {
		t.Fatalf("agent references %q, want %q", fields, want)
	}
	if keys := PairReferenceIndex(p); !slices.Contains(keys, "Secret/agent") || !slices.Contains(keys, "ConfigMap/agent-ca") || !slices.Contains(keys, "Secret/agent-client") {
		t.Fatalf("index keys %q", keys)
	}
}
