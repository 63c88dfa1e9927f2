package operator

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
)

// Kinds of object a replicator pod mounts from the pair's namespace.
const (
	KindSecret    = "Secret"
	KindConfigMap = "ConfigMap"
)

// Reference is one key of a Secret or ConfigMap that the replicator pods of a pair (its
// Deployment and its resyncs' Jobs) mount. The kubelet will not start such a pod while
// the object or the key is missing, so the manager checks them and says which.
type Reference struct {
	Kind  string // KindSecret or KindConfigMap
	Name  string
	Key   string // empty when the whole object is mounted
	Field string // where the spec names it, e.g. "spec.master.passwordSecretRef"
}

// PairReferences lists what the pair's pods mount, in spec order. It reads the volumes
// the pod builders make, so it cannot drift from what the kubelet will look for.
func PairReferences(pair *v1.ReplicationPair) []Reference {
	return volumeReferences(commonParts(pair, "").volumes)
}

// PodReferences lists what an existing pod template mounts (a resync's Job keeps the
// volumes it was created with, whatever the pair says now).
func PodReferences(spec *corev1.PodSpec) []Reference {
	return volumeReferences(spec.Volumes)
}

// refFields maps the volumes podParts.endpoint and podParts.agent make back to the spec fields naming them.
var refFields = map[string]string{
	KindSecret + "/" + volMasterPassword:  "spec.master.passwordSecretRef",
	KindSecret + "/" + volReplicaPassword: "spec.replica.passwordSecretRef",
	KindSecret + "/" + volMasterCA:        "spec.master.tls.caSecretRef",
	KindSecret + "/" + volReplicaCA:       "spec.replica.tls.caSecretRef",
	KindConfigMap + "/" + volMasterCA:     "spec.master.tls.caConfigMapRef",
	KindConfigMap + "/" + volReplicaCA:    "spec.replica.tls.caConfigMapRef",
	KindSecret + "/" + volAgentToken:      "spec.master.agent.tokenSecretRef",
	KindSecret + "/" + volAgentCA:         "spec.master.agent.caSecretRef",
	KindConfigMap + "/" + volAgentCA:      "spec.master.agent.caConfigMapRef",
	KindSecret + "/" + volAgentClientCert: "spec.master.agent.clientCertSecretRef",
}

func volumeReferences(vols []corev1.Volume) []Reference {
	var refs []Reference
	add := func(kind, vol, name string, optional *bool, items []corev1.KeyToPath) {
		if optional != nil && *optional {
			return // the kubelet starts the pod without it
		}
		field := refFields[kind+"/"+vol]
		if field == "" {
			field = "volume " + vol
		}
		if len(items) == 0 {
			refs = append(refs, Reference{Kind: kind, Name: name, Field: field})
		}
		for _, it := range items {
			refs = append(refs, Reference{Kind: kind, Name: name, Key: it.Key, Field: field})
		}
	}
	for _, v := range vols {
		switch {
		case v.Secret != nil:
			add(KindSecret, v.Name, v.Secret.SecretName, v.Secret.Optional, v.Secret.Items)
		case v.ConfigMap != nil:
			add(KindConfigMap, v.Name, v.ConfigMap.Name, v.ConfigMap.Optional, v.ConfigMap.Items)
		}
	}
	return refs
}

// ReferenceIndexKey is the value a pair is indexed under for one referenced object, so a
// change of that object finds the pairs that mount it: "Secret/<name>", "ConfigMap/<name>".
func ReferenceIndexKey(kind, name string) string { return kind + "/" + name }

// PairReferenceIndex gives the index values of a pair: one per referenced object.
func PairReferenceIndex(pair *v1.ReplicationPair) []string {
	var keys []string
	seen := map[string]bool{}
	for _, r := range PairReferences(pair) {
		k := ReferenceIndexKey(r.Kind, r.Name)
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// ObjectKeys is what the manager found of the referenced objects: the data keys of each
// one that exists, by ReferenceIndexKey. An object absent from the map does not exist.
type ObjectKeys map[string]map[string]bool

// SecretKeys lists a Secret's data keys (the cache holds keys, not values).
func SecretKeys(s *corev1.Secret) map[string]bool {
	keys := make(map[string]bool, len(s.Data))
	for k := range s.Data {
		keys[k] = true
	}
	return keys
}

// ConfigMapKeys lists a ConfigMap's keys; a volume item may name a key of data or of
// binaryData.
func ConfigMapKeys(cm *corev1.ConfigMap) map[string]bool {
	keys := make(map[string]bool, len(cm.Data)+len(cm.BinaryData))
	for k := range cm.Data {
		keys[k] = true
	}
	for k := range cm.BinaryData {
		keys[k] = true
	}
	return keys
}

// MissingReferences says which references found does not satisfy, one sentence per
// missing object or key, in spec order; references of the same object (and key) share
// a sentence listing their fields, e.g.
//
//	Secret "creds" not found (spec.master.passwordSecretRef, spec.replica.passwordSecretRef)
//	Secret "creds" has no key "password" (spec.replica.passwordSecretRef)
//
// It returns nil when every reference is satisfied.
func MissingReferences(refs []Reference, found ObjectKeys) []string {
	type problem struct {
		text   string
		fields []string
	}
	var order []string
	problems := map[string]*problem{}
	for _, r := range refs {
		keys, ok := found[ReferenceIndexKey(r.Kind, r.Name)]
		var text string
		switch {
		case !ok:
			text = fmt.Sprintf("%s %q not found", r.Kind, r.Name)
		case r.Key != "" && !keys[r.Key]:
			text = fmt.Sprintf("%s %q has no key %q", r.Kind, r.Name, r.Key)
		default:
			continue
		}
		p := problems[text]
		if p == nil {
			p = &problem{text: text}
			problems[text] = p
			order = append(order, text)
		}
		p.fields = append(p.fields, r.Field)
	}
	var out []string
	for _, text := range order {
		p := problems[text]
		out = append(out, fmt.Sprintf("%s (%s)", p.text, strings.Join(p.fields, ", ")))
	}
	return out
}

// ReferenceMessage is the condition message for missing references.
func ReferenceMessage(missing []string) string {
	return trunc(strings.Join(missing, "; "), maxError)
}

// NewStall returns the Stalled condition of after when it is true with reason and is new
// since before (absent there, or another reason or message): the moment to announce it,
// once. Stalled is removed when the cause goes, so a recurrence is new again.
func NewStall(before, after []metav1.Condition, reason string) *metav1.Condition {
	return NewTrue(before, after, v1.ConditionStalled, reason)
}

// NewTrue returns the condition condType of after when it is true with reason and is new
// since before (absent there, or another reason or message).
func NewTrue(before, after []metav1.Condition, condType, reason string) *metav1.Condition {
	a := apimeta.FindStatusCondition(after, condType)
	if a == nil || a.Status != metav1.ConditionTrue || a.Reason != reason {
		return nil
	}
	if b := apimeta.FindStatusCondition(before, condType); b != nil && b.Status == a.Status && b.Reason == a.Reason && b.Message == a.Message {
		return nil
	}
	return a
}
