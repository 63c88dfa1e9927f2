package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
)

func isAlreadyExists(err error) bool { return apierrors.IsAlreadyExists(err) }

func getDeployment(ctx context.Context, ns, pair string) (*appsv1.Deployment, error) {
	var d appsv1.Deployment
	err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: operator.ReplicatorName(pair)}, &d)
	return &d, err
}

func TestPairCreatesDeployment(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	pair := newPair(ns, "main")
	createPair(t, ctx, pair)

	var d *appsv1.Deployment
	eventually(t, "deployment created", func() (err error) { d, err = getDeployment(ctx, ns, "main"); return err })

	// Owner reference: controlled by the pair.
	if len(d.OwnerReferences) != 1 || d.OwnerReferences[0].UID != pair.UID || !ptr.Deref(d.OwnerReferences[0].Controller, false) {
		t.Fatalf("owner references = %+v, want controller ref to pair %s", d.OwnerReferences, pair.UID)
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || ptr.Deref(d.Spec.Replicas, -1) != 1 {
		t.Fatalf("strategy %q replicas %v, want Recreate and 1", d.Spec.Strategy.Type, d.Spec.Replicas)
	}
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	want := []string{"rolling", "--sync-log", "/var/lib/cyrusrepl/sync-log/sync/cyrusrepl", "--seed", "auto",
		"--master", "cyrus-master.mail.svc:2005", "--master-user", "repl",
		"--master-password-file", "/etc/cyrusrepl/master-password/password",
		"--master-tls", "starttls", "--master-ca-file", "/etc/cyrusrepl/master-ca/ca.crt",
		"--replica", "cyrus-replica.mail.svc:12005", "--replica-user", "repl",
		"--replica-password-file", "/etc/cyrusrepl/replica-password/password", "--replica-tls", "starttls",
		"--workers", "4", "--replica-only-policy", "keep", "--report-configmap", "main-report", "--pair", "main", "--state-dir", "/var/lib/cyrusrepl/state",
		"--metrics-addr", ":9090"}
	if !slices.Equal(c.Args, want) {
		t.Fatalf("args\n got %q\nwant %q", c.Args, want)
	}
	if c.Image != testImage {
		t.Fatalf("image %q, want %q", c.Image, testImage)
	}
	// Passwords come from Secret volumes, never env.
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			t.Fatalf("secret in env: %+v", e)
		}
	}
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	for name, secret := range map[string]string{"master-password": "cyrus-creds", "replica-password": "cyrus-creds", "master-ca": "cyrus-ca"} {
		v, ok := vols[name]
		if !ok || v.Secret == nil || v.Secret.SecretName != secret {
			t.Fatalf("volume %s = %+v, want Secret %s", name, v, secret)
		}
	}
	if k := vols["master-password"].Secret.Items[0].Key; k != "master-password" {
		t.Fatalf("master password key %q", k)
	}
	if v := vols["sync-log"]; v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "cyrus-master-config" {
		t.Fatalf("sync-log volume = %+v", v)
	}
	// Security context.
	sc := c.SecurityContext
	if !ptr.Deref(sc.RunAsNonRoot, false) || !ptr.Deref(sc.ReadOnlyRootFilesystem, false) || ptr.Deref(sc.AllowPrivilegeEscalation, true) ||
		!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Fatalf("container security context = %+v", sc)
	}
	if !ptr.Deref(pod.SecurityContext.RunAsNonRoot, false) || pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Fatalf("pod security context = %+v", pod.SecurityContext)
	}
	if pod.ServiceAccountName != "main-replicator" {
		t.Fatalf("service account %q", pod.ServiceAccountName)
	}
	var env string
	for _, e := range c.Env {
		if e.Name == "POD_NAMESPACE" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			env = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if env != "metadata.namespace" {
		t.Fatalf("POD_NAMESPACE from %q", env)
	}

	// Least-privilege Role.
	var role rbacv1.Role
	eventually(t, "role", func() error {
		return k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "main-replicator"}, &role)
	})
	if len(role.Rules) != 2 || !slices.Equal(role.Rules[0].ResourceNames, []string{"main-report"}) ||
		!slices.Equal(role.Rules[0].Verbs, []string{"get", "update", "patch"}) || !slices.Equal(role.Rules[1].Verbs, []string{"create"}) {
		t.Fatalf("role rules = %+v", role.Rules)
	}
	var rb rbacv1.RoleBinding
	eventually(t, "rolebinding", func() error {
		return k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "main-replicator"}, &rb)
	})
	if rb.Subjects[0].Name != "main-replicator" || rb.RoleRef.Name != "main-replicator" {
		t.Fatalf("rolebinding = %+v", rb)
	}

	// Suspend scales to zero, resume back to one; neither rolls the pod template.
	hash := d.Spec.Template.Annotations[operator.AnnotationSpecHash]
	setSuspend := func(v bool) {
		t.Helper()
		updatePair(t, ctx, client.ObjectKeyFromObject(pair), func(p *v1.ReplicationPair) { p.Spec.Suspend = v })
	}
	setSuspend(true)
	eventually(t, "suspend scales to zero", func() error {
		d, err := getDeployment(ctx, ns, "main")
		if err != nil {
			return err
		}
		if r := ptr.Deref(d.Spec.Replicas, -1); r != 0 {
			return fmt.Errorf("replicas %d", r)
		}
		if h := d.Spec.Template.Annotations[operator.AnnotationSpecHash]; h != hash {
			return fmt.Errorf("suspend changed the spec hash %s -> %s", hash, h)
		}
		return nil
	})
	eventually(t, "pair reports Suspended", func() error {
		var p v1.ReplicationPair
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(pair), &p); err != nil {
			return err
		}
		if p.Status.Replicator.State != v1.WorkloadSuspended {
			return fmt.Errorf("replicator state %q", p.Status.Replicator.State)
		}
		return nil
	})
	setSuspend(false)
	eventually(t, "resume scales to one", func() error {
		d, err := getDeployment(ctx, ns, "main")
		if err != nil {
			return err
		}
		if r := ptr.Deref(d.Spec.Replicas, -1); r != 1 {
			return fmt.Errorf("replicas %d", r)
		}
		return nil
	})

	// A spec edit rolls the Deployment: new args and a new spec hash. Dropping the sync
	// log switches to audit mode.
	updatePair(t, ctx, client.ObjectKeyFromObject(pair), func(p *v1.ReplicationPair) {
		p.Spec.Workers = 8
		p.Spec.SyncLog = nil
		p.Spec.Master.IMAPPort = 143
	})
	eventually(t, "spec edit rolls the deployment", func() error {
		d, err := getDeployment(ctx, ns, "main")
		if err != nil {
			return err
		}
		args := d.Spec.Template.Spec.Containers[0].Args
		if args[0] != "audit" || !strings.Contains(strings.Join(args, " "), "--interval 1h ") || !strings.Contains(strings.Join(args, " "), "--workers 8") {
			return fmt.Errorf("args %q", args)
		}
		if d.Spec.Template.Annotations[operator.AnnotationSpecHash] == hash {
			return fmt.Errorf("spec hash unchanged")
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == "sync-log" {
				return fmt.Errorf("sync-log volume still mounted")
			}
		}
		return nil
	})
}
