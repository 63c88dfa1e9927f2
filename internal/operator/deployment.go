package operator

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"path"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
)

// Replicator modes a pair's Deployment runs.
const (
	ModeRolling = "rolling"
	ModeAudit   = "audit"
)

// PairMode is rolling when the pair has a sync log, mounted or served by the master's
// agent; audit otherwise.
func PairMode(pair *v1.ReplicationPair) string {
	if pair.Spec.SyncLog != nil || pair.Spec.Master.Agent != nil {
		return ModeRolling
	}
	return ModeAudit
}

// SpecHash is a short hash of the pair's spec without suspend (suspending scales, it
// does not roll) and without verify (scheduled verifies run as Jobs of their own).
func SpecHash(pair *v1.ReplicationPair) string {
	s := pair.Spec.DeepCopy()
	s.Suspend = false
	s.Verify = nil
	b, _ := json.Marshal(s) // a plain struct: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// PairArgs are the replicator's command line for a pair's Deployment.
func PairArgs(pair *v1.ReplicationPair) []string {
	args, _ := pairParts(pair, false)
	return args
}

func pairParts(pair *v1.ReplicationPair, hostNetwork bool) ([]string, *podParts) {
	p := commonParts(pair, ReportConfigMapName(pair.Name))
	mode := PairMode(pair)
	args := []string{mode}
	switch mode {
	case ModeRolling:
		// With an agent (commonParts passed --agent) the log is read through it.
		if sl := pair.Spec.SyncLog; sl != nil {
			p.add(corev1.Volume{Name: volSyncLog, VolumeSource: volumeSource(sl.Volume)},
				corev1.VolumeMount{Name: volSyncLog, MountPath: syncLogMount})
			args = append(args, "--sync-log", path.Join(syncLogMount, sl.Path))
		}
		// A new pair, or one whose replica is empty, is seeded before the log is
		// followed; the master's users are listed as an audit lists them.
		args = append(args, "--seed", "auto")
		args = append(args, MasterUsersArgs(pair)...)
	case ModeAudit:
		iv := v1.DefaultAuditInterval
		if pair.Spec.AuditInterval != nil {
			iv = pair.Spec.AuditInterval.Duration.String()
		}
		args = append(args, "--interval", iv)
		args = append(args, MasterUsersArgs(pair)...)
	}
	args = append(args, p.args...)
	args = append(args, "--metrics-addr", metricsFlag(hostNetwork))
	return args, p
}

// MasterUsersArgs are the flags that say where the master's users are listed (for an
// audit, or for seeding): --master-imap when the pair has master.imapPort and neither
// masterConfig nor an agent (whose mailboxes.db, mounted or served, is used otherwise).
// Shared by the pair's Deployment and the Audit resync Job.
func MasterUsersArgs(pair *v1.ReplicationPair) []string {
	if m := pair.Spec.Master; m.IMAPPort > 0 && pair.Spec.MasterConfig == nil && m.Agent == nil {
		return []string{"--master-imap", net.JoinHostPort(m.Host, strconv.Itoa(int(m.IMAPPort)))}
	}
	return nil
}

// HasMasterUsers says whether the pair tells where to list the master's users, which an
// audit needs.
func HasMasterUsers(pair *v1.ReplicationPair) bool {
	return pair.Spec.MasterConfig != nil || pair.Spec.Master.Agent != nil || pair.Spec.Master.IMAPPort > 0
}

// Deployment builds the pair's replicator Deployment: one replica (zero when suspended),
// Recreate so that two replicators never consume the same sync log at once.
func Deployment(pair *v1.ReplicationPair, o PodOptions) *appsv1.Deployment {
	args, parts := pairParts(pair, o.HostNetwork)
	replicas := int32(1)
	if pair.Spec.Suspend {
		replicas = 0
	}
	labels := pairLabels(pair.Name)
	ports := []corev1.ContainerPort{{Name: "metrics", ContainerPort: MetricsPort, Protocol: corev1.ProtocolTCP}}
	spec := podSpec(pair, o, ReplicatorName(pair.Name), args, parts, ports)
	podProbes(&spec.Containers[0], o.HostNetwork)
	return &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            ReplicatorName(pair.Name),
			Namespace:       pair.Namespace,
			Labels:          labels,
			OwnerReferences: []metav1.OwnerReference{ownerRef(pair, "ReplicationPair")},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas:             ptr.To(replicas),
			Selector:             &metav1.LabelSelector{MatchLabels: selectorLabels(pair.Name)},
			Strategy:             appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			RevisionHistoryLimit: ptr.To[int32](3),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: podMeta(pair, o, labels, map[string]string{AnnotationSpecHash: SpecHash(pair)}),
				Spec:       spec,
			},
		},
	}
}

// ownerRef makes obj the controller of what it is put on.
func ownerRef(obj metav1.Object, kind string) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion:         v1.GroupVersion.String(),
		Kind:               kind,
		Name:               obj.GetName(),
		UID:                obj.GetUID(),
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}
}
