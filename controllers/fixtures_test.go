package controllers

import (
	"context"
	"fmt"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
)

func newPair(ns, name string) *v1.ReplicationPair {
	return &v1.ReplicationPair{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.ReplicationPairSpec{
			Master: v1.MasterEndpoint{Endpoint: v1.Endpoint{
				Host: "cyrus-master.mail.svc", Username: "repl",
				PasswordSecretRef: v1.SecretKeyRef{Name: "cyrus-creds", Key: "master-password"},
				TLS:               &v1.TLSConfig{Mode: v1.TLSModeStartTLS, CASecretRef: &v1.SecretKeyRef{Name: "cyrus-ca", Key: "ca.crt"}},
			}},
			Replica: v1.Endpoint{
				Host: "cyrus-replica.mail.svc", Port: 12005, Username: "repl",
				PasswordSecretRef: v1.SecretKeyRef{Name: "cyrus-creds", Key: "replica-password"},
			},
			SyncLog: &v1.SyncLogSource{
				Volume: v1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "cyrus-master-config"}},
				Path:   "sync/cyrusrepl",
			},
		},
	}
}

// createPair creates the pair and the Secrets newPair references.
func createPair(t *testing.T, ctx context.Context, p *v1.ReplicationPair) {
	t.Helper()
	createPairSecrets(t, ctx, p.Namespace)
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatalf("create pair: %v", err)
	}
}

// createPairSecrets creates the Secrets newPair references (existing ones are kept).
func createPairSecrets(t *testing.T, ctx context.Context, ns string) {
	t.Helper()
	for _, sec := range []*corev1.Secret{
		{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cyrus-creds"},
			StringData: map[string]string{"master-password": "m", "replica-password": "r"},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cyrus-ca"},
			StringData: map[string]string{"ca.crt": "-----BEGIN CERTIFICATE-----\n"},
		},
	} {
		if err := k8s.Create(ctx, sec); err != nil && !isAlreadyExists(err) {
			t.Fatalf("create secret %s: %v", sec.Name, err)
		}
	}
}

// updatePair edits a pair's spec, retrying on conflicts with the manager's status writes.
func updatePair(t *testing.T, ctx context.Context, key client.ObjectKey, mutate func(*v1.ReplicationPair)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var p v1.ReplicationPair
		if err := k8s.Get(ctx, key, &p); err != nil {
			return err
		}
		mutate(&p)
		return k8s.Update(ctx, &p)
	})
	if err != nil {
		t.Fatalf("update pair %s: %v", key, err)
	}
}

var corev1NFS = corev1.NFSVolumeSource{Server: "nfs.example.org", Path: "/export/cyrus"}

var rbacRoleBinding rbacv1.RoleBinding

// writeFigure appends a measured figure to $CYRUSREPL_FIGURES (if set) for reports.
func writeFigure(t *testing.T, line string) {
	t.Helper()
	if f := os.Getenv("CYRUSREPL_FIGURES"); f != "" {
		fh, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintln(fh, line)
			fh.Close()
		}
	}
}
