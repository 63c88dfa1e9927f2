package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cyrusrepl/cyrusrepl/internal/operator"
)

// RecorderName is the reportingController of the manager's Events.
const RecorderName = "cyrusrepl-operator"

// CacheOptions limits the manager's cache of owned kinds to the objects it created
// (label app.kubernetes.io/managed-by), so it does not hold every Job or Deployment of
// the cluster in memory. namespaces, when given, limit everything to them (the manager's
// --namespace; a namespaced install grants it nothing elsewhere).
//
// Secrets and ConfigMaps are cached whatever their labels, because the manager watches
// the ones a pair references (passwords, CA bundles) to say when one is missing; but
// only their keys are kept (see keysOnly): no Secret value ever sits in the manager's
// memory. The exception is the ConfigMaps the manager created (the report ConfigMaps),
// whose data it reads. Reading a Secret's value through the manager's client therefore
// gives empty values; nothing in the manager needs one.
//
// The manager creates every report ConfigMap itself (labelled, owned) before the
// replicator runs; should the replicator have to recreate one, it shows no report
// (values dropped) until the owner's next reconcile (triggered by the deletion)
// re-applies the labels and owner reference.
func CacheOptions(namespaces ...string) cache.Options {
	own := labels.SelectorFromSet(labels.Set{operator.LabelManagedBy: operator.ManagerName})
	o := cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Secret{}:         {Transform: keysOnly},
		&corev1.ConfigMap{}:      {Transform: keysOnly},
		&corev1.ServiceAccount{}: {Label: own},
		&appsv1.Deployment{}:     {Label: own},
		&batchv1.Job{}:           {Label: own},
		&corev1.Pod{}:            {Label: own},
		&rbacv1.Role{}:           {Label: own},
		&rbacv1.RoleBinding{}:    {Label: own},
		// State claims the manager created; a retained one keeps its labels.
		&corev1.PersistentVolumeClaim{}: {Label: own},
	}}
	for _, ns := range namespaces {
		if o.DefaultNamespaces == nil {
			o.DefaultNamespaces = map[string]cache.Config{}
		}
		o.DefaultNamespaces[ns] = cache.Config{}
	}
	return o
}

// lastApplied is the annotation `kubectl apply` leaves; on a Secret it holds the values.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// keysOnly is the cache transform of Secrets and ConfigMaps: it empties every value
// (keeping the keys, which is all a reference check needs) and drops what could carry
// values (the last-applied annotation) or only costs memory (managed fields). ConfigMaps
// the manager created are kept whole. Anything else passes unchanged.
func keysOnly(in any) (any, error) {
	switch o := in.(type) {
	case *corev1.Secret:
		for k := range o.Data {
			o.Data[k] = nil
		}
		o.StringData = nil
	case *corev1.ConfigMap:
		if o.Labels[operator.LabelManagedBy] == operator.ManagerName {
			return o, nil
		}
		for k := range o.Data {
			o.Data[k] = ""
		}
		for k := range o.BinaryData {
			o.BinaryData[k] = nil
		}
	default:
		return in, nil
	}
	o := in.(client.Object)
	if a := o.GetAnnotations(); a[lastApplied] != "" {
		delete(a, lastApplied)
		o.SetAnnotations(a)
	}
	if o.GetManagedFields() != nil {
		o.SetManagedFields(nil)
	}
	return o, nil
}

// Owner references with blockOwnerDeletion need update on the owner's finalizers.
// +kubebuilder:rbac:groups=replication.cyrusrepl.io,resources=replicationpairs/finalizers;userresyncs/finalizers,verbs=update

// Events on pairs and resyncs. (Leader election's Lease lives in the manager's own
// namespace: its Role is config/rbac/leader_election_role.yaml and the chart's
// leader-election Role, not these cluster-wide rules.)
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// Setup registers both reconcilers and the manager metrics.
func Setup(mgr ctrl.Manager, pod operator.PodOptions) error {
	rec := mgr.GetEventRecorder(RecorderName)
	if err := indexPairReferences(context.Background(), mgr); err != nil {
		return err
	}
	if err := (&ReplicationPairReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Pod: pod, Clock: clock.RealClock{},
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setup pair controller: %w", err)
	}
	if err := (&UserResyncReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: rec, Pod: pod,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setup resync controller: %w", err)
	}
	if err := RegisterMetrics(mgr.GetClient()); err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	return nil
}
