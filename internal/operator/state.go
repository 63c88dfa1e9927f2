package operator

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// StateClaimName names a pair's state claim.
func StateClaimName(pair string) string { return pair + "-state" }

// StateOwned reports whether the pair owns its state claim (reclaimPolicy Delete): only
// then does deleting the pair delete the claim.
func StateOwned(pair *v1.ReplicationPair) bool {
	return pair.Spec.State.ReclaimPolicy == v1.StateDelete
}

// StateClaim builds the pair's state claim as it is created: ReadWriteOnce, the spec's
// size (default 1Gi) and storage class. Size and class are not changed afterwards.
func StateClaim(pair *v1.ReplicationPair) *corev1.PersistentVolumeClaim {
	size := resource.MustParse(v1.DefaultStateSize)
	if s := pair.Spec.State.Size; s != nil {
		size = s.DeepCopy()
	}
	pvc := &corev1.PersistentVolumeClaim{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      StateClaimName(pair.Name),
			Namespace: pair.Namespace,
			Labels:    stateLabels(pair.Name),
		},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
			StorageClassName: pair.Spec.State.StorageClassName,
		},
	}
	if StateOwned(pair) {
		pvc.OwnerReferences = []metav1.OwnerReference{ownerRef(pair, "ReplicationPair")}
	}
	return pvc
}

func stateLabels(pair string) map[string]string {
	return map[string]string{
		LabelName:      ReplicatorApp,
		LabelInstance:  pair,
		LabelComponent: "state",
		LabelManagedBy: ManagerName,
		LabelPair:      pair,
	}
}

// stateVolume is the pair's state claim as a pod volume.
func stateVolume(pair string) corev1.VolumeSource {
	return corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: StateClaimName(pair)}}
}

// withPairAffinity adds to a resync pod's affinity that it runs on the node of the pair's
// replicator pod: the state claim is ReadWriteOnce, attached to one node at a time.
func withPairAffinity(a *corev1.Affinity, pair string) *corev1.Affinity {
	if a == nil {
		a = &corev1.Affinity{}
	}
	if a.PodAffinity == nil {
		a.PodAffinity = &corev1.PodAffinity{}
	}
	a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution = append(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution,
		corev1.PodAffinityTerm{
			LabelSelector: &metav1.LabelSelector{MatchLabels: selectorLabels(pair)},
			TopologyKey:   corev1.LabelHostname,
		})
	return a
}

// foldState derives status.state and the StateLost condition from the replicator's
// report: a new state id after another one means the earlier state was lost.
func foldState(prev *v1.StateStatus, rep *report.State) (*v1.StateStatus, metav1.ConditionStatus, string, string) {
	cur := &v1.StateStatus{ID: rep.ID, Created: metav1.NewTime(rep.Created)}
	switch {
	case prev != nil && prev.ID == rep.ID:
		cur.ReplacedID = prev.ReplacedID
	case prev != nil:
		cur.ReplacedID = prev.ID
	}
	since := rep.Created.UTC().Format("2006-01-02T15:04:05Z")
	switch {
	case cur.ReplacedID != "":
		return cur, metav1.ConditionTrue, v1.ReasonStateLost,
			"the replicator's state began empty at " + since + " (id " + rep.ID + "), replacing state " + cur.ReplacedID +
				": users parked for retry and the in-step marks were lost. Folders the master deleted whose mark is unknown are kept (decisions keep/no-mark) until a resync with deleteUnmarked"
	case rep.New:
		return cur, metav1.ConditionFalse, v1.ReasonStateNew, "the pair's first state, begun at " + since + " (id " + rep.ID + ")"
	default:
		return cur, metav1.ConditionFalse, v1.ReasonStateKept, "the replicator runs on the pair's state of " + since + " (id " + rep.ID + ")"
	}
}
