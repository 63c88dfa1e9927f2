package operator

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
)

// Job limits. A resync is one-shot: it retries a crashed pod once, never a run that
// reported its result.
const (
	JobBackoffLimit = 1
	// JobActiveDeadline bounds a resync's run time; users are synced in parallel, so
	// even 1000 users fit with room to spare.
	JobActiveDeadline int64 = 6 * 60 * 60
	// JobTTLAfterFinished is a safety net: the manager deletes the Job as soon as it has
	// folded the result; the TTL collects it if the manager is down. The result survives
	// in the report ConfigMap, which the resync owns.
	JobTTLAfterFinished int32 = 60 * 60
)

// Exit codes of the replicator (cmd/replicator): 1 = users failed or differences found,
// 2 = bad flags / unreachable server / wrong credentials. Both are results, not crashes:
// retrying would only repeat them.
var resultExitCodes = []int32{1, 2}

// ResyncMode maps the API mode to the replicator command.
func ResyncMode(m v1.ResyncMode) string {
	switch m {
	case v1.ResyncVerify:
		return "verify"
	case v1.ResyncAudit:
		return ModeAudit
	}
	return "sync"
}

// ResyncArgs are the replicator's command line for a resync's Job.
func ResyncArgs(rs *v1.UserResync, pair *v1.ReplicationPair) []string {
	args, _ := resyncParts(rs, pair)
	return args
}

func resyncParts(rs *v1.UserResync, pair *v1.ReplicationPair) ([]string, *podParts) {
	p := commonParts(pair, ReportConfigMapName(rs.Name))
	args := []string{ResyncMode(rs.Spec.Mode)}
	if rs.Spec.Mode == v1.ResyncAudit {
		// No --interval: one walk over every master user, then exit with its result.
		args = append(args, MasterUsersArgs(pair)...)
	}
	for _, u := range rs.Spec.Users {
		args = append(args, "--user", u)
	}
	if rs.Spec.DeleteUnmarked {
		args = append(args, "--delete-unmarked")
	}
	return append(args, p.args...), p
}

// Job builds the resync's Job, owned by the UserResync.
func Job(rs *v1.UserResync, pair *v1.ReplicationPair, o PodOptions) *batchv1.Job {
	args, parts := resyncParts(rs, pair)
	labels := resyncLabels(pair.Name, rs.Name)
	spec := podSpec(pair, o, ReplicatorName(rs.Name), args, parts, nil)
	spec.RestartPolicy = corev1.RestartPolicyNever
	if !pair.Spec.Suspend {
		// The pair's replicator holds the state claim; a suspended pair runs no pod.
		spec.Affinity = withPairAffinity(spec.Affinity, pair.Name)
	}
	return &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            JobName(rs.Name),
			Namespace:       rs.Namespace,
			Labels:          labels,
			OwnerReferences: []metav1.OwnerReference{ownerRef(rs, "UserResync")},
		},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To[int32](JobBackoffLimit),
			ActiveDeadlineSeconds:   ptr.To(JobActiveDeadline),
			TTLSecondsAfterFinished: ptr.To(JobTTLAfterFinished),
			PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action: batchv1.PodFailurePolicyActionFailJob,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
					ContainerName: ptr.To("replicator"),
					Operator:      batchv1.PodFailurePolicyOnExitCodesOpIn,
					Values:        resultExitCodes,
				},
			}}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: podMeta(pair, o, labels, nil),
				Spec:       spec,
			},
		},
	}
}
