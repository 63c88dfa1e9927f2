// Package v1alpha1 holds the API of the replication.cyrusrepl.io group: ReplicationPair
// (a master/replica pair kept in step by a long-running replicator) and UserResync (a
// one-shot sync or verify of named users of a pair).
//
// +kubebuilder:object:generate=true
// +groupName=replication.cyrusrepl.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "replication.cyrusrepl.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this API with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this API to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
