package operator

import (
	"fmt"
	"net"
	"path"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
)

// Where things are mounted in the replicator container.
const (
	secretsDir            = "/etc/cyrusrepl"
	syncLogMount          = "/var/lib/cyrusrepl/sync-log"
	stateMount            = "/var/lib/cyrusrepl/state"
	masterConfMount       = "/etc/cyrusrepl/master-config"
	tmpMount              = "/tmp"
	passwordFile          = "password"
	tokenFile             = "token"
	caFile                = "ca.crt"
	tlsCertKey            = "tls.crt" // the keys of a kubernetes.io/tls Secret
	tlsKeyKey             = "tls.key"
	defaultUID      int64 = 65532
	// MetricsPort is where rolling and audit replicators serve Prometheus metrics.
	MetricsPort = 9090
)

// Volume names.
const (
	volMasterPassword  = "master-password"
	volReplicaPassword = "replica-password"
	volMasterCA        = "master-ca"
	volAgentToken      = "agent-token"
	volAgentCA         = "agent-ca"
	volAgentClientCert = "agent-client-cert"
	volReplicaCA       = "replica-ca"
	volSyncLog         = "sync-log"
	volMasterConfig    = "master-config"
	volTmp             = "tmp"
	volState           = "state"
)

// podParts are the pieces of a replicator pod shared by the Deployment and the Job.
type podParts struct {
	args    []string
	volumes []corev1.Volume
	mounts  []corev1.VolumeMount
}

func (p *podParts) add(v corev1.Volume, m corev1.VolumeMount) {
	p.volumes = append(p.volumes, v)
	p.mounts = append(p.mounts, m)
}

// secretFile mounts one key of a Secret as <dir>/<file> and returns the file's path.
// Secrets are files, never environment variables: they do not leak into `kubectl
// describe`, crash dumps or child processes.
func (p *podParts) secretFile(vol string, ref v1.SecretKeyRef, file string) string {
	dir := path.Join(secretsDir, vol)
	p.add(corev1.Volume{Name: vol, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName:  ref.Name,
		Items:       []corev1.KeyToPath{{Key: ref.Key, Path: file}},
		DefaultMode: ptr.To[int32](0o440),
	}}}, corev1.VolumeMount{Name: vol, MountPath: dir, ReadOnly: true})
	return path.Join(dir, file)
}

func (p *podParts) configMapFile(vol string, ref v1.ConfigMapKeyRef, file string) string {
	dir := path.Join(secretsDir, vol)
	p.add(corev1.Volume{Name: vol, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: ref.Name},
		Items:                []corev1.KeyToPath{{Key: ref.Key, Path: file}},
		DefaultMode:          ptr.To[int32](0o444),
	}}}, corev1.VolumeMount{Name: vol, MountPath: dir, ReadOnly: true})
	return path.Join(dir, file)
}

// endpoint adds the flags, Secret volumes and TLS material of one side ("master" or
// "replica").
func (p *podParts) endpoint(side string, e v1.Endpoint) {
	port := e.Port
	if port == 0 {
		port = v1.DefaultCsyncPort
	}
	pw := p.secretFile(side+"-password", e.PasswordSecretRef, passwordFile)
	p.args = append(p.args,
		"--"+side, net.JoinHostPort(e.Host, strconv.Itoa(int(port))),
		"--"+side+"-user", e.Username,
		"--"+side+"-password-file", pw,
	)
	p.args = append(p.args, "--"+side+"-tls", TLSFlag(e.TLS))
	if e.TLS == nil {
		return
	}
	var ca string
	switch {
	case e.TLS.CASecretRef != nil:
		ca = p.secretFile(side+"-ca", *e.TLS.CASecretRef, caFile)
	case e.TLS.CAConfigMapRef != nil:
		ca = p.configMapFile(side+"-ca", *e.TLS.CAConfigMapRef, caFile)
	}
	if ca != "" {
		p.args = append(p.args, "--"+side+"-ca-file", ca)
	}
	if e.TLS.ServerName != "" {
		p.args = append(p.args, "--"+side+"-tls-server-name", e.TLS.ServerName)
	}
}

// agent adds the flags and the Secret (and CA) volumes of the master's agent. Nothing of
// the master's disk is mounted: the agent serves the sync log and mailboxes.db.
func (p *podParts) agent(a *v1.AgentSource) {
	if a == nil {
		return
	}
	token := p.secretFile(volAgentToken, a.TokenSecretRef, tokenFile)
	p.args = append(p.args, "--agent", a.URL, "--agent-token-file", token)
	var ca string
	switch {
	case a.CASecretRef != nil:
		ca = p.secretFile(volAgentCA, *a.CASecretRef, caFile)
	case a.CAConfigMapRef != nil:
		ca = p.configMapFile(volAgentCA, *a.CAConfigMapRef, caFile)
	}
	if ca != "" {
		p.args = append(p.args, "--agent-ca-file", ca)
	}
	if ref := a.ClientCertSecretRef; ref != nil {
		crt, key := p.tlsSecretFiles(volAgentClientCert, ref.Name)
		p.args = append(p.args, "--agent-client-cert", crt, "--agent-client-key", key)
	}
}

// tlsSecretFiles mounts the tls.crt and tls.key of a kubernetes.io/tls Secret read-only
// under <dir>/<vol>/ and returns the two files' paths. The key file is readable by the
// pod's group only, like every Secret file the operator mounts.
func (p *podParts) tlsSecretFiles(vol, secret string) (crt, key string) {
	dir := path.Join(secretsDir, vol)
	p.add(corev1.Volume{Name: vol, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName:  secret,
		Items:       []corev1.KeyToPath{{Key: tlsCertKey, Path: tlsCertKey}, {Key: tlsKeyKey, Path: tlsKeyKey}},
		DefaultMode: ptr.To[int32](0o440),
	}}}, corev1.VolumeMount{Name: vol, MountPath: dir, ReadOnly: true})
	return path.Join(dir, tlsCertKey), path.Join(dir, tlsKeyKey)
}

// TLSFlag maps an endpoint's tls to the replicator's --master-tls/--replica-tls value:
// unset is STARTTLS (verified against the system roots), never plaintext.
func TLSFlag(t *v1.TLSConfig) string {
	if t == nil {
		return "starttls"
	}
	switch t.Mode {
	case v1.TLSModeNone:
		return "none"
	case v1.TLSModeTLS:
		return "tls"
	default:
		return "starttls"
	}
}

func volumeSource(v v1.VolumeSource) corev1.VolumeSource {
	switch {
	case v.PersistentVolumeClaim != nil:
		return corev1.VolumeSource{PersistentVolumeClaim: v.PersistentVolumeClaim.DeepCopy()}
	case v.HostPath != nil:
		return corev1.VolumeSource{HostPath: v.HostPath.DeepCopy()}
	case v.NFS != nil:
		return corev1.VolumeSource{NFS: v.NFS.DeepCopy()}
	}
	return corev1.VolumeSource{}
}

// ReplicaOnlyFlag maps the API's policy to the replicator's --replica-only-policy value.
func ReplicaOnlyFlag(p v1.ReplicaOnlyPolicy) string {
	switch p {
	case v1.ReplicaOnlyFail:
		return "fail"
	default:
		return "keep"
	}
}

// commonParts builds what every replicator pod of a pair shares: endpoints, the master's
// agent or master config, workers, policy, report ConfigMap and pair name. Mode-specific flags are added by the
// caller after the mode word.
func commonParts(pair *v1.ReplicationPair, reportConfigMap string) *podParts {
	p := &podParts{}
	s := &pair.Spec
	p.endpoint("master", s.Master.Endpoint)
	p.agent(s.Master.Agent)
	p.endpoint("replica", s.Replica)
	if mc := s.MasterConfig; mc != nil {
		p.add(corev1.Volume{Name: volMasterConfig, VolumeSource: volumeSource(mc.Volume)},
			corev1.VolumeMount{Name: volMasterConfig, MountPath: masterConfMount, ReadOnly: true})
		p.args = append(p.args, "--master-config", path.Join(masterConfMount, mc.Path))
	}
	workers := s.Workers
	if workers == 0 {
		workers = v1.DefaultWorkers
	}
	p.args = append(p.args,
		"--workers", strconv.Itoa(int(workers)),
		"--replica-only-policy", ReplicaOnlyFlag(s.ReplicaOnlyPolicy),
		"--report-configmap", reportConfigMap,
		"--pair", pair.Name,
		"--state-dir", stateMount,
	)
	// The root filesystem is read-only; give the replicator a scratch /tmp, and its
	// state (ledger, retry queue, writer locks) on the pair's claim, which outlives
	// pods: the pair's replicator and its resyncs share it (see StateClaim).
	p.add(corev1.Volume{Name: volTmp, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		corev1.VolumeMount{Name: volTmp, MountPath: tmpMount})
	p.add(corev1.Volume{Name: volState, VolumeSource: stateVolume(pair.Name)},
		corev1.VolumeMount{Name: volState, MountPath: stateMount})
	return p
}

// PodOptions are the manager-wide settings of every replicator pod.
type PodOptions struct {
	// Image is the replicator image for pairs without spec.replicator.image.
	Image string
	// HostNetwork runs replicator pods in the node's network namespace (clusters without
	// a pod network, like the project's local test cluster).
	HostNetwork bool
	// APIServerHost and APIServerPort, when set, are passed to the pods as
	// KUBERNETES_SERVICE_HOST/PORT (where the Service IP is unreachable, e.g. with
	// HostNetwork on the local cluster) so the report publisher reaches the API.
	APIServerHost, APIServerPort string
	// AllowHostPath lets pairs mount hostPath and nfs volumes; without it such a pair
	// gets no pod (see DisallowedVolumes).
	AllowHostPath bool
	// Defaults are the pod settings of every pair that does not set its own in
	// spec.replicator (nil: BuiltinPodDefaults).
	Defaults *v1.ReplicatorPodSpec
}

func (o PodOptions) defaults() v1.ReplicatorPodSpec {
	if o.Defaults == nil {
		return BuiltinPodDefaults()
	}
	return *o.Defaults
}

// podSpec assembles the pod: hardened security context, the pair's scheduling over the
// manager's defaults, the downward-API POD_NAMESPACE the report publisher needs.
func podSpec(pair *v1.ReplicationPair, o PodOptions, serviceAccount string, args []string, p *podParts, ports []corev1.ContainerPort) corev1.PodSpec {
	r := effectivePod(pair.Spec.Replicator, o.defaults())
	image := o.Image
	if r.Image != "" {
		image = r.Image
	}
	env := []corev1.EnvVar{{
		Name:      "POD_NAMESPACE",
		ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}},
	}}
	if o.APIServerHost != "" && o.APIServerPort != "" {
		env = append(env,
			corev1.EnvVar{Name: "KUBERNETES_SERVICE_HOST", Value: o.APIServerHost},
			corev1.EnvVar{Name: "KUBERNETES_SERVICE_PORT", Value: o.APIServerPort})
	}
	c := corev1.Container{
		Name:            "replicator",
		Image:           image,
		ImagePullPolicy: r.ImagePullPolicy,
		Args:            args,
		Env:             env,
		Ports:           ports,
		Resources:       r.Resources,
		VolumeMounts:    p.mounts,
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptr.To(true),
			ReadOnlyRootFilesystem:   ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false),
			Privileged:               ptr.To(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	spec := corev1.PodSpec{
		ServiceAccountName:           serviceAccount,
		AutomountServiceAccountToken: ptr.To(true), // the report publisher talks to the API
		Containers:                   []corev1.Container{c},
		Volumes:                      p.volumes,
		ImagePullSecrets:             r.ImagePullSecrets,
		PriorityClassName:            r.PriorityClassName,
		NodeSelector:                 r.NodeSelector,
		Affinity:                     r.Affinity,
		Tolerations:                  r.Tolerations,
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr.To(true),
			RunAsUser:      r.RunAsUser,
			RunAsGroup:     r.RunAsGroup,
			FSGroup:        r.FSGroup,
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
	if o.HostNetwork {
		spec.HostNetwork = true
		spec.DNSPolicy = corev1.DNSClusterFirstWithHostNet
	}
	return spec
}

// podMeta is the pod template's metadata: the manager's and the pair's extra labels and
// annotations under the operator's own.
func podMeta(pair *v1.ReplicationPair, o PodOptions, labels, annotations map[string]string) metav1.ObjectMeta {
	r := effectivePod(pair.Spec.Replicator, o.defaults())
	return metav1.ObjectMeta{Labels: withLabels(labels, r.PodLabels), Annotations: mergeMaps(r.PodAnnotations, annotations)}
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// metricsFlag is the replicator's metrics listen address: every interface of the pod's
// own network namespace, or loopback only when the pod shares the node's.
func metricsFlag(hostNetwork bool) string {
	if hostNetwork {
		return fmt.Sprintf("127.0.0.1:%d", MetricsPort)
	}
	return fmt.Sprintf(":%d", MetricsPort)
}
