package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultCsyncPort is the port the operator uses when an endpoint leaves port unset: the
// usual port of Cyrus's sync_server ("csync" in /etc/services).
const DefaultCsyncPort = 2005

// Endpoint is one Cyrus server as the replicator reaches it over csync.
type Endpoint struct {
	// host is the DNS name or IP address (IPv6 without brackets) of the server's csync
	// (sync_server) service.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9:]([A-Za-z0-9.:\-]*[A-Za-z0-9])?$`
	Host string `json:"host"`

	// port is the csync port of the server. When unset the operator uses 2005; no server
	// default is written, so re-applying a manifest without a port shows no drift.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`

	// imapPort is the server's IMAP port. Only the master's is used: a pair without a
	// syncLog and without masterConfig runs audits that list the master's users through
	// IMAP (LIST "" "user.%" as the admin below; nothing else is sent there). It uses the
	// same TLS settings as the csync connection.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	IMAPPort int32 `json:"imapPort,omitempty"`

	// username is the Cyrus admin the replicator authenticates as (AUTHENTICATE PLAIN).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Username string `json:"username"`

	// passwordSecretRef names the Secret key holding that user's password. The Secret is
	// mounted into the replicator pod as a file, never passed through the environment.
	// +required
	PasswordSecretRef SecretKeyRef `json:"passwordSecretRef"`

	// tls says how the csync connection (and, for the master, the IMAP user listing) is
	// secured. When unset the replicator uses STARTTLS and verifies the server against
	// the system's CA roots; plaintext only with mode None, and the pair then shows the
	// PlaintextPassword condition and a Warning Event.
	// +optional
	TLS *TLSConfig `json:"tls,omitempty"`
}

// MasterEndpoint is the master server: its csync endpoint and, optionally, the agent
// that serves what only the master's disk holds.
type MasterEndpoint struct {
	Endpoint `json:",inline"`

	// agent is the cyrusrepl agent running beside the master (a sidecar of the Cyrus pod
	// or a service on its machine). It serves the master's sync-log channel and
	// mailboxes.db over HTTPS, so the replicator runs in rolling mode and mounts nothing
	// of the master's; message bodies still come over csync. Not together with syncLog
	// or masterConfig.
	// +optional
	Agent *AgentSource `json:"agent,omitempty"`
}

// AgentSource says how the replicator reaches the master's agent. The connection is
// always TLS, and every request carries the bearer token.
// +kubebuilder:validation:XValidation:rule="!(has(self.caSecretRef) && has(self.caConfigMapRef))",message="agent takes at most one of caSecretRef or caConfigMapRef"
type AgentSource struct {
	// url is the agent's address, https://HOST:PORT (no path), e.g.
	// https://cyrus-0.cyrus.mail.svc:8443. The agent's certificate must be valid for
	// its host.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() == 'https' && url(self).getHost() != ''",message="url must be an https:// URL with a host: the agent serves TLS only"
	// +kubebuilder:validation:XValidation:rule="!self.contains('@') && !self.contains('?') && !self.contains('#')",message="url must not carry user information, a query or a fragment: the token comes from tokenSecretRef"
	// +kubebuilder:validation:XValidation:rule="!isURL(self) || url(self).getEscapedPath() in ['', '/']",message="url must have no path: the agent serves its API at the root, https://HOST:PORT"
	URL string `json:"url"`

	// tokenSecretRef names the Secret key holding the bearer token the agent expects
	// (the same value as the agent's --token-file). Mounted into the replicator pods as
	// a file; a changed Secret restarts the replicator with the new token.
	// +required
	TokenSecretRef SecretKeyRef `json:"tokenSecretRef"`

	// caSecretRef names the Secret key holding the PEM CA bundle that verifies the
	// agent's certificate. At most one of caSecretRef and caConfigMapRef is set; with
	// neither, the system's roots verify it.
	// +optional
	CASecretRef *SecretKeyRef `json:"caSecretRef,omitempty"`

	// caConfigMapRef names the ConfigMap key holding the PEM CA bundle that verifies the
	// agent's certificate. At most one of caSecretRef and caConfigMapRef is set.
	// +optional
	CAConfigMapRef *ConfigMapKeyRef `json:"caConfigMapRef,omitempty"`

	// clientCertSecretRef names a Secret holding the replicator's client certificate and
	// key for an agent started with --client-ca (mutual TLS), under the keys tls.crt
	// and tls.key (a Secret of type kubernetes.io/tls, as cert-manager writes it).
	// Mounted read-only into the replicator pods and passed as --agent-client-cert and
	// --agent-client-key; a changed Secret restarts the replicator with the new
	// certificate. Without it the replicator presents no client certificate. The bearer
	// token is still required.
	// +optional
	ClientCertSecretRef *TLSSecretRef `json:"clientCertSecretRef,omitempty"`
}

// TLSSecretRef names a Secret of the object's namespace holding a certificate and its
// key under the keys tls.crt and tls.key (type kubernetes.io/tls).
type TLSSecretRef struct {
	// name is the name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="name must be a Secret's name: lower-case letters, digits, '-' and '.'"
	Name string `json:"name"`
}

// TLSMode is how the replicator secures a connection.
// +kubebuilder:validation:Enum=None;StartTLS;TLS
type TLSMode string

// The TLS modes.
const (
	// TLSModeStartTLS connects in clear and upgrades with the csync STARTTLS command: what
	// Cyrus's sync_server offers once tls_server_cert and tls_server_key are set.
	TLSModeStartTLS TLSMode = "StartTLS"
	// TLSModeTLS is TLS from the first byte, for a TLS-terminating proxy in front of
	// sync_server (sync_server itself has no such mode).
	TLSModeTLS TLSMode = "TLS"
	// TLSModeNone is plaintext: the password crosses the network in clear.
	TLSModeNone TLSMode = "None"
)

// TLSConfig says how the replicator secures one csync connection. The server's
// certificate is verified against the CA (or the system roots) and the endpoint's host
// name or IP address.
// +kubebuilder:validation:XValidation:rule="!(has(self.caSecretRef) && has(self.caConfigMapRef))",message="tls takes at most one of caSecretRef or caConfigMapRef"
// +kubebuilder:validation:XValidation:rule="self.mode != 'None' || (!has(self.caSecretRef) && !has(self.caConfigMapRef) && !has(self.serverName))",message="tls.mode None is plaintext and verifies nothing: remove the CA and serverName, or choose StartTLS or TLS"
type TLSConfig struct {
	// mode is StartTLS (upgrade a plain connection; what sync_server offers), TLS (TLS
	// from the first byte, through a TLS-terminating proxy) or None (plaintext).
	// +required
	Mode TLSMode `json:"mode"`

	// caSecretRef names the Secret key holding the PEM CA bundle used to verify the server.
	// At most one of caSecretRef and caConfigMapRef is set; with neither, the system's
	// roots verify it.
	// +optional
	CASecretRef *SecretKeyRef `json:"caSecretRef,omitempty"`

	// caConfigMapRef names the ConfigMap key holding the PEM CA bundle used to verify the
	// server. At most one of caSecretRef and caConfigMapRef is set.
	// +optional
	CAConfigMapRef *ConfigMapKeyRef `json:"caConfigMapRef,omitempty"`

	// serverName is the name the server's certificate must be issued for, when it is
	// not the endpoint's host (e.g. a Service name in front of mail.example.com).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9:]([A-Za-z0-9.:\-]*[A-Za-z0-9])?$`
	ServerName string `json:"serverName,omitempty"`
}

// SecretKeyRef names one key of a Secret in the object's namespace.
type SecretKeyRef struct {
	// name is the name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// key is the key inside the Secret's data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// ConfigMapKeyRef names one key of a ConfigMap in the object's namespace.
type ConfigMapKeyRef struct {
	// name is the name of the ConfigMap.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// key is the key inside the ConfigMap's data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// VolumeSource is where a directory of the master's host is found. It is a narrow subset
// of the core VolumeSource: the kinds that can reach another server's files. Exactly one
// field is set.
// +kubebuilder:validation:XValidation:rule="[has(self.persistentVolumeClaim), has(self.hostPath), has(self.nfs)].filter(x, x).size() == 1",message="exactly one of persistentVolumeClaim, hostPath or nfs must be set"
type VolumeSource struct {
	// persistentVolumeClaim mounts a claim shared with the master (ReadWriteMany, or the
	// same node for ReadWriteOnce).
	// +optional
	PersistentVolumeClaim *corev1.PersistentVolumeClaimVolumeSource `json:"persistentVolumeClaim,omitempty"`

	// hostPath mounts a directory of the node; the replicator must then be scheduled on
	// the master's node (see replicator.nodeSelector).
	// +optional
	HostPath *corev1.HostPathVolumeSource `json:"hostPath,omitempty"`

	// nfs mounts an NFS export of the master's directory.
	// +optional
	NFS *corev1.NFSVolumeSource `json:"nfs,omitempty"`
}

// SyncLogSource is where the replicator finds the master's sync-log channel directory
// (what Cyrus writes for sync_log_channels; <configdirectory>/sync/<channel>).
type SyncLogSource struct {
	// volume holds the directory. The replicator consumes the log (it renames and removes
	// log files like sync_client does), so the volume is mounted read-write.
	// +required
	Volume VolumeSource `json:"volume"`

	// path is the channel directory relative to the volume's root, e.g. "sync/cyrusrepl".
	// Empty means the volume's root is the channel directory.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/')",message="path must be relative to the volume"
	// +kubebuilder:validation:XValidation:rule="!self.matches('(^|/)[.][.](/|$)')",message="path must not contain '..'"
	Path string `json:"path,omitempty"`
}

// MasterConfigSource is where the replicator finds the master's imapd.conf (and through
// it the configdirectory with mailboxes.db), the strongest tombstone evidence.
type MasterConfigSource struct {
	// volume holds the master's config file and configdirectory. It is mounted read-only.
	// +required
	Volume VolumeSource `json:"volume"`

	// path is the imapd.conf file relative to the volume's root, e.g. "imapd.conf".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/')",message="path must be relative to the volume"
	// +kubebuilder:validation:XValidation:rule="!self.matches('(^|/)[.][.](/|$)')",message="path must not contain '..'"
	Path string `json:"path"`
}

// ReplicatorPodSpec tunes the replicator pods the operator creates (the pair's Deployment
// and its resyncs' Jobs).
type ReplicatorPodSpec struct {
	// image overrides the replicator image the manager was started with.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image,omitempty"`

	// resources are the replicator container's requests and limits; unset, the manager's
	// defaults apply (requests and a memory limit: never BestEffort).
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty,omitzero"`

	// nodeSelector constrains the replicator pods to nodes with these labels (replaces
	// the manager's default when set; so do tolerations and affinity).
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// tolerations let the replicator pods run on tainted nodes.
	// +optional
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// affinity places the replicator pods (e.g. next to the master's volume).
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// runAsUser is the UID the replicator runs as; set it to the owner of the master's
	// sync-log directory when that is a hostPath or NFS export. Defaults to the manager's
	// default (65532, or none where the platform assigns one, as OpenShift does).
	// +optional
	// +kubebuilder:validation:Minimum=1
	RunAsUser *int64 `json:"runAsUser,omitempty"`

	// runAsGroup is the primary GID of the replicator; it is also the pod's fsGroup (unless
	// fsGroup is set) so the mounted Secrets are readable. Defaults to 65532.
	// +optional
	// +kubebuilder:validation:Minimum=1
	RunAsGroup *int64 `json:"runAsGroup,omitempty"`

	// fsGroup is the pod's fsGroup (the group that owns its volumes). Defaults to
	// runAsGroup when that is set, else to the manager's default.
	// +optional
	// +kubebuilder:validation:Minimum=1
	FSGroup *int64 `json:"fsGroup,omitempty"`

	// imagePullPolicy overrides the manager's default pull policy of the replicator image.
	// +optional
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// imagePullSecrets are added to the manager's default pull secrets of the replicator
	// pods (Secrets of type kubernetes.io/dockerconfigjson in the pair's namespace).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// podLabels are added to the replicator pods' labels (over the manager's defaults;
	// the operator's own labels always win).
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	PodLabels map[string]string `json:"podLabels,omitempty"`

	// podAnnotations are added to the replicator pods' annotations (over the manager's
	// defaults).
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	PodAnnotations map[string]string `json:"podAnnotations,omitempty"`

	// priorityClassName overrides the manager's default priority class of the replicator pods.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	PriorityClassName string `json:"priorityClassName,omitempty"`
}

// DecisionRecord is one decision of the replicator, as kept in the bounded recent list.
type DecisionRecord struct {
	// id identifies the record (report.RecordID); events are deduplicated by it.
	// +required
	// +kubebuilder:validation:MaxLength=64
	ID string `json:"id"`
	// time is when the replicator made the decision.
	// +required
	Time metav1.Time `json:"time"`
	// user is the Cyrus user the folder belongs to.
	// +required
	// +kubebuilder:validation:MaxLength=256
	User string `json:"user"`
	// uniqueID is the folder's Cyrus uniqueid.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	UniqueID string `json:"uniqueID,omitempty"`
	// masterName is the folder's name on the master, if any.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	MasterName string `json:"masterName,omitempty"`
	// replicaName is the folder's name on the replica, if any.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	ReplicaName string `json:"replicaName,omitempty"`
	// action is what the replicator did (create, update, rename, delete, mirror-delete,
	// keep, move-aside).
	// +required
	// +kubebuilder:validation:MaxLength=64
	Action string `json:"action"`
	// evidence is what the action rests on (tombstone, deleted-namespace, name-history,
	// ledger, none).
	// +required
	// +kubebuilder:validation:MaxLength=64
	Evidence string `json:"evidence"`
	// reason explains the decision in words (truncated to 256 characters).
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Reason string `json:"reason,omitempty"`
}

// MismatchRecord is one difference found between master and replica, as kept in the
// bounded recent list.
type MismatchRecord struct {
	// id identifies the record (report.RecordID); events are deduplicated by it.
	// +required
	// +kubebuilder:validation:MaxLength=64
	ID string `json:"id"`
	// time is when the difference was found.
	// +required
	Time metav1.Time `json:"time"`
	// user is the Cyrus user concerned.
	// +required
	// +kubebuilder:validation:MaxLength=256
	User string `json:"user"`
	// kind classifies the difference (missing-on-replica, replica-only, name-differs,
	// uniqueid-collision, content-differs).
	// +required
	// +kubebuilder:validation:MaxLength=64
	Kind string `json:"kind"`
	// uniqueID is the folder's Cyrus uniqueid.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	UniqueID string `json:"uniqueID,omitempty"`
	// masterName is the folder's name on the master, if any.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	MasterName string `json:"masterName,omitempty"`
	// replicaName is the folder's name on the replica, if any.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	ReplicaName string `json:"replicaName,omitempty"`
	// detail describes the difference in words (truncated to 256 characters).
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Detail string `json:"detail,omitempty"`
}

// MaxRecentRecords bounds status.recentDecisions and status.recentMismatches.
const MaxRecentRecords = 10

// ReportStatus is what the manager folded from a replicator's report ConfigMap: totals
// and the most recent few records, bounded whatever the fleet size.
type ReportStatus struct {
	// decisionCounts counts decisions by "action/evidence" since the replicator started.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	DecisionCounts map[string]int64 `json:"decisionCounts,omitempty"`
	// mismatchCounts counts mismatches by kind since the replicator started.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	MismatchCounts map[string]int64 `json:"mismatchCounts,omitempty"`
	// recentDecisions are the most recent decisions, newest first (at most 10).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	RecentDecisions []DecisionRecord `json:"recentDecisions,omitempty"`
	// recentMismatches are the most recent mismatches, newest first (at most 10).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	RecentMismatches []MismatchRecord `json:"recentMismatches,omitempty"`
	// lastError is the replicator's most recent error, if any (truncated to 1024 characters).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	LastError string `json:"lastError,omitempty"`
}
