package operator

import (
	"errors"
	"fmt"
	"maps"
	"os"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
)

// DefaultReplicatorImage is the replicator image when neither --replicator-image nor
// spec.replicator.image names one; it follows the chart's appVersion and
// config/manager/manager.yaml (test/helm checks the three agree).
const DefaultReplicatorImage = "ghcr.io/cyrusrepl/replicator:0.1.0"

// BuiltinPodDefaults are the replicator pod defaults of a manager started without
// --replicator-defaults: uid/gid 65532, pull if not present, modest requests and a
// memory limit (a pod with neither would be BestEffort, the first evicted).
func BuiltinPodDefaults() v1.ReplicatorPodSpec {
	return v1.ReplicatorPodSpec{
		ImagePullPolicy: corev1.PullIfNotPresent,
		RunAsUser:       ptr.To(defaultUID),
		RunAsGroup:      ptr.To(defaultUID),
		FSGroup:         ptr.To(defaultUID),
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("50m"),
				corev1.ResourceMemory: resource.MustParse("64Mi"),
			},
			Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
		},
	}
}

// LoadPodDefaults reads the replicator pod defaults from a YAML file shaped like a
// pair's spec.replicator (the chart renders it from its replicator.* values). The file
// is the whole set: a field it leaves out is unset, so a missing runAsUser, runAsGroup
// or fsGroup leaves the id to the platform (OpenShift's restricted-v2 assigns one).
// Unknown keys are errors, and so is image (--replicator-image names the image).
func LoadPodDefaults(path string) (v1.ReplicatorPodSpec, error) {
	var d v1.ReplicatorPodSpec
	b, err := os.ReadFile(path)
	if err != nil {
		return d, fmt.Errorf("read replicator defaults: %w", err)
	}
	if err := yaml.UnmarshalStrict(b, &d); err != nil {
		return d, fmt.Errorf("parse replicator defaults %s: %w", path, err)
	}
	if d.Image != "" {
		return d, errors.New("replicator defaults: image is not a default; use --replicator-image")
	}
	return d, nil
}

// effectivePod merges a pair's spec.replicator over the manager's defaults: a field the
// pair sets wins; labels, annotations and pull secrets add up.
func effectivePod(pair v1.ReplicatorPodSpec, d v1.ReplicatorPodSpec) v1.ReplicatorPodSpec {
	e := *d.DeepCopy()
	p := pair.DeepCopy()
	e.Image = p.Image
	if p.ImagePullPolicy != "" {
		e.ImagePullPolicy = p.ImagePullPolicy
	}
	e.ImagePullSecrets = append(e.ImagePullSecrets, p.ImagePullSecrets...)
	e.PodLabels = mergeMaps(e.PodLabels, p.PodLabels)
	e.PodAnnotations = mergeMaps(e.PodAnnotations, p.PodAnnotations)
	if p.PriorityClassName != "" {
		e.PriorityClassName = p.PriorityClassName
	}
	if len(p.Resources.Requests) > 0 || len(p.Resources.Limits) > 0 || len(p.Resources.Claims) > 0 {
		e.Resources = p.Resources
	}
	if p.NodeSelector != nil {
		e.NodeSelector = p.NodeSelector
	}
	if p.Tolerations != nil {
		e.Tolerations = p.Tolerations
	}
	if p.Affinity != nil {
		e.Affinity = p.Affinity
	}
	if p.RunAsUser != nil {
		e.RunAsUser = p.RunAsUser
	}
	switch {
	case p.FSGroup != nil:
		e.FSGroup = p.FSGroup
	case p.RunAsGroup != nil:
		e.FSGroup = p.RunAsGroup // the pair's group owns its volumes, as before fsGroup existed
	}
	if p.RunAsGroup != nil {
		e.RunAsGroup = p.RunAsGroup
	}
	return e
}

func mergeMaps(base, over map[string]string) map[string]string {
	if len(base) == 0 && len(over) == 0 {
		return nil
	}
	out := make(map[string]string, len(base)+len(over))
	maps.Copy(out, base)
	maps.Copy(out, over)
	return out
}

// withLabels returns the pod's labels: the extra ones under the operator's own (which
// the Deployment selector and the manager's cache rely on).
func withLabels(own, extra map[string]string) map[string]string {
	return mergeMaps(extra, own)
}

var intstrMetrics = intstr.FromString("metrics")

// podProbes are the replicator's liveness and readiness probes on its metrics port
// (rolling and audit serve /healthz and /readyz there). With the node's network the
// port listens on 127.0.0.1 only, so the kubelet must probe that address.
func podProbes(c *corev1.Container, hostNetwork bool) {
	get := func(path string) corev1.ProbeHandler {
		h := corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstrMetrics}}
		if hostNetwork {
			h.HTTPGet.Host = "127.0.0.1"
		}
		return h
	}
	// Startup checks (both servers answer as admins) may take up to 30 s before the
	// port opens: liveness allows for that before it restarts anything.
	c.LivenessProbe = &corev1.Probe{ProbeHandler: get("/healthz"), InitialDelaySeconds: 45, PeriodSeconds: 20, TimeoutSeconds: 5, FailureThreshold: 3}
	c.ReadinessProbe = &corev1.Probe{ProbeHandler: get("/readyz"), PeriodSeconds: 10, TimeoutSeconds: 5, FailureThreshold: 3}
}
