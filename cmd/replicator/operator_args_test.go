package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/tlstest"
)

// TestOperatorArgsParse feeds the command lines the operator generates (Deployments of
// pairs in every mode (a sync log mounted or served by the master's agent), resync Jobs of every mode (an Audit one lists the master's users), every TLS mode and CA source) through the
// replicator's real flag parser and checks (files read, TLS configs built), stopping
// before any connection. The pod's mount paths are moved under a temporary root and the
// files its volumes would hold are written there. (The test binary links the operator;
// the replicator binary does not.)
func TestOperatorArgsParse(t *testing.T) {
	flagsCheckOnly = true
	t.Cleanup(func() { flagsCheckOnly = false })
	ca := tlstest.NewCA(t, "ca").PEM
	hostPath := func(p string) v1.VolumeSource {
		return v1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: p}}
	}
	tlsModes := []*v1.TLSConfig{
		nil, // unset: STARTTLS, system roots
		{Mode: v1.TLSModeNone},
		{Mode: v1.TLSModeStartTLS, CASecretRef: &v1.SecretKeyRef{Name: "ca", Key: "ca.crt"}},
		{Mode: v1.TLSModeTLS, CAConfigMapRef: &v1.ConfigMapKeyRef{Name: "bundle", Key: "ca.pem"}, ServerName: "mail.example.com"},
	}
	pairs := map[string]func(*v1.ReplicationPair){
		"rolling": func(p *v1.ReplicationPair) {
			p.Spec.SyncLog = &v1.SyncLogSource{Volume: hostPath("/var/lib/cyrus"), Path: "sync/cyrusrepl"}
			p.Spec.MasterConfig = &v1.MasterConfigSource{Volume: hostPath("/etc"), Path: "imapd.conf"}
		},
		"audit from mailboxes.db": func(p *v1.ReplicationPair) {
			p.Spec.MasterConfig = &v1.MasterConfigSource{Volume: hostPath("/etc"), Path: "imapd.conf"}
			p.Spec.AuditInterval = &metav1.Duration{Duration: time.Hour}
		},
		"audit over IMAP": func(p *v1.ReplicationPair) { p.Spec.Master.IMAPPort = 993 },
		"rolling, seeding from IMAP": func(p *v1.ReplicationPair) {
			p.Spec.SyncLog = &v1.SyncLogSource{Volume: hostPath("/var/lib/cyrus"), Path: "sync/cyrusrepl"}
			p.Spec.Master.IMAPPort = 993
		},
		"rolling through the agent": func(p *v1.ReplicationPair) {
			p.Spec.Master.IMAPPort = 993 // ignored: the agent lists the users
			p.Spec.Master.Agent = &v1.AgentSource{URL: "https://cyrus-0.cyrus.mail.svc:8443",
				TokenSecretRef: v1.SecretKeyRef{Name: "agent", Key: "token"},
				CASecretRef:    &v1.SecretKeyRef{Name: "agent", Key: "ca.crt"}}
		},
		"rolling through the agent, mutual TLS": func(p *v1.ReplicationPair) {
			p.Spec.Master.Agent = &v1.AgentSource{URL: "https://cyrus-0.cyrus.mail.svc:8443",
				TokenSecretRef:      v1.SecretKeyRef{Name: "agent", Key: "token"},
				ClientCertSecretRef: &v1.TLSSecretRef{Name: "agent-client"}}
		},
		"rolling through the agent, system roots": func(p *v1.ReplicationPair) {
			p.Spec.Master.Agent = &v1.AgentSource{URL: "https://[fd00::2]:8443",
				TokenSecretRef: v1.SecretKeyRef{Name: "agent", Key: "token"}}
		},
	}
	for name, shape := range pairs {
		for _, mt := range tlsModes {
			for _, rt := range tlsModes {
				pair := &v1.ReplicationPair{
					ObjectMeta: metav1.ObjectMeta{Namespace: "mail", Name: "p", UID: "u"},
					Spec: v1.ReplicationPairSpec{
						Master:  v1.MasterEndpoint{Endpoint: v1.Endpoint{Host: "cyrus-master.mail.svc", Username: "repl", PasswordSecretRef: v1.SecretKeyRef{Name: "s", Key: "mp"}, TLS: mt}},
						Replica: v1.Endpoint{Host: "fd00::1", Port: 3005, Username: "repl", PasswordSecretRef: v1.SecretKeyRef{Name: "s", Key: "rp"}, TLS: rt},
					},
				}
				shape(pair)
				label := name + "/" + operator.TLSFlag(mt) + "/" + operator.TLSFlag(rt)
				d := operator.Deployment(pair, operator.PodOptions{Image: "img"})
				checkPodArgs(t, label, d.Spec.Template.Spec, ca)
				for _, mode := range []v1.ResyncMode{v1.ResyncSync, v1.ResyncVerify, v1.ResyncAudit} {
					rs := &v1.UserResync{ObjectMeta: metav1.ObjectMeta{Namespace: "mail", Name: "r", UID: "r"},
						Spec: v1.UserResyncSpec{PairName: "p", Users: []string{"alice", "john.doe@example.com"}, Mode: mode}}
					if mode == v1.ResyncAudit {
						rs.Spec.Users = nil // every user of the master
					}
					checkPodArgs(t, label+"/resync-"+string(mode), operator.Job(rs, pair, operator.PodOptions{Image: "img"}).Spec.Template.Spec, ca)
				}
			}
		}
	}
}

// checkPodArgs lays out the pod's files under a temporary root, runs the replicator with
// the container's arguments (paths moved there) and wants the parse-and-check stop.
func checkPodArgs(t *testing.T, label string, pod corev1.PodSpec, ca []byte) {
	t.Helper()
	root := t.TempDir()
	var clientPair map[string][]byte
	c := pod.Containers[0]
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	for _, m := range c.VolumeMounts {
		dir := filepath.Join(root, m.MountPath)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		v := volumes[m.Name]
		var items []corev1.KeyToPath
		switch {
		case v.Secret != nil:
			items = v.Secret.Items
		case v.ConfigMap != nil:
			items = v.ConfigMap.Items
		case v.HostPath != nil && strings.HasSuffix(m.MountPath, "master-config"):
			items = []corev1.KeyToPath{{Path: "imapd.conf"}}
		}
		for _, it := range items {
			content := []byte("secret\n")
			switch {
			case it.Key == "tls.crt" || it.Key == "tls.key":
				if clientPair == nil {
					clientPair = clientPairPEM(t)
				}
				content = clientPair[it.Key] // a kubernetes.io/tls Secret: a certificate and its key
			case strings.HasSuffix(it.Path, ".crt") || strings.HasSuffix(it.Path, ".pem"):
				content = ca
			case it.Path == "imapd.conf":
				content = []byte("configdirectory: " + filepath.Join(root, "conf") + "\ndeletedprefix: DELETED\n")
			}
			if err := os.WriteFile(filepath.Join(dir, it.Path), content, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		if strings.HasPrefix(a, "/") {
			a = filepath.Join(root, a)
		}
		args[i] = a
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	stderr := strings.TrimSpace(errb.String())
	// The only other lines allowed are the plaintext warning of a None end and the note
	// that the master's partitions are not mounted (updates then use GET FULLMAILBOX).
	for _, l := range strings.Split(stderr, "\n") {
		if !strings.Contains(l, errFlagsChecked.Error()) && !strings.Contains(l, "crosses the network in clear") &&
			!strings.Contains(l, "the master's indexes cannot be read here") {
			t.Fatalf("%s: exit %d, stderr:\n%s\nargs %q", label, code, stderr, c.Args)
		}
	}
	if !strings.Contains(stderr, errFlagsChecked.Error()) {
		t.Fatalf("%s: the replicator did not reach the end of its checks: exit %d %q", label, code, stderr)
	}
	plain := strings.Contains(strings.Join(c.Args, " "), "-tls none")
	if plain != strings.Contains(stderr, "in clear") {
		t.Fatalf("%s: plaintext %v but stderr %q", label, plain, stderr)
	}
}

// clientPairPEM is a client certificate and its key as the PEM files of a
// kubernetes.io/tls Secret, by key.
func clientPairPEM(t *testing.T) map[string][]byte {
	t.Helper()
	cert := tlstest.NewCA(t, "clients").Client(t, "replicator")
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}),
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}),
	}
}
