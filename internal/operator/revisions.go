package operator

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
)

// AnnotationReferencesRevision on the Deployment's pod template names the revision of
// every Secret and ConfigMap the replicator mounts (see ReferencesRevision). The
// replicator reads its password and CA files once, at start; when one of those objects
// changes, the annotation changes and the Deployment rolls, so a rotated password or CA
// reaches the replicator.
const AnnotationReferencesRevision = "replication.cyrusrepl.io/references-revision"

// ObjectRevision identifies one state of a referenced object: its UID (a deleted and
// re-created object is another one) and resourceVersion (any write changes it).
type ObjectRevision struct {
	Kind, Name, UID, ResourceVersion string
}

// ReferencesRevision is a short hash of the revisions of the referenced objects.
//
// Why resourceVersions and not the values: the manager never reads a Secret's values
// (its cache keeps keys only), and a hash of a password in an annotation anyone with
// read access to Deployments can see would let them test guesses offline. The price: any
// write to a mounted Secret or ConfigMap, a label included, restarts the replicator once
// (it resumes from the sync log).
func ReferencesRevision(objs []ObjectRevision) string {
	lines := make([]string, 0, len(objs))
	for _, o := range objs {
		lines = append(lines, fmt.Sprintf("%s/%s/%s/%s", o.Kind, o.Name, o.UID, o.ResourceVersion))
	}
	sort.Strings(lines)
	h := sha256.New()
	for _, l := range lines {
		fmt.Fprintln(h, l)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// SetReferencesRevision puts rev on the Deployment's pod template; an empty rev leaves
// the template without the annotation.
func SetReferencesRevision(d *appsv1.Deployment, rev string) {
	if rev == "" {
		return
	}
	if d.Spec.Template.Annotations == nil {
		d.Spec.Template.Annotations = map[string]string{}
	}
	d.Spec.Template.Annotations[AnnotationReferencesRevision] = rev
}
