package operator

import (
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Owner is what the replicator RBAC and report ConfigMap belong to: a pair or a resync.
type Owner struct {
	Obj    metav1.Object
	Kind   string            // "ReplicationPair" or "UserResync"
	Labels map[string]string // labels for the owned objects
}

// PairOwner and ResyncOwner describe the two kinds of owner.
func PairOwner(obj metav1.Object) Owner {
	return Owner{Obj: obj, Kind: "ReplicationPair", Labels: pairLabels(obj.GetName())}
}

// ResyncOwner describes a resync of the named pair.
func ResyncOwner(obj metav1.Object, pair string) Owner {
	return Owner{Obj: obj, Kind: "UserResync", Labels: resyncLabels(pair, obj.GetName())}
}

func (o Owner) meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:            name,
		Namespace:       o.Obj.GetNamespace(),
		Labels:          copyMap(o.Labels),
		OwnerReferences: []metav1.OwnerReference{ownerRef(o.Obj, o.Kind)},
	}
}

// ServiceAccount is the replicator's identity.
func ServiceAccount(o Owner) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: o.meta(ReplicatorName(o.Obj.GetName())),
	}
}

// Role lets the replicator write its own report ConfigMap and nothing else: get, update
// and patch restricted by resourceNames, plus create (which RBAC cannot restrict by name)
// so it can recreate the ConfigMap should someone delete it.
func Role(o Owner) *rbacv1.Role {
	return &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: o.meta(ReplicatorName(o.Obj.GetName())),
		Rules: []rbacv1.PolicyRule{
			{
				APIGroups:     []string{""},
				Resources:     []string{"configmaps"},
				ResourceNames: []string{ReportConfigMapName(o.Obj.GetName())},
				Verbs:         []string{"get", "update", "patch"},
			},
			{
				APIGroups: []string{""},
				Resources: []string{"configmaps"},
				Verbs:     []string{"create"},
			},
		},
	}
}

// RoleBinding binds Role to ServiceAccount.
func RoleBinding(o Owner) *rbacv1.RoleBinding {
	name := ReplicatorName(o.Obj.GetName())
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: o.meta(name),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{
			Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: o.Obj.GetNamespace(),
		}},
	}
}

// ReportConfigMap is the empty report ConfigMap the manager creates up front so that it
// is owned (garbage-collected with its owner). Its data is written by the replicator
// alone; the manager never sets data on it.
func ReportConfigMap(o Owner) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: o.meta(ReportConfigMapName(o.Obj.GetName())),
	}
}
