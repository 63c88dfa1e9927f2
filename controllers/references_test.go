package controllers

import (
	"context"
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
)

// referenceEvents lists the notes of the ReferenceMissing Warning Events on an object.
func referenceEvents(ctx context.Context, ns string, uid types.UID) ([]string, error) {
	var list eventsv1.EventList
	if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	var notes []string
	for _, e := range list.Items {
		if e.Regarding.UID == uid && e.Reason == v1.ReasonReferenceMissing {
			if e.Type != corev1.EventTypeWarning {
				return nil, fmt.Errorf("event %s has type %s, want Warning", e.Name, e.Type)
			}
			notes = append(notes, e.Note)
		}
	}
	return notes, nil
}

// wantReferenceMissing checks Stalled and Ready name the missing references with msg,
// and that Reconciling is gone (kstatus then says Failed, not InProgress).
func wantReferenceMissing(conds []metav1.Condition, msg string) error {
	for _, typ := range []string{v1.ConditionStalled, v1.ConditionReady} {
		c := cond(conds, typ)
		want := metav1.ConditionTrue
		if typ == v1.ConditionReady {
			want = metav1.ConditionFalse
		}
		if c.Status != want || c.Reason != v1.ReasonReferenceMissing || c.Message != msg {
			return fmt.Errorf("%s = %s/%s %q, want %s/%s %q", typ, c.Status, c.Reason, c.Message, want, v1.ReasonReferenceMissing, msg)
		}
	}
	if c := cond(conds, v1.ConditionReconciling); c.Type != "" {
		return fmt.Errorf("Reconciling still set: %s/%s", c.Status, c.Reason)
	}
	return nil
}

// TestPairReferenceMissing: a pair created before its Secrets says which are missing
// (Stalled, Ready, one Warning Event) and still gets its Deployment; a Secret lacking a
// key is named with the key; once everything exists the pair recovers without being
// touched.
func TestPairReferenceMissing(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	pair := newPair(ns, "early")
	if err := k8s.Create(ctx, pair); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(pair)
	const noSecrets = `Secret "cyrus-creds" not found (spec.master.passwordSecretRef, spec.replica.passwordSecretRef); ` +
		`Secret "cyrus-ca" not found (spec.master.tls.caSecretRef)`
	eventually(t, "pair reports both Secrets missing", func() error {
		p, err := getPair(ctx, ns, key.Name)
		if err != nil {
			return err
		}
		return wantReferenceMissing(p.Status.Conditions, noSecrets)
	})
	// The Deployment is there all the same: its pod starts once the Secrets exist.
	if _, err := getDeployment(ctx, ns, key.Name); err != nil {
		t.Fatalf("no deployment while a Secret is missing: %v", err)
	}
	eventually(t, "one warning event", func() error {
		notes, err := referenceEvents(ctx, ns, pair.UID)
		if err != nil {
			return err
		}
		if len(notes) != 1 || notes[0] != noSecrets {
			return fmt.Errorf("events %q", notes)
		}
		return nil
	})
	// Another reconcile with nothing changed (as after a manager restart) writes no
	// status and announces nothing again.
	before, _ := getPair(ctx, ns, key.Name)
	r := &ReplicationPairReconciler{Client: k8s, Pod: operator.PodOptions{Image: testImage}}
	r.events = newReportEvents(k8s)
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: key}); err != nil {
		t.Fatal(err)
	}
	after, _ := getPair(ctx, ns, key.Name)
	if after.ResourceVersion != before.ResourceVersion {
		t.Fatalf("unchanged reconcile wrote the pair: rv %s -> %s\n%+v\n%+v", before.ResourceVersion, after.ResourceVersion, before.Status, after.Status)
	}
	if notes, err := referenceEvents(ctx, ns, pair.UID); err != nil || len(notes) != 1 {
		t.Fatalf("after an unchanged reconcile: events %q, err %v", notes, err)
	}

	// The Secrets appear, one of them without the replica's key.
	creds := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cyrus-creds"},
		StringData: map[string]string{"master-password": "m"},
	}
	ca := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cyrus-ca"},
		StringData: map[string]string{"ca.crt": "pem"},
	}
	for _, s := range []*corev1.Secret{creds, ca} {
		if err := k8s.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	const noKey = `Secret "cyrus-creds" has no key "replica-password" (spec.replica.passwordSecretRef)`
	eventually(t, "pair names the missing key", func() error {
		p, err := getPair(ctx, ns, key.Name)
		if err != nil {
			return err
		}
		return wantReferenceMissing(p.Status.Conditions, noKey)
	})
	// One Warning per new message: the manager may also have seen the moment between the
	// two creates (one Secret there, the other not yet), a message of its own.
	var announced int
	eventually(t, "a warning event for the new message", func() error {
		notes, err := referenceEvents(ctx, ns, pair.UID)
		if err != nil {
			return err
		}
		if len(notes) < 2 || len(notes) > 3 || !slices.Contains(notes, noKey) {
			return fmt.Errorf("events %q", notes)
		}
		if n := len(slices.Compact(slices.Sorted(slices.Values(notes)))); n != len(notes) {
			return fmt.Errorf("a message announced twice: %q", notes)
		}
		announced = len(notes)
		return nil
	})

	// The key is added: Stalled goes (removed, per kstatus), Ready waits for the
	// rollout. The pair itself is not touched.
	gen := after.Generation
	creds.StringData = map[string]string{"replica-password": "r"}
	if err := k8s.Update(ctx, creds); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pair recovers", func() error {
		p, err := getPair(ctx, ns, key.Name)
		if err != nil {
			return err
		}
		if c := cond(p.Status.Conditions, v1.ConditionStalled); c.Type != "" {
			return fmt.Errorf("Stalled still %s/%s %q", c.Status, c.Reason, c.Message)
		}
		if c := cond(p.Status.Conditions, v1.ConditionReady); c.Reason != v1.ReasonProgressing {
			return fmt.Errorf("Ready %s/%s, want Progressing (no Deployment controller here)", c.Status, c.Reason)
		}
		if p.Generation != gen {
			return fmt.Errorf("pair generation moved %d -> %d", gen, p.Generation)
		}
		return nil
	})
	if notes, err := referenceEvents(ctx, ns, pair.UID); err != nil || len(notes) != announced {
		t.Fatalf("recovery announced a warning: events %q, err %v", notes, err)
	}
}

// TestPairCAConfigMapKey: a CA bundle in a ConfigMap (not created by the manager, so not
// labelled) is checked by key too, and a key added under binaryData satisfies it.
func TestPairCAConfigMapKey(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	createPairSecrets(t, ctx, ns)
	pair := newPair(ns, "cm")
	pair.Spec.Replica.TLS = &v1.TLSConfig{Mode: v1.TLSModeStartTLS, CAConfigMapRef: &v1.ConfigMapKeyRef{Name: "replica-ca", Key: "bundle.pem"}}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "replica-ca"}, Data: map[string]string{"other.pem": "x"}}
	if err := k8s.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, pair); err != nil {
		t.Fatal(err)
	}
	const msg = `ConfigMap "replica-ca" has no key "bundle.pem" (spec.replica.tls.caConfigMapRef)`
	eventually(t, "pair names the ConfigMap key", func() error {
		p, err := getPair(ctx, ns, pair.Name)
		if err != nil {
			return err
		}
		return wantReferenceMissing(p.Status.Conditions, msg)
	})
	cm.BinaryData = map[string][]byte{"bundle.pem": []byte("pem")}
	if err := k8s.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pair recovers", func() error {
		p, err := getPair(ctx, ns, pair.Name)
		if err != nil {
			return err
		}
		if c := cond(p.Status.Conditions, v1.ConditionStalled); c.Type != "" {
			return fmt.Errorf("Stalled still %s/%s %q", c.Status, c.Reason, c.Message)
		}
		return nil
	})
}

// TestCacheHoldsKeysNotValues: the manager's cache has the keys of Secrets and of
// foreign ConfigMaps (what the reference check needs) but none of their values, and
// keeps its own report ConfigMaps whole.
func TestCacheHoldsKeysNotValues(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s", Annotations: map[string]string{
			lastApplied: `{"stringData":{"password":"hunter2"}}`, "keep": "me"}},
		StringData: map[string]string{"password": "hunter2"},
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "c"}, Data: map[string]string{"ca.crt": "pem"}}
	own := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "own", Labels: map[string]string{operator.LabelManagedBy: operator.ManagerName}},
		Data:       map[string]string{operator.ReportKey: "{}"},
	}
	for _, o := range []client.Object{sec, cm, own} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "cached secret", func() error {
		var got corev1.Secret
		if err := mgrClient.Get(ctx, client.ObjectKeyFromObject(sec), &got); err != nil {
			return err
		}
		v, ok := got.Data["password"]
		if !ok || len(v) != 0 {
			return fmt.Errorf("data[password] = %q (present %v), want the key without its value", v, ok)
		}
		if _, ok := got.Annotations[lastApplied]; ok || got.Annotations["keep"] != "me" {
			return fmt.Errorf("annotations %v", got.Annotations)
		}
		if got.ManagedFields != nil {
			return fmt.Errorf("managed fields kept")
		}
		return nil
	})
	eventually(t, "cached configmaps", func() error {
		var got, gotOwn corev1.ConfigMap
		if err := mgrClient.Get(ctx, client.ObjectKeyFromObject(cm), &got); err != nil {
			return err
		}
		if v, ok := got.Data["ca.crt"]; !ok || v != "" {
			return fmt.Errorf("foreign data[ca.crt] = %q (present %v), want the key without its value", v, ok)
		}
		if err := mgrClient.Get(ctx, client.ObjectKeyFromObject(own), &gotOwn); err != nil {
			return err
		}
		if gotOwn.Data[operator.ReportKey] != "{}" {
			return fmt.Errorf("own data = %v, want it whole", gotOwn.Data)
		}
		return nil
	})
}
