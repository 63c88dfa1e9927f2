package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FieldOwner is the manager's field manager for server-side apply.
const FieldOwner = "cyrusrepl-operator"

// apply server-side-applies the desired state of an owned object. Applying the same
// object twice is a no-op on the server (no write, no resourceVersion change), so the
// reconcilers can apply on every pass without diffing against server defaults.
func apply(ctx context.Context, c client.Client, obj client.Object) error {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return fmt.Errorf("convert %T: %w", obj, err)
	}
	delete(m, "status")
	stripNullTimestamps(m)
	u := &unstructured.Unstructured{Object: m}
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return nil
}

// stripNullTimestamps removes the "creationTimestamp: null" typed objects serialise,
// which would otherwise claim ownership of a field the server sets.
func stripNullTimestamps(v any) {
	switch t := v.(type) {
	case map[string]any:
		if ts, ok := t["creationTimestamp"]; ok && ts == nil {
			delete(t, "creationTimestamp")
		}
		for _, c := range t {
			stripNullTimestamps(c)
		}
	case []any:
		for _, c := range t {
			stripNullTimestamps(c)
		}
	}
}
