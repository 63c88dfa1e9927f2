package operator

import (
	"fmt"
	"strings"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
)

// DisallowedVolumes names the spec fields of a pair that ask for a volume the manager
// does not run without --allow-host-path: a hostPath (a node's files: Pod Security
// "privileged") or an nfs export (not allowed by "restricted"). A claim, and the
// Secrets, ConfigMaps and emptyDirs the operator adds itself, are always allowed. Empty
// when allowed is true.
func DisallowedVolumes(pair *v1.ReplicationPair, allowed bool) []string {
	if allowed {
		return nil
	}
	var out []string
	check := func(field string, v v1.VolumeSource) {
		switch {
		case v.HostPath != nil:
			out = append(out, field+".hostPath")
		case v.NFS != nil:
			out = append(out, field+".nfs")
		}
	}
	if sl := pair.Spec.SyncLog; sl != nil {
		check("spec.syncLog.volume", sl.Volume)
	}
	if mc := pair.Spec.MasterConfig; mc != nil {
		check("spec.masterConfig.volume", mc.Volume)
	}
	return out
}

// VolumeMessage says why a pair gets no pod, naming the fields.
func VolumeMessage(fields []string) string {
	return fmt.Sprintf("%s: hostPath and nfs volumes need the manager's --allow-host-path (chart value replicator.allowHostPath); use a persistentVolumeClaim or the master's agent (spec.master.agent), or have the cluster admin allow them",
		strings.Join(fields, ", "))
}
