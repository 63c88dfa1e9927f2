package kube

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// Unit tests of the publish logic against client-go's fake clientset; the same sink runs
// against a real API server, as the replicator's ServiceAccount, in controllers/.
func writes(cs *fake.Clientset) (n int) {
	for _, a := range cs.Actions() {
		switch a.GetVerb() {
		case "create", "update", "patch":
			n++
		}
	}
	return n
}

func TestPublishCreateSkipPatch(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	sink := NewConfigMapSink(cs, "ns", "mail-report")
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	s := &report.Summary{Mode: "rolling", Pair: "mail", Started: t0, Updated: t0, UsersTotal: 3}

	if err := sink.Publish(ctx, s); err != nil {
		t.Fatal(err)
	}
	cm, err := cs.CoreV1().ConfigMaps("ns").Get(ctx, "mail-report", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got report.Summary
	if err := json.Unmarshal([]byte(cm.Data[DataKey]), &got); err != nil {
		t.Fatal(err)
	}
	if got.Kind != report.SummaryKind || got.UsersTotal != 3 {
		t.Fatalf("stored %+v", got)
	}
	if s.Kind != "" {
		t.Fatalf("Publish modified the caller's summary")
	}
	if n := writes(cs); n != 1 {
		t.Fatalf("%d writes after first publish, want 1", n)
	}

	// Only Updated moved: no write.
	s2 := *s
	s2.Updated = t0.Add(time.Minute)
	if err := sink.Publish(ctx, &s2); err != nil {
		t.Fatal(err)
	}
	if n := writes(cs); n != 1 {
		t.Fatalf("%d writes after an unchanged publish, want 1", n)
	}

	// Content changed: one patch.
	s2.UsersTotal = 4
	if err := sink.Publish(ctx, &s2); err != nil {
		t.Fatal(err)
	}
	if n := writes(cs); n != 2 {
		t.Fatalf("%d writes after a changed publish, want 2", n)
	}
	cm, _ = cs.CoreV1().ConfigMaps("ns").Get(ctx, "mail-report", metav1.GetOptions{})
	if err := json.Unmarshal([]byte(cm.Data[DataKey]), &got); err != nil || got.UsersTotal != 4 {
		t.Fatalf("after patch: %+v %v", got, err)
	}
}

func TestPublishKeepsManagerMetadata(t *testing.T) {
	ctx := context.Background()
	// The manager pre-creates the ConfigMap with labels and an owner; the sink must only
	// touch data.
	cs := fake.NewClientset(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Namespace: "ns", Name: "r1-report", Labels: map[string]string{"app.kubernetes.io/managed-by": "cyrusrepl-operator"},
	}})
	if err := NewConfigMapSink(cs, "ns", "r1-report").Publish(ctx, &report.Summary{Mode: "sync"}); err != nil {
		t.Fatal(err)
	}
	cm, _ := cs.CoreV1().ConfigMaps("ns").Get(ctx, "r1-report", metav1.GetOptions{})
	if cm.Labels["app.kubernetes.io/managed-by"] != "cyrusrepl-operator" || cm.Data[DataKey] == "" {
		t.Fatalf("configmap after publish: %+v", cm)
	}
}

func TestPublishErrors(t *testing.T) {
	sink := NewConfigMapSink(fake.NewClientset(), "ns", "x")
	if err := sink.Publish(context.Background(), nil); err == nil {
		t.Fatal("nil summary accepted")
	}
	t.Setenv(NamespaceEnv, "")
	if _, err := NewInClusterSink("x"); err == nil {
		t.Fatal("NewInClusterSink without POD_NAMESPACE succeeded")
	}
}
