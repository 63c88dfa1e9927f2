package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultStateSize is the size of the state claim when spec.state.size is unset: the
// ledger takes a few hundred bytes per folder, so 1Gi holds millions of folders.
const DefaultStateSize = "1Gi"

// StateReclaimPolicy says what happens to a pair's state claim when the pair is deleted.
// +kubebuilder:validation:Enum=Retain;Delete
type StateReclaimPolicy string

const (
	// StateRetain keeps the claim when the pair is deleted (the default): the operator
	// manages it (creates it, labels it) but does not own it, so a pair recreated under
	// the same name finds its ledger and retry queue again.
	StateRetain StateReclaimPolicy = "Retain"
	// StateDelete makes the pair the claim's owner: deleting the pair deletes the claim.
	StateDelete StateReclaimPolicy = "Delete"
)

// StateSpec is the replicator's durable state: a PersistentVolumeClaim named
// "<pair>-state" that the operator creates in the pair's namespace and that the pair's
// replicator and its resyncs mount (ReadWriteOnce: a resync's pod runs on the node of
// the pair's replicator pod). It holds the ledger of folders seen on the master with
// their in-step marks, the retry queue and the per-user writer locks.
type StateSpec struct {
	// size is the claim's storage request, used when the claim is created. Defaults to
	// 1Gi. To grow an existing claim, edit the claim (if its storage class allows
	// expansion).
	// +optional
	Size *resource.Quantity `json:"size,omitempty"`

	// storageClassName is the claim's storage class, used when the claim is created;
	// unset uses the cluster's default class.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	StorageClassName *string `json:"storageClassName,omitempty"`

	// reclaimPolicy is what happens to the claim when the pair is deleted: Retain (the
	// default) keeps it, Delete deletes it with the pair.
	// +optional
	ReclaimPolicy StateReclaimPolicy `json:"reclaimPolicy,omitempty"`
}

// StateStatus identifies the replicator state the pair runs on, as its replicator
// reports it (see the StateLost condition).
type StateStatus struct {
	// id is the state directory's identity, written once when the replicator found the
	// directory empty.
	// +required
	// +kubebuilder:validation:MaxLength=64
	ID string `json:"id"`
	// created is when that state began.
	// +required
	Created metav1.Time `json:"created"`
	// replacedID is the id of the state this one replaced: the earlier state was lost
	// (a deleted claim, a replaced volume). Empty when this is the pair's first state.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	ReplacedID string `json:"replacedID,omitempty"`
}
