package controllers

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
)

// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch;create;patch

// ensureStateClaim creates the pair's state claim when it does not exist, and keeps its
// owner reference in line with spec.state.reclaimPolicy. Size and storage class are the
// claim's own once it exists (a claim's class cannot change; growing it is the storage
// class's business), so an existing claim is never resized or replaced.
func ensureStateClaim(ctx context.Context, c client.Client, pair *v1.ReplicationPair) error {
	want := operator.StateClaim(pair)
	var cur corev1.PersistentVolumeClaim
	err := c.Get(ctx, client.ObjectKeyFromObject(want), &cur)
	if apierrors.IsNotFound(err) {
		if err := c.Create(ctx, want); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create state claim %s: %w", want.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get state claim %s: %w", want.Name, err)
	}
	owned := slices.IndexFunc(cur.OwnerReferences, func(r metav1.OwnerReference) bool { return r.UID == pair.UID })
	if (owned >= 0) == operator.StateOwned(pair) {
		return nil
	}
	base := cur.DeepCopy()
	if owned >= 0 {
		cur.OwnerReferences = slices.Delete(cur.OwnerReferences, owned, owned+1)
	} else {
		cur.OwnerReferences = append(cur.OwnerReferences, want.OwnerReferences...)
	}
	if err := c.Patch(ctx, &cur, client.MergeFrom(base)); err != nil {
		return fmt.Errorf("set owner of state claim %s: %w", cur.Name, err)
	}
	return nil
}

// claimToPair maps a state claim to its pair (by label: a retained claim has no owner
// reference), so a deleted claim is created again.
func claimToPair(_ context.Context, o client.Object) []reconcile.Request {
	pair := o.GetLabels()[operator.LabelPair]
	if pair == "" || o.GetName() != operator.StateClaimName(pair) {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: pair}}}
}
