package controllers

import (
	"fmt"
	"maps"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
)

// TestSecretRotationRollsReplicator: the replicator reads its password and CA files at
// start, so a rotated Secret must reach it through a new pod: the Deployment's pod
// template changes when a Secret the pair mounts changes. A Secret deleted under a
// running replicator must not roll it (the new pod could not start), and a Secret the
// pair does not mount changes nothing.
func TestSecretRotationRollsReplicator(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	createPair(t, ctx, newPair(ns, "rot"))
	template := func() map[string]string {
		t.Helper()
		d, err := getDeployment(ctx, ns, "rot")
		if err != nil {
			t.Fatal(err)
		}
		return d.Spec.Template.Annotations
	}
	eventually(t, "deployment", func() error { _, err := getDeployment(ctx, ns, "rot"); return err })
	settle := func() map[string]string {
		t.Helper()
		// the manager's cache may lag the create: let it settle on one template
		var last map[string]string
		eventually(t, "template settles", func() error {
			a := template()
			if !maps.Equal(a, last) {
				last = a
				time.Sleep(500 * time.Millisecond)
				return fmt.Errorf("template annotations changed: %v", a)
			}
			return nil
		})
		return last
	}
	before := settle()

	rotate := func(name string, data map[string]string) {
		t.Helper()
		var s corev1.Secret
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &s); err != nil {
			t.Fatal(err)
		}
		s.StringData = data
		if err := k8s.Update(ctx, &s); err != nil {
			t.Fatal(err)
		}
	}
	// The password rotates.
	rotate("cyrus-creds", map[string]string{"master-password": "m2", "replica-password": "r"})
	eventually(t, "template changes after the password rotation", func() error {
		if a := template(); maps.Equal(a, before) {
			return fmt.Errorf("template annotations unchanged: %v", a)
		}
		return nil
	})
	afterPassword := settle()
	// The CA rotates.
	rotate("cyrus-ca", map[string]string{"ca.crt": "-----BEGIN CERTIFICATE-----\nnew\n"})
	eventually(t, "template changes after the CA rotation", func() error {
		if a := template(); maps.Equal(a, afterPassword) {
			return fmt.Errorf("template annotations unchanged: %v", a)
		}
		return nil
	})
	afterCA := settle()

	// A Secret the pair does not mount: nothing.
	other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "unrelated"}, StringData: map[string]string{"x": "1"}}
	if err := k8s.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	rotate("unrelated", map[string]string{"x": "2"})
	// The CA Secret deleted: the running replicator keeps its pod.
	if err := k8s.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cyrus-ca"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pair reports the CA missing", func() error {
		p, err := getPair(ctx, ns, "rot")
		if err != nil {
			return err
		}
		return wantReferenceMissing(p.Status.Conditions, `Secret "cyrus-ca" not found (spec.master.tls.caSecretRef)`)
	})
	if a := template(); !maps.Equal(a, afterCA) {
		t.Fatalf("an unrelated Secret or a deleted one rolled the replicator: %v -> %v", afterCA, a)
	}
}

// TestReferencesRevisionPastTheCache: an object the cache does not hold yet (found
// empty) is read on the API server, metadata only, and gives the same revision as when
// the cache holds it; an object that does not exist, or lacks a mounted key, gives none.
func TestReferencesRevisionPastTheCache(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	createPairSecrets(t, ctx, ns)
	pair := newPair(ns, "rev")
	refs := operator.PairReferences(pair)
	found, revs, err := readReferences(ctx, k8s, ns, refs)
	if err != nil {
		t.Fatal(err)
	}
	want, ok, err := referencesRevision(ctx, k8s, ns, refs, found, revs)
	if err != nil || !ok || want == "" {
		t.Fatalf("with every object read: %q %v %v", want, ok, err)
	}
	got, ok, err := referencesRevision(ctx, k8s, ns, refs, operator.ObjectKeys{}, map[string]operator.ObjectRevision{})
	if err != nil || !ok || got != want {
		t.Fatalf("past the cache: %q %v %v, want %q", got, ok, err, want)
	}
	pair.Spec.Replica.PasswordSecretRef.Key = "no-such-key"
	refs = operator.PairReferences(pair)
	if _, ok, err := referencesRevision(ctx, k8s, ns, refs, found, revs); ok || err != nil {
		t.Fatalf("a missing key gave a revision (%v)", err)
	}
	pair.Spec.Replica.PasswordSecretRef = v1.SecretKeyRef{Name: "no-such-secret", Key: "k"}
	refs = operator.PairReferences(pair)
	if _, ok, err := referencesRevision(ctx, k8s, ns, refs, operator.ObjectKeys{}, map[string]operator.ObjectRevision{}); ok || err != nil {
		t.Fatalf("a missing Secret gave a revision (%v)", err)
	}
}
