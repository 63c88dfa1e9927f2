package operator

import (
	corev1 "k8s.io/api/core/v1"
)

// NodeSettings are how replicator pods fit the cluster they run in; the manager sets
// them once at start-up from its own environment (the chart's hostNetwork and
// kubernetesService values), before any reconcile.
type NodeSettings struct {
	// HostNetwork puts replicator pods in the node's network namespace, like the
	// manager. Needed on clusters without a pod network (the project's local cluster).
	// The metrics listener then binds 127.0.0.1 only.
	HostNetwork bool
	// APIServerHost/Port, when set, are passed to replicator pods as
	// KUBERNETES_SERVICE_HOST/PORT: the report publisher's in-cluster client needs them
	// where there is no Service network.
	APIServerHost, APIServerPort string
}

// Node is the settings every Deployment and Job built here uses.
var Node NodeSettings

// apply adds the node settings to a replicator pod spec.
func (n NodeSettings) apply(spec *corev1.PodSpec) {
	if n.HostNetwork {
		spec.HostNetwork = true
		spec.DNSPolicy = corev1.DNSClusterFirstWithHostNet
	}
	c := &spec.Containers[0]
	if n.APIServerHost != "" {
		c.Env = append(c.Env, corev1.EnvVar{Name: "KUBERNETES_SERVICE_HOST", Value: n.APIServerHost})
	}
	if n.APIServerPort != "" {
		c.Env = append(c.Env, corev1.EnvVar{Name: "KUBERNETES_SERVICE_PORT", Value: n.APIServerPort})
	}
}
