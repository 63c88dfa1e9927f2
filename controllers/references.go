package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
)

// The replicator pods mount the password and CA keys the pair names; the manager reads
// those Secrets and ConfigMaps (keys only, see CacheOptions) to say when one is missing,
// and watches them so a pair or resync recovers by itself once it appears.
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch

// pairRefField indexes ReplicationPairs by the Secrets and ConfigMaps they reference
// (operator.ReferenceIndexKey values).
const pairRefField = ".spec.references"

// indexPairReferences registers pairRefField; both reconcilers map Secret and ConfigMap
// events through it, so Setup registers it once before either.
func indexPairReferences(ctx context.Context, mgr ctrl.Manager) error {
	err := mgr.GetFieldIndexer().IndexField(ctx, &v1.ReplicationPair{}, pairRefField, func(o client.Object) []string {
		return operator.PairReferenceIndex(o.(*v1.ReplicationPair))
	})
	if err != nil {
		return fmt.Errorf("index pairs by referenced objects: %w", err)
	}
	return nil
}

// pairsReferencing lists the pairs of the object's namespace that mount it.
func pairsReferencing(ctx context.Context, c client.Reader, kind string, o client.Object) ([]v1.ReplicationPair, error) {
	var list v1.ReplicationPairList
	if err := c.List(ctx, &list, client.InNamespace(o.GetNamespace()),
		client.MatchingFields{pairRefField: operator.ReferenceIndexKey(kind, o.GetName())}); err != nil {
		return nil, fmt.Errorf("list pairs referencing %s %s/%s: %w", kind, o.GetNamespace(), o.GetName(), err)
	}
	return list.Items, nil
}

// referenceKind names the kind of a watched Secret or ConfigMap.
func referenceKind(o client.Object) string {
	if _, ok := o.(*corev1.ConfigMap); ok {
		return operator.KindConfigMap
	}
	return operator.KindSecret
}

// missingReferences reads, through the cache, every Secret and ConfigMap of refs in
// namespace ns, and says which objects or keys are missing (nil when none).
func missingReferences(ctx context.Context, c client.Reader, ns string, refs []operator.Reference) ([]string, error) {
	found, _, err := readReferences(ctx, c, ns, refs)
	if err != nil {
		return nil, err
	}
	return operator.MissingReferences(refs, found), nil
}

// readReferences reads, through the cache, every Secret and ConfigMap of refs in
// namespace ns: the keys of each one found, and its revision, by
// operator.ReferenceIndexKey.
func readReferences(ctx context.Context, c client.Reader, ns string, refs []operator.Reference) (operator.ObjectKeys, map[string]operator.ObjectRevision, error) {
	found := operator.ObjectKeys{}
	revs := map[string]operator.ObjectRevision{}
	for _, r := range refs {
		k := operator.ReferenceIndexKey(r.Kind, r.Name)
		if _, done := found[k]; done {
			continue
		}
		key := types.NamespacedName{Namespace: ns, Name: r.Name}
		var obj client.Object
		var err error
		switch r.Kind {
		case operator.KindSecret:
			var s corev1.Secret
			if err = c.Get(ctx, key, &s); err == nil {
				found[k], obj = operator.SecretKeys(&s), &s
			}
		case operator.KindConfigMap:
			var cm corev1.ConfigMap
			if err = c.Get(ctx, key, &cm); err == nil {
				found[k], obj = operator.ConfigMapKeys(&cm), &cm
			}
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, nil, fmt.Errorf("get %s %s: %w", r.Kind, key, err)
		}
		if obj != nil {
			revs[k] = operator.ObjectRevision{Kind: r.Kind, Name: r.Name, UID: string(obj.GetUID()), ResourceVersion: obj.GetResourceVersion()}
		}
	}
	return found, revs, nil
}

// referencesRevision is the revision of the objects refs names (see
// operator.ReferencesRevision), or ok false when the replicator must not roll now: an
// object does not exist, or lacks a key the pod mounts, so a new pod could not start
// while the running one works. An object the cache does not hold (yet: a pair applied
// together with its Secrets) is looked up on the API server, metadata only (no value
// is read), so such a pair gets its revision at once rather than rolling a moment later.
func referencesRevision(ctx context.Context, api client.Reader, ns string, refs []operator.Reference, found operator.ObjectKeys, revs map[string]operator.ObjectRevision) (rev string, ok bool, err error) {
	for _, r := range refs {
		k := operator.ReferenceIndexKey(r.Kind, r.Name)
		if keys, cached := found[k]; cached {
			if r.Key != "" && !keys[r.Key] {
				return "", false, nil
			}
			continue
		}
		if _, looked := revs[k]; looked {
			continue
		}
		m := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: r.Kind}}
		if err := api.Get(ctx, types.NamespacedName{Namespace: ns, Name: r.Name}, m); err != nil {
			if apierrors.IsNotFound(err) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("get %s %s/%s metadata: %w", r.Kind, ns, r.Name, err)
		}
		revs[k] = operator.ObjectRevision{Kind: r.Kind, Name: r.Name, UID: string(m.UID), ResourceVersion: m.ResourceVersion}
	}
	all := make([]operator.ObjectRevision, 0, len(revs))
	for _, o := range revs {
		all = append(all, o)
	}
	return operator.ReferencesRevision(all), true, nil
}

// referenceChanged lets through the Secret and ConfigMap events that can change whether
// a reference is satisfied: creation, deletion, and an update that changes the set of
// keys. (Resyncs need no more: a Job reads the values when its pod starts.)
var referenceChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return !sameKeys(objectKeys(e.ObjectOld), objectKeys(e.ObjectNew))
	},
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// referenceWritten lets through every write of a Secret or ConfigMap: a pair rolls its
// replicator when a mounted one changes (see operator.ReferencesRevision). The map
// function keeps only the objects a pair mounts.
var referenceWritten = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetResourceVersion() != e.ObjectNew.GetResourceVersion()
	},
	GenericFunc: func(event.GenericEvent) bool { return false },
}

func objectKeys(o client.Object) map[string]bool {
	switch t := o.(type) {
	case *corev1.Secret:
		return operator.SecretKeys(t)
	case *corev1.ConfigMap:
		return operator.ConfigMapKeys(t)
	}
	return nil
}

func sameKeys(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}
