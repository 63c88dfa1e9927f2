package operator

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
)

func tlsPair() *v1.ReplicationPair {
	p := pair()
	p.Spec.Master.TLS = &v1.TLSConfig{Mode: v1.TLSModeStartTLS, CASecretRef: &v1.SecretKeyRef{Name: "ca", Key: "ca.crt"}}
	p.Spec.Replica.TLS = &v1.TLSConfig{Mode: v1.TLSModeTLS, CAConfigMapRef: &v1.ConfigMapKeyRef{Name: "bundle", Key: "ca.pem"}}
	return p
}

// TestPairReferences: every Secret and ConfigMap the Deployment and a Job mount is a
// reference, named by the spec field that asks for it.
func TestPairReferences(t *testing.T) {
	p := tlsPair()
	want := []Reference{
		{KindSecret, "s", "mp", "spec.master.passwordSecretRef"},
		{KindSecret, "ca", "ca.crt", "spec.master.tls.caSecretRef"},
		{KindSecret, "s", "rp", "spec.replica.passwordSecretRef"},
		{KindConfigMap, "bundle", "ca.pem", "spec.replica.tls.caConfigMapRef"},
	}
	if got := PairReferences(p); !reflect.DeepEqual(got, want) {
		t.Fatalf("PairReferences\n got %+v\nwant %+v", got, want)
	}
	dep := Deployment(p, PodOptions{Image: "i"})
	if got := PodReferences(&dep.Spec.Template.Spec); !reflect.DeepEqual(got, want) {
		t.Fatalf("Deployment references\n got %+v\nwant %+v", got, want)
	}
	rs := &v1.UserResync{ObjectMeta: metav1.ObjectMeta{Namespace: "mail", Name: "r"}, Spec: v1.UserResyncSpec{PairName: "p", Users: []string{"a"}, Mode: v1.ResyncSync}}
	job := Job(rs, p, PodOptions{Image: "i"})
	if got := PodReferences(&job.Spec.Template.Spec); !reflect.DeepEqual(got, want) {
		t.Fatalf("Job references\n got %+v\nwant %+v", got, want)
	}
	if got := PairReferenceIndex(p); !slices.Equal(got, []string{"Secret/s", "Secret/ca", "ConfigMap/bundle"}) {
		t.Fatalf("index %q", got)
	}
	// A volume the builders do not make is still checked, named by its volume; an
	// optional one is not (the kubelet starts the pod without it).
	opt := true
	other := PodReferences(&corev1.PodSpec{Volumes: []corev1.Volume{
		{Name: "extra", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "x"}}},
		{Name: "opt", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "y"}, Optional: &opt}}},
	}})
	if !reflect.DeepEqual(other, []Reference{{KindSecret, "x", "", "volume extra"}}) {
		t.Fatalf("other volumes %+v", other)
	}
}

func TestMissingReferences(t *testing.T) {
	refs := PairReferences(tlsPair())
	all := ObjectKeys{"Secret/s": {"mp": true, "rp": true}, "Secret/ca": {"ca.crt": true}, "ConfigMap/bundle": {"ca.pem": true}}
	cases := []struct {
		name  string
		found ObjectKeys
		want  []string
	}{
		{"all there", all, nil},
		{"nothing there", ObjectKeys{}, []string{
			`Secret "s" not found (spec.master.passwordSecretRef, spec.replica.passwordSecretRef)`,
			`Secret "ca" not found (spec.master.tls.caSecretRef)`,
			`ConfigMap "bundle" not found (spec.replica.tls.caConfigMapRef)`,
		}},
		{"a key missing", ObjectKeys{"Secret/s": {"mp": true}, "Secret/ca": {"ca.crt": true}, "ConfigMap/bundle": {"ca.pem": true}}, []string{
			`Secret "s" has no key "rp" (spec.replica.passwordSecretRef)`,
		}},
		{"empty secret", ObjectKeys{"Secret/s": {}, "Secret/ca": {"ca.crt": true}, "ConfigMap/bundle": {}}, []string{
			`Secret "s" has no key "mp" (spec.master.passwordSecretRef)`,
			`Secret "s" has no key "rp" (spec.replica.passwordSecretRef)`,
			`ConfigMap "bundle" has no key "ca.pem" (spec.replica.tls.caConfigMapRef)`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := MissingReferences(refs, tc.found); !slices.Equal(got, tc.want) {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
	// The same key asked for twice is one sentence.
	p := pair()
	p.Spec.Replica.PasswordSecretRef = p.Spec.Master.PasswordSecretRef
	got := MissingReferences(PairReferences(p), ObjectKeys{"Secret/s": {}})
	if !slices.Equal(got, []string{`Secret "s" has no key "mp" (spec.master.passwordSecretRef, spec.replica.passwordSecretRef)`}) {
		t.Fatalf("shared key: %q", got)
	}
}

func TestKeysOfObjects(t *testing.T) {
	s := SecretKeys(&corev1.Secret{Data: map[string][]byte{"a": nil}})
	c := ConfigMapKeys(&corev1.ConfigMap{Data: map[string]string{"b": ""}, BinaryData: map[string][]byte{"c": nil}})
	if !reflect.DeepEqual(s, map[string]bool{"a": true}) || !reflect.DeepEqual(c, map[string]bool{"b": true, "c": true}) {
		t.Fatalf("secret keys %v, configmap keys %v", s, c)
	}
}

func TestPairStatusReferenceMissing(t *testing.T) {
	missing := []string{`Secret "s" not found (spec.master.passwordSecretRef)`}
	for _, tc := range []struct {
		name    string
		suspend bool
		obs     PairObservation
		want    map[string]string
	}{
		{"no deployment yet", false, PairObservation{MissingReferences: missing}, map[string]string{
			"Ready": "False/ReferenceMissing", "Stalled": "True/ReferenceMissing", "Reconciling": "-"}},
		{"running pod, secret gone since", false, PairObservation{Deployment: available(), MissingReferences: missing}, map[string]string{
			"Ready": "False/ReferenceMissing", "Stalled": "True/ReferenceMissing", "Reconciling": "-"}},
		{"suspended", true, PairObservation{MissingReferences: missing}, map[string]string{
			"Ready": "True/Suspended", "Stalled": "-", "Reconciling": "-"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pair()
			p.Spec.Suspend = tc.suspend
			st := PairStatus(p, tc.obs)
			for typ, want := range tc.want {
				c := apimeta.FindStatusCondition(st.Conditions, typ)
				got := "-"
				if c != nil {
					got = string(c.Status) + "/" + c.Reason
					if c.Reason == v1.ReasonReferenceMissing && c.Message != missing[0] {
						t.Errorf("%s message %q", typ, c.Message)
					}
				}
				if got != want {
					t.Errorf("%s = %s, want %s", typ, got, want)
				}
			}
			// Same observation again: identical status, conditions in the same order.
			p.Status = st
			if again := PairStatus(p, tc.obs); !reflect.DeepEqual(again, st) {
				t.Errorf("status not stable:\n%+v\n%+v", st.Conditions, again.Conditions)
			}
		})
	}
	// The message is bounded whatever the number of references.
	long := make([]string, 50)
	for i := range long {
		long[i] = `Secret "` + strings.Repeat("x", 200) + `" not found (spec.master.passwordSecretRef)`
	}
	if m := ReferenceMessage(long); len(m) > maxError {
		t.Fatalf("message of %d bytes", len(m))
	}
}

func TestNewStall(t *testing.T) {
	stalled := func(reason, msg string) []metav1.Condition {
		return []metav1.Condition{{Type: v1.ConditionStalled, Status: metav1.ConditionTrue, Reason: reason, Message: msg}}
	}
	r := v1.ReasonReferenceMissing
	for _, tc := range []struct {
		name          string
		before, after []metav1.Condition
		want          bool
	}{
		{"appears", nil, stalled(r, "a"), true},
		{"unchanged", stalled(r, "a"), stalled(r, "a"), false},
		{"message changes", stalled(r, "a"), stalled(r, "b"), true},
		{"from another stall", stalled(v1.ReasonRolloutStalled, "a"), stalled(r, "a"), true},
		{"another reason", nil, stalled(v1.ReasonRolloutStalled, "a"), false},
		{"goes away", stalled(r, "a"), nil, false},
	} {
		if got := NewStall(tc.before, tc.after, r) != nil; got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSetResyncStalled(t *testing.T) {
	rs := &v1.UserResync{ObjectMeta: metav1.ObjectMeta{Generation: 1}}
	SetResyncPhase(rs, v1.ResyncPending, v1.ReasonWaitingForTurn, "queued")
	SetResyncStalled(rs, v1.ResyncPending, v1.ReasonReferenceMissing, "m")
	if rs.Status.Phase != v1.ResyncPending || !apimeta.IsStatusConditionTrue(rs.Status.Conditions, v1.ConditionStalled) ||
		!apimeta.IsStatusConditionFalse(rs.Status.Conditions, v1.ConditionReady) ||
		apimeta.FindStatusCondition(rs.Status.Conditions, v1.ConditionReconciling) != nil {
		t.Fatalf("stalled pending: %s %+v", rs.Status.Phase, rs.Status.Conditions)
	}
	SetResyncPhase(rs, v1.ResyncRunning, v1.ReasonJobRunning, "running")
	if apimeta.FindStatusCondition(rs.Status.Conditions, v1.ConditionStalled) != nil ||
		!apimeta.IsStatusConditionTrue(rs.Status.Conditions, v1.ConditionReconciling) {
		t.Fatalf("running after stall: %+v", rs.Status.Conditions)
	}
}
