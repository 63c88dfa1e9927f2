// Package kube publishes replicator reports to a Kubernetes ConfigMap.
//
// The replicator pod is the only writer of the ConfigMap's data; the manager is the only
// writer of the custom resources' status and folds the ConfigMap into it. The pod's Role
// allows get/update/patch of that one ConfigMap (by resourceNames) and create.
//
// Contract: namespace from POD_NAMESPACE (downward API), name from --report-configmap
// ("<pair>-report" or "<resync>-report"), data key "report.json" = report.Summary JSON.
package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// DataKey is the ConfigMap data key holding the summary.
const DataKey = "report.json"

// NamespaceEnv names the environment variable holding the pod's namespace.
const NamespaceEnv = "POD_NAMESPACE"

// fieldManager identifies the replicator's writes in managedFields.
const fieldManager = "cyrusrepl-replicator"

// requestTimeout bounds each API call when the caller's context has no deadline.
const requestTimeout = 15 * time.Second

// ConfigMapSink writes summaries to one ConfigMap.
type ConfigMapSink struct {
	client    kubernetes.Interface
	namespace string
	name      string
}

var _ report.Sink = (*ConfigMapSink)(nil)

// NewConfigMapSink returns a sink writing to namespace/name.
func NewConfigMapSink(client kubernetes.Interface, namespace, name string) report.Sink {
	return &ConfigMapSink{client: client, namespace: namespace, name: name}
}

// NewInClusterSink builds a sink from the pod's service account and POD_NAMESPACE.
func NewInClusterSink(name string) (report.Sink, error) {
	ns := os.Getenv(NamespaceEnv)
	if ns == "" {
		return nil, fmt.Errorf("report sink: %s is not set (downward API metadata.namespace)", NamespaceEnv)
	}
	if name == "" {
		return nil, errors.New("report sink: empty ConfigMap name")
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("report sink: in-cluster config: %w", err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("report sink: client: %w", err)
	}
	return NewConfigMapSink(c, ns, name), nil
}

// Publish writes s to the ConfigMap, creating it when missing. It skips the write when
// the stored summary equals s apart from the Updated timestamp, so an idle replicator
// that republishes causes no API write and no status churn downstream.
func (k *ConfigMapSink) Publish(ctx context.Context, s *report.Summary) error {
	if s == nil {
		return errors.New("report sink: nil summary")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, requestTimeout)
		defer cancel()
	}
	if s.Kind == "" {
		cp := *s
		cp.Kind = report.SummaryKind
		s = &cp
	}
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("report sink: encode: %w", err)
	}
	cms := k.client.CoreV1().ConfigMaps(k.namespace)
	cm, err := cms.Get(ctx, k.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = cms.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: k.name, Namespace: k.namespace},
			Data:       map[string]string{DataKey: string(data)},
		}, metav1.CreateOptions{FieldManager: fieldManager})
		if err == nil {
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("report sink: create configmap %s/%s: %w", k.namespace, k.name, err)
		}
		// Created meanwhile (by the manager): fall through to the patch.
	case err != nil:
		return fmt.Errorf("report sink: get configmap %s/%s: %w", k.namespace, k.name, err)
	default:
		if sameContent(cm.Data[DataKey], s) {
			return nil
		}
	}
	// A merge patch of the one data key: no read-modify-write race with the manager,
	// which only touches the ConfigMap's metadata (labels, owner reference).
	patch, err := json.Marshal(map[string]any{"data": map[string]string{DataKey: string(data)}})
	if err != nil {
		return fmt.Errorf("report sink: encode patch: %w", err)
	}
	if _, err := cms.Patch(ctx, k.name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: fieldManager}); err != nil {
		return fmt.Errorf("report sink: patch configmap %s/%s: %w", k.namespace, k.name, err)
	}
	return nil
}

// sameContent compares a stored summary with s, ignoring Updated.
func sameContent(stored string, s *report.Summary) bool {
	if stored == "" {
		return false
	}
	var old report.Summary
	if err := json.Unmarshal([]byte(stored), &old); err != nil {
		return false
	}
	a, b := old, *s
	a.Updated, b.Updated = time.Time{}, time.Time{}
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}
