package controllers

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
)

// TestAdmissionRejects checks that the API server itself rejects invalid objects, with
// messages a person can act on.
func TestAdmissionRejects(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)

	pairCases := []struct {
		name   string
		mutate func(*v1.ReplicationPair)
		want   string
	}{
		{"missing master host", func(p *v1.ReplicationPair) { p.Spec.Master.Host = "" }, "spec.master.host"},
		{"missing replica username", func(p *v1.ReplicationPair) { p.Spec.Replica.Username = "" }, "spec.replica.username"},
		{"bad port", func(p *v1.ReplicationPair) { p.Spec.Replica.Port = 70000 }, "should be less than or equal to 65535"},
		{"tls with both CAs", func(p *v1.ReplicationPair) {
			p.Spec.Master.TLS.CAConfigMapRef = &v1.ConfigMapKeyRef{Name: "ca", Key: "ca.crt"}
		}, "tls takes at most one of caSecretRef or caConfigMapRef"},
		{"tls off with a CA", func(p *v1.ReplicationPair) { p.Spec.Master.TLS.Mode = v1.TLSModeNone }, "tls.mode None is plaintext and verifies nothing"},
		{"tls off with a server name", func(p *v1.ReplicationPair) {
			p.Spec.Master.TLS = &v1.TLSConfig{Mode: v1.TLSModeNone, ServerName: "mail.example.com"}
		}, "tls.mode None is plaintext and verifies nothing"},
		{"tls without a mode", func(p *v1.ReplicationPair) { p.Spec.Master.TLS.Mode = "" }, "spec.master.tls.mode"},
		{"unknown tls mode", func(p *v1.ReplicationPair) { p.Spec.Master.TLS.Mode = "SSL" }, `supported values: "None", "StartTLS", "TLS"`},
		{"sync log with two volume kinds", func(p *v1.ReplicationPair) {
			p.Spec.SyncLog.Volume.NFS = &corev1NFS
		}, "exactly one of persistentVolumeClaim, hostPath or nfs must be set"},
		{"sync log with no volume", func(p *v1.ReplicationPair) {
			p.Spec.SyncLog.Volume.PersistentVolumeClaim = nil
		}, "exactly one of persistentVolumeClaim, hostPath or nfs must be set"},
		{"sync log path escapes", func(p *v1.ReplicationPair) { p.Spec.SyncLog.Path = "sync/../../etc" }, "path must not contain '..'"},
		{"audit interval too short", func(p *v1.ReplicationPair) {
			p.Spec.AuditInterval = &metav1.Duration{Duration: 1e9}
		}, "auditInterval must be at least 1m"},
		{"unknown policy", func(p *v1.ReplicationPair) { p.Spec.ReplicaOnlyPolicy = "Delete" }, `supported values: "Keep", "Fail"`},
		{"name too long", func(p *v1.ReplicationPair) { p.Name = strings.Repeat("a", 49) }, "metadata.name must be at most 48 characters"},
		{"audit mode with no way to list users", func(p *v1.ReplicationPair) { p.Spec.SyncLog = nil }, "set master.agent, masterConfig or master.imapPort"},
		{"bad imap port", func(p *v1.ReplicationPair) { p.Spec.Master.IMAPPort = 70000 }, "should be less than or equal to 65535"},
	}
	for _, tc := range pairCases {
		t.Run("pair/"+tc.name, func(t *testing.T) {
			p := newPair(ns, "bad")
			tc.mutate(p)
			err := k8s.Create(ctx, p)
			if err == nil {
				t.Fatalf("created an invalid pair")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			t.Logf("rejected: %v", err)
		})
	}

	t.Run("pair/missing endpoint", func(t *testing.T) {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": v1.GroupVersion.String(), "kind": "ReplicationPair",
			"metadata": map[string]any{"name": "noendpoint", "namespace": ns},
			"spec": map[string]any{"replica": map[string]any{
				"host": "r", "username": "repl", "passwordSecretRef": map[string]any{"name": "s", "key": "k"},
			}},
		}}
		err := k8s.Create(ctx, u)
		if err == nil || !strings.Contains(err.Error(), "spec.master: Required value") {
			t.Fatalf("err = %v, want spec.master: Required value", err)
		}
		t.Logf("rejected: %v", err)
	})

	resync := func(name string) *v1.UserResync {
		return &v1.UserResync{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       v1.UserResyncSpec{PairName: "main", Users: []string{"alice", "bob"}, Mode: v1.ResyncSync},
		}
	}
	resyncCases := []struct {
		name   string
		mutate func(*v1.UserResync)
		want   string
	}{
		{"empty user list", func(r *v1.UserResync) { r.Spec.Users = nil }, "users is required for mode Sync and Verify"},
		{"verify without users", func(r *v1.UserResync) { r.Spec.Users, r.Spec.Mode = nil, v1.ResyncVerify }, "users is required for mode Sync and Verify"},
		{"audit with users", func(r *v1.UserResync) { r.Spec.Mode = v1.ResyncAudit }, "mode Audit walks every user of the master: remove users"},
		{"audit deleting unmarked", func(r *v1.UserResync) {
			r.Spec.Users, r.Spec.Mode, r.Spec.DeleteUnmarked = nil, v1.ResyncAudit, true
		}, "deleteUnmarked is for Sync and Verify of named users"},
		{"duplicate users", func(r *v1.UserResync) { r.Spec.Users = []string{"alice", "alice"} }, "Duplicate value"},
		{"bad mode", func(r *v1.UserResync) { r.Spec.Mode = "Repair" }, `supported values: "Sync", "Verify", "Audit"`},
		{"missing pair", func(r *v1.UserResync) { r.Spec.PairName = "" }, "spec.pairName"},
		{"too many users", func(r *v1.UserResync) {
			r.Spec.Users = nil
			for i := 0; i <= v1.MaxResyncUsers; i++ {
				r.Spec.Users = append(r.Spec.Users, "u"+strings.Repeat("x", i%7)+itoa(i))
			}
		}, "must have at most 1000 items"},
	}
	for _, tc := range resyncCases {
		t.Run("resync/"+tc.name, func(t *testing.T) {
			r := resync("bad")
			tc.mutate(r)
			err := k8s.Create(ctx, r)
			if err == nil {
				t.Fatalf("created an invalid resync")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			t.Logf("rejected: %v", err)
		})
	}

	t.Run("resync/audit without users", func(t *testing.T) {
		r := resync("audit")
		r.Spec.Users, r.Spec.Mode = nil, v1.ResyncAudit
		if err := k8s.Create(ctx, r); err != nil {
			t.Fatalf("an Audit resync without users was rejected: %v", err)
		}
	})

	t.Run("resync/spec edit", func(t *testing.T) {
		r := resync("immutable")
		if err := k8s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		for _, mutate := range []func(*v1.UserResync){
			func(r *v1.UserResync) { r.Spec.Users = append(r.Spec.Users, "carol") },
			func(r *v1.UserResync) { r.Spec.Mode = v1.ResyncVerify },
			func(r *v1.UserResync) { r.Spec.PairName = "other" },
		} {
			var cur v1.UserResync
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(r), &cur); err != nil {
				t.Fatal(err)
			}
			base := cur.DeepCopy()
			mutate(&cur)
			// A merge patch carries no resourceVersion: no conflict with the manager's
			// status writes, so the answer is admission's.
			err := k8s.Patch(ctx, &cur, client.MergeFrom(base))
			if err == nil || !strings.Contains(err.Error(), "spec is immutable") {
				t.Fatalf("spec edit: err = %v, want 'spec is immutable'", err)
			}
		}
	})
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}
