// Package controllers holds the two thin reconcilers of the manager. Everything that
// can be a pure function (building Deployments, Jobs and RBAC; folding reports into
// status) lives in internal/operator; the reconcilers read, apply and patch.
//
// ReplicationPair → ServiceAccount, Role, RoleBinding and report ConfigMap
// "<pair>-report" (all owned by the pair), and a Deployment "<pair>-replicator" of one
// replica (zero when suspended) with the Recreate strategy, running
//
//	replicator rolling --sync-log DIR   (spec.syncLog set)
//	replicator rolling                  (spec.master.agent set: the log comes through --agent)
//	replicator audit --interval D       (neither)
//
// followed by the common flags --master HOST:PORT --master-user U
// --master-password-file F --master-tls starttls|tls|none [--master-ca-file F],
// [--agent URL --agent-token-file F [--agent-ca-file F]], the same for
// --replica*, [--master-config PATH], --workers N, --replica-only-policy keep|fail,
// --report-configmap NAME, --pair NAME, and --metrics-addr :9090.
//
// UserResync → the same RBAC and report ConfigMap "<resync>-report" (owned by the
// resync) and a Job "<resync>" running "replicator sync|verify --user U ..." with the
// pair's common flags (no --metrics-addr). One resync per pair runs at a time, oldest
// first; the Job is deleted once its result is in status, or as soon as its pod cannot
// start (PodCannotStart: from the pods' status and the Job controller's FailedCreate
// Events), which frees the pair's turn. A finished resync is deleted after
// spec.ttlSecondsAfterFinished (verify.go: a pair's spec.verify creates verify resyncs
// on a schedule and on the verifyRequestedAt annotation).
//
// Results flow back through the report ConfigMap (see internal/operator/fold.go for the
// contract and why a ConfigMap); the manager is the only writer of status.
//
// Both reconcilers check the Secrets and ConfigMaps the pods mount (references.go): a
// missing object or key is Stalled/ReferenceMissing with one Warning Event; a pair keeps
// its Deployment, a resync waits before creating its Job. Secret and ConfigMap events
// reach the pairs (and their resyncs) that reference them through a field index; any
// write to one a pair mounts changes the revision on its pod template, which rolls the
// replicator so that a rotated password or CA reaches it.
//
// Report records become Event summaries (events.go): per fold, one Normal for what the
// replicator resolved and one Warning for what needs a person, each at most once a
// minute per object.
package controllers
