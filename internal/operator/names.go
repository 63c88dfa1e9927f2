// Package operator holds the pure functions of the manager: it turns ReplicationPair and
// UserResync objects into the Deployments, Jobs and RBAC objects that run the replicator,
// and folds replicator reports into status. Nothing here talks to the API server, so all
// of it is unit-tested without a cluster; controllers/ only adapts objects to it.
package operator

// Names of the objects derived from a pair or a resync. The CRDs cap metadata.name (48
// characters for pairs, 52 for resyncs) so every derived name stays a valid DNS label.

// ReportConfigMapName is the ConfigMap a replicator publishes its report to:
// "<pair>-report" for a pair's Deployment, "<resync>-report" for a resync's Job.
func ReportConfigMapName(owner string) string { return owner + "-report" }

// ReplicatorName names a pair's Deployment, ServiceAccount, Role and RoleBinding, and a
// resync's ServiceAccount, Role and RoleBinding.
func ReplicatorName(owner string) string { return owner + "-replicator" }

// JobName names a resync's Job: the resync's own name.
func JobName(resync string) string { return resync }

// Labels and annotations the operator puts on what it creates.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelComponent = "app.kubernetes.io/component"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelPair      = "replication.cyrusrepl.io/pair"
	LabelResync    = "replication.cyrusrepl.io/resync"

	// AnnotationSpecHash on the pod template rolls the Deployment when the pair's spec
	// changes in a way the rest of the template would not show (e.g. a Secret key rename
	// is visible, but the hash makes every spec edit a rollout, by design).
	AnnotationSpecHash = "replication.cyrusrepl.io/spec-hash"

	ManagerName   = "cyrusrepl-operator"
	ReplicatorApp = "cyrusrepl-replicator"

	// ReportKey is the ConfigMap data key holding the report.Summary JSON.
	ReportKey = "report.json"
)

func pairLabels(pair string) map[string]string {
	return map[string]string{
		LabelName:      ReplicatorApp,
		LabelInstance:  pair,
		LabelComponent: "replicator",
		LabelManagedBy: ManagerName,
		LabelPair:      pair,
	}
}

func resyncLabels(pair, resync string) map[string]string {
	return map[string]string{
		LabelName:      ReplicatorApp,
		LabelInstance:  resync,
		LabelComponent: "resync",
		LabelManagedBy: ManagerName,
		LabelPair:      pair,
		LabelResync:    resync,
	}
}

// selectorLabels are the immutable Deployment selector: a subset of pairLabels.
func selectorLabels(pair string) map[string]string {
	return map[string]string{LabelName: ReplicatorApp, LabelPair: pair}
}
