#!/usr/bin/env bash
# A single-node Kubernetes on 127.0.0.1 for end-to-end tests: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, Debian's containerd + runc, and a kubelet.
#
#   hack/cluster.sh up [DIR]          start (idempotent: a running cluster is left alone)
#   hack/cluster.sh down [--purge] [DIR]  stop everything this script started (idempotent);
#                                     --purge also removes DIR
#   hack/cluster.sh status [DIR]      which components run, node readiness
#   hack/cluster.sh kubeconfig [DIR]  print the admin kubeconfig path
#
# DIR defaults to $CYRUSREPL_CLUSTER_DIR or /tmp/cyrusrepl-cluster. It holds the PKI,
# configs, logs ($DIR/logs), PIDs ($DIR/pids) and the runtime state. `up` starts from an
# empty etcd and kubelet state each time; the PKI and containerd's image store are kept,
# so a second `up` is faster.
#
# Why the odd settings (see docs/local-cluster.md): the node is named
# `localhost` and the apiserver reaches kubelets by Hostname, so nothing ever connects
# to the VM's own non-loopback address; the kubelet accepts cgroup v1 only with
# failCgroupV1=false; containerd must clamp oom_score_adj because the VM lacks
# CAP_SYS_RESOURCE; pods run with hostNetwork, the CNI config is loopback only.
#
# Needs root. Installs containerd, runc and containernetworking-plugins (and curl,
# openssl, iproute2) from Debian when missing; no service is started. The Kubernetes binaries come from hack/k8s-binaries.sh.
set -euo pipefail

HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T0=$(date +%s.%N)

# Fixed loopback ports; `up` refuses to start when one is taken.
ETCD_CLIENT=2379 ETCD_PEER=2380 ETCD_METRICS=2381
APISERVER_PORT=6443 KCM_PORT=10257 SCHED_PORT=10259 KUBELET_PORT=10250 KUBELET_HEALTHZ=10248
PORTS=("$ETCD_CLIENT" "$ETCD_PEER" "$ETCD_METRICS" "$APISERVER_PORT" "$KCM_PORT" "$SCHED_PORT" "$KUBELET_PORT" "$KUBELET_HEALTHZ")
NODE_NAME=localhost
PAUSE_IMAGE=registry.k8s.io/pause:3.10
WAIT_SECONDS=${CYRUSREPL_CLUSTER_WAIT:-120}
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet)

log() { printf '[cluster %6.2fs] %s\n' "$(awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN{print a-b}')" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() {
  sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# ---------------------------------------------------------------- processes by PID

# start NAME CMD...: runs CMD detached (own session), logs to $D/logs/NAME.log, and records
# "PID STARTTIME" so that a later `down` never signals a recycled PID.
start() {
  local name=$1; shift
  setsid "$@" </dev/null >"$D/logs/$name.log" 2>&1 &
  local pid=$!
  echo "$pid $(proc_start "$pid")" >"$D/pids/$name.pid"
}

# proc_start PID: the process start time in clock ticks (field 22 of /proc/PID/stat).
proc_start() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  stat=${stat##*) }                 # drop "pid (comm) " (comm may hold spaces)
  awk '{print $20}' <<<"$stat"       # field 22 overall = 20 after pid and comm
}

# recorded_pid NAME: prints the recorded PID if that very process is still alive.
recorded_pid() {
  local f="$D/pids/$1.pid" pid st
  [ -f "$f" ] || return 1
  read -r pid st <"$f" || return 1
  alive "$pid" || return 1
  [ "$(proc_start "$pid")" = "$st" ] || return 1
  echo "$pid"
}

# alive PID: the process exists and is not a zombie. PID 1 of this VM reaps re-parented
# children only now and then, so a stopped component can linger as a zombie for a while.
alive() {
  local state
  [ -n "$1" ] || return 1
  state=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  state=${state##*) }
  [ "${state%% *}" != Z ]
}

# stop_component NAME: SIGTERM, wait up to 15 s, then SIGKILL; removes the pid file.
stop_component() {
  local name=$1 pid
  if pid=$(recorded_pid "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      log "$name (pid $pid) ignored SIGTERM for 15 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$D/pids/$name.pid"
}

# fail_component NAME REASON: prints the reason and the tail of the component's log,
# stops everything started so far, and exits non-zero.
fail_component() {
  local name=$1; shift
  log "ERROR: $name failed: $*"
  if [ -f "$D/logs/$name.log" ]; then
    echo "----- last 30 lines of $D/logs/$name.log -----" >&2
    tail -n 30 "$D/logs/$name.log" >&2
    echo "-----" >&2
  fi
  if [ "${CYRUSREPL_CLUSTER_KEEP_ON_FAIL:-0}" = 1 ]; then
    log "CYRUSREPL_CLUSTER_KEEP_ON_FAIL=1: leaving the started components running"
  else
    do_down >/dev/null 2>&1 || true
    log "stopped the components started so far"
  fi
  exit 1
}

# wait_for NAME DESCRIPTION CMD...: polls CMD every 0.1 s until it succeeds; fails the
# component when its process died or WAIT_SECONDS passed.
wait_for() {
  local name=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + WAIT_SECONDS ))
  until "$@" >/dev/null 2>&1; do
    if [ "$name" != - ] && ! recorded_pid "$name" >/dev/null; then
      fail_component "$name" "process exited while waiting for: $what"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      fail_component "$name" "timed out after ${WAIT_SECONDS}s waiting for: $what"
    fi
    sleep 0.1
  done
  log "$what"
}

# ---------------------------------------------------------------- prerequisites

install_packages() {
  local missing=()
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  [ -x /usr/lib/cni/loopback ] || missing+=(containernetworking-plugins)
  command -v curl >/dev/null || missing+=(curl)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v ss >/dev/null || missing+=(iproute2)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing from Debian: ${missing[*]} (no service will be started)"
  # A policy-rc.d that forbids every service start; ours is removed again on exit, an
  # existing one is left as it was.
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# cyrusrepl hack/cluster.sh: no service starts during install\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    own_policy=1
  fi
  local rc=0
  (
    export DEBIAN_FRONTEND=noninteractive
    # wait for a concurrent apt/dpkg (another install on this machine) instead of failing
    apt=(apt-get -o DPkg::Lock::Timeout=300 -y -q)
    "${apt[@]}" install --no-install-recommends "${missing[@]}" >"$D/logs/apt.log" 2>&1 ||
      { "${apt[@]}" update >>"$D/logs/apt.log" 2>&1 &&
        "${apt[@]}" install --no-install-recommends "${missing[@]}" >>"$D/logs/apt.log" 2>&1; }
  ) || rc=$?
  [ "$own_policy" = 1 ] && rm -f "$policy"
  if [ "$rc" != 0 ]; then
    tail -n 20 "$D/logs/apt.log" >&2
    die "apt-get install ${missing[*]} failed (log: $D/logs/apt.log)"
  fi
  [ -x /usr/lib/cni/loopback ] || die "containernetworking-plugins installed but /usr/lib/cni/loopback is missing"
  log "installed ${missing[*]}"
}

check_ports() {
  local p busy=()
  for p in "${PORTS[@]}"; do
    if [ -n "$(ss -Hltn "sport = :$p")" ]; then busy+=("$p"); fi
  done
  if [ ${#busy[@]} -gt 0 ]; then
    ss -Hltnp | grep -E ":($(IFS='|'; echo "${busy[*]}"))\b" >&2 || true
    die "ports already in use: ${busy[*]} (another cluster or envtest running? try: hack/cluster.sh down)"
  fi
}

# ---------------------------------------------------------------- PKI (openssl, EC P-256)

# cert NAME CN ORG SANS USAGE: a key and a certificate signed by the cluster CA.
cert() {
  local name=$1 cn=$2 org=$3 sans=$4 usage=$5 subj
  local p="$D/pki"
  [ -s "$p/$name.crt" ] && return 0
  subj="/CN=$cn"
  [ -n "$org" ] && subj="/O=$org$subj"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$p/$name.key" 2>/dev/null
  openssl req -new -key "$p/$name.key" -subj "$subj" -out "$p/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    [ -n "$sans" ] && echo "subjectAltName=$sans"
  } >"$p/$name.ext"
  openssl x509 -req -in "$p/$name.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$p/$name.ext" -out "$p/$name.crt" 2>/dev/null
  rm -f "$p/$name.csr" "$p/$name.ext"
}

make_pki() {
  local p="$D/pki"
  mkdir -p "$p"
  chmod 0700 "$p"
  if [ ! -s "$p/ca.crt" ]; then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$p/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$p/ca.key" -subj "/CN=cyrusrepl-test-ca" -days 3650 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      -out "$p/ca.crt" 2>/dev/null
  fi
  if [ ! -s "$p/sa.key" ]; then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$p/sa.key" 2>/dev/null
    openssl pkey -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
  fi
  local svc="DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert apiserver kube-apiserver "" "DNS:localhost,$svc,IP:127.0.0.1,IP:10.0.0.1" serverAuth
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters "" clientAuth
  cert admin cyrusrepl-admin system:masters "" clientAuth
  cert kube-controller-manager system:kube-controller-manager "" "" clientAuth
  cert kube-scheduler system:kube-scheduler "" "" clientAuth
  cert kubelet-client "system:node:$NODE_NAME" system:nodes "" clientAuth
  cert kubelet-serving "$NODE_NAME" "" "DNS:localhost,IP:127.0.0.1" serverAuth
  chmod 0600 "$p"/*.key
}

# kubeconfig FILE CERTNAME: a kubeconfig for 127.0.0.1:6443 with the given client cert.
kubeconfig() {
  local file=$1 c=$2 p="$D/pki"
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: cyrusrepl
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 <"$p/ca.crt")
users:
- name: $c
  user:
    client-certificate-data: $(base64 -w0 <"$p/$c.crt")
    client-key-data: $(base64 -w0 <"$p/$c.key")
contexts:
- name: cyrusrepl
  context: {cluster: cyrusrepl, user: $c, namespace: default}
current-context: cyrusrepl
EOF
  chmod 0600 "$file"
}

# ---------------------------------------------------------------- configs

write_configs() {
  mkdir -p "$D/cni/net.d" "$D/containerd" "$D/kubelet" "$D/kcm-certs" "$D/sched-certs"
  # Loopback only: containerd reports NetworkReady, host-network pods never call CNI.
  cat >"$D/cni/net.d/10-loopback.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "cyrusrepl-loopback", "plugins": [{"type": "loopback"}]}
EOF
  cat >"$D/containerd/config.toml" <<EOF
version = 2
root = "$D/containerd/root"
state = "$D/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "$D/containerd/containerd.sock"

[ttrpc]
  address = "$D/containerd/containerd.sock.ttrpc"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$D/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # this VM lacks CAP_SYS_RESOURCE: negative oom_score_adj would kill runc's nsexec
  restrict_oom_score_adj = true
  enable_selinux = false

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$D/cni/net.d"
EOF
  local p="$D/pki"
  cat >"$D/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ
# this VM is cgroup v1 (hybrid layout) and has no systemd
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$D/containerd/containerd.sock
podLogsDir: $D/pod-logs
tlsCertFile: $p/kubelet-serving.crt
tlsPrivateKeyFile: $p/kubelet-serving.key
rotateCertificates: false
serverTLSBootstrap: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $p/ca.crt}
authorization:
  mode: Webhook
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
failSwapOn: false
serializeImagePulls: false
# images are imported, never pulled: keep them however full the disk gets
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  imagefs.available: 1%
  nodefs.inodesFree: 1%
shutdownGracePeriod: 0s
EOF
  kubeconfig "$D/admin.kubeconfig" admin
  kubeconfig "$D/kube-controller-manager.kubeconfig" kube-controller-manager
  kubeconfig "$D/kube-scheduler.kubeconfig" kube-scheduler
  kubeconfig "$D/kubelet.kubeconfig" kubelet-client
}

# ---------------------------------------------------------------- commands

curl_api() {
  curl -sf --max-time 2 --cacert "$D/pki/ca.crt" --cert "$D/pki/admin.crt" --key "$D/pki/admin.key" \
    "https://127.0.0.1:$APISERVER_PORT$1"
}
kctl() { "$BINDIR/kubectl" --kubeconfig "$D/admin.kubeconfig" "$@"; }
ctr_k8s() { ctr --address "$D/containerd/containerd.sock" -n k8s.io "$@"; }
node_ready() {
  [ "$(kctl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

do_up() {
  [ "$(id -u)" = 0 ] || die "must run as root (containerd, runc and the kubelet need it)"
  if recorded_pid kube-apiserver >/dev/null 2>&1 && recorded_pid kubelet >/dev/null 2>&1; then
    log "already running in $D"
    echo "$D/admin.kubeconfig"
    return 0
  fi
  # a half-started or crashed cluster: clean up before starting again
  do_down >/dev/null 2>&1 || true
  mkdir -p "$D/logs" "$D/pids"
  [ ${#D} -le 60 ] || die "cluster dir path too long for unix sockets (${#D} > 60 chars): $D"
  install_packages
  check_ports
  log "building/locating Kubernetes binaries"
  BINDIR=$("$HACK/k8s-binaries.sh" etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl) ||
    die "hack/k8s-binaries.sh failed"
  log "binaries in $BINDIR"
  echo "$BINDIR" >"$D/bindir"

  # fresh cluster state on every up; PKI and the containerd image store are kept
  rm -rf "$D/etcd" "$D/kubelet" "$D/pod-logs" "$D/containerd/state"
  mkdir -p "$D/kubelet" "$D/pod-logs"
  make_pki
  write_configs
  log "PKI and configs in $D"

  start etcd "$BINDIR/etcd" --name default --data-dir "$D/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-cluster "default=http://127.0.0.1:$ETCD_PEER" --listen-metrics-urls "http://127.0.0.1:$ETCD_METRICS" \
    --unsafe-no-fsync
  # containerd is independent of the control plane; start it early to overlap start-up
  start containerd containerd --config "$D/containerd/config.toml" --log-level info
  wait_for etcd "etcd healthy" curl -sf --max-time 2 "http://127.0.0.1:$ETCD_CLIENT/health"

  local p="$D/pki"
  start kube-apiserver "$BINDIR/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_CLIENT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --endpoint-reconciler-type none \
    --tls-cert-file "$p/apiserver.crt" --tls-private-key-file "$p/apiserver.key" \
    --client-ca-file "$p/ca.crt" \
    --kubelet-preferred-address-types Hostname \
    --kubelet-certificate-authority "$p/ca.crt" \
    --kubelet-client-certificate "$p/apiserver-kubelet-client.crt" --kubelet-client-key "$p/apiserver-kubelet-client.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$p/sa.pub" --service-account-signing-key-file "$p/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --allow-privileged=true --profiling=false
  wait_for containerd "containerd ready" ctr --address "$D/containerd/containerd.sock" version
  ensure_pause_image
  wait_for kube-apiserver "kube-apiserver ready" curl_api /readyz

  start kube-controller-manager "$BINDIR/kube-controller-manager" \
    --kubeconfig "$D/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig "$D/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig "$D/kube-controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --cert-dir "$D/kcm-certs" \
    --service-account-private-key-file "$p/sa.key" --root-ca-file "$p/ca.crt" \
    --use-service-account-credentials=true \
    --cluster-signing-cert-file "$p/ca.crt" --cluster-signing-key-file "$p/ca.key" \
    --leader-elect=false --profiling=false
  start kube-scheduler "$BINDIR/kube-scheduler" \
    --kubeconfig "$D/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig "$D/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig "$D/kube-scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" --cert-dir "$D/sched-certs" \
    --leader-elect=false --profiling=false
  start kubelet "$BINDIR/kubelet" \
    --config "$D/kubelet-config.yaml" --kubeconfig "$D/kubelet.kubeconfig" \
    --hostname-override "$NODE_NAME" --root-dir "$D/kubelet" --cert-dir "$D/kubelet/pki" --v 1

  wait_for kube-controller-manager "kube-controller-manager healthy" curl -skf --max-time 2 "https://127.0.0.1:$KCM_PORT/healthz"
  wait_for kube-scheduler "kube-scheduler healthy" curl -skf --max-time 2 "https://127.0.0.1:$SCHED_PORT/healthz"
  wait_for kubelet "kubelet healthy" curl -sf --max-time 2 "http://127.0.0.1:$KUBELET_HEALTHZ/healthz"
  wait_for kubelet "node $NODE_NAME Ready" node_ready
  wait_for kube-controller-manager "default service account exists" kctl -n default get serviceaccount default
  log "cluster up; kubeconfig: $D/admin.kubeconfig"
  echo "$D/admin.kubeconfig"
}

# ensure_pause_image: the sandbox image is built locally (hack/images.sh) and imported,
# since nothing can be pulled here.
ensure_pause_image() {
  if ctr_k8s images ls -q 2>/dev/null | grep -x "$PAUSE_IMAGE" >/dev/null; then
    log "pause image present"
    return 0
  fi
  "$HACK/images.sh" --cluster "$D" pause >"$D/logs/images-pause.log" 2>&1 ||
    fail_component images-pause "building/importing $PAUSE_IMAGE failed (log: $D/logs/images-pause.log)"
  log "pause image imported"
}

# kill_container_tasks: every task containerd still runs is killed and deleted through
# ctr, so that its shim exits; then the containers and their snapshots are removed.
kill_container_tasks() {
  recorded_pid containerd >/dev/null || return 0
  local ns ids id left=""
  for ns in $(ctr --address "$D/containerd/containerd.sock" namespaces ls -q 2>/dev/null); do
    ids=$(ctr --address "$D/containerd/containerd.sock" -n "$ns" tasks ls -q 2>/dev/null || true)
    [ -n "$ids" ] || continue
    for id in $ids; do
      # --force: SIGKILL a running task, wait for it, then delete it so its shim exits.
      # The CRI plugin may delete an exited task itself first ("cannot delete a deleted
      # process"), so success is judged by the task list below, not by this exit code.
      ctr --address "$D/containerd/containerd.sock" -n "$ns" tasks delete --force "$id" >/dev/null 2>&1 || true
    done
    for _ in $(seq 1 100); do
      left=$(ctr --address "$D/containerd/containerd.sock" -n "$ns" tasks ls -q 2>/dev/null || true)
      [ -z "$left" ] && break
      sleep 0.1
    done
    if [ -n "$left" ]; then
      log "container tasks still present in namespace $ns: $left"
    else
      log "killed $(wc -w <<<"$ids") container task(s) in namespace $ns"
    fi
    for id in $(ctr --address "$D/containerd/containerd.sock" -n "$ns" containers ls -q 2>/dev/null); do
      ctr --address "$D/containerd/containerd.sock" -n "$ns" containers delete "$id" >/dev/null 2>&1 || true
    done
  done
}

# shim_pids: containerd shims serving our socket (started by our containerd).
shim_pids() {
  local f pid
  # one grep over every command line (NUL-separated argv, hence -a); then keep the shims
  for f in $(grep -l -a -F -e "$D/containerd/containerd.sock" /proc/[0-9]*/cmdline 2>/dev/null); do
    pid=${f#/proc/}; pid=${pid%/cmdline}
    grep -q -a -F containerd-shim "$f" 2>/dev/null && alive "$pid" && echo "$pid"
  done
  return 0
}

unmount_all() {
  local m n=0
  # deepest first; the kubelet makes its root dir a shared bind mount of itself
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
    n=$((n + 1))
  done < <(awk -v d="$D/" '{ gsub(/\\040/, " ", $5); if (index($5 "/", d) == 1) print $5 }' /proc/self/mountinfo | sort -r)
  [ "$n" -gt 0 ] && log "unmounted $n mount(s) under $D"
  return 0
}

remove_kubepods_cgroups() {
  local c
  for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$c" ] || continue
    find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

do_down() {
  [ -d "$D" ] || { log "nothing to stop ($D does not exist)"; return 0; }
  stop_component kubelet
  kill_container_tasks
  stop_component containerd
  # shims still alive here (containerd had died, or a task would not go): kill the
  # container processes they parent first, then the shim itself
  local pid child killed=0 task ns
  for pid in $(shim_pids); do
    for child in $(ps -o pid= --ppid "$pid"); do
      log "killing leftover container process $child (child of shim $pid)"
      kill -KILL "$child" 2>/dev/null || true
    done
    log "killing leftover shim pid $pid"
    kill -KILL "$pid" 2>/dev/null || true
    killed=1
  done
  # a killed shim leaves runc's state (and cgroups) behind: delete our tasks through runc
  if [ "$killed" = 1 ]; then
    for task in "$D"/containerd/state/io.containerd.runtime.v2.task/*/*; do
      [ -d "$task" ] || continue
      ns=$(basename "$(dirname "$task")")
      runc --root "/run/containerd/runc/$ns" delete --force "$(basename "$task")" >/dev/null 2>&1 || true
      # the shim's socket: /run/containerd/s/sha256(<containerd address>/<ns>/<id>)
      rm -f "/run/containerd/s/$(printf '%s' "$D/containerd/containerd.sock/$ns/$(basename "$task")" | sha256sum | cut -d' ' -f1)"
    done
  fi
  stop_component kube-scheduler
  stop_component kube-controller-manager
  stop_component kube-apiserver
  stop_component etcd
  unmount_all
  remove_kubepods_cgroups
  # containerd 1.6 hard-codes these runtime dirs; rmdir removes them only when empty
  rmdir /run/containerd/runc/k8s.io /run/containerd/runc /run/containerd/s /run/containerd 2>/dev/null || true
  log "down"
}

do_status() {
  local c pid rc=0
  for c in "${COMPONENTS[@]}"; do
    if pid=$(recorded_pid "$c"); then
      printf '%-24s running (pid %s)\n' "$c" "$pid"
    else
      printf '%-24s stopped\n' "$c"; rc=1
    fi
  done
  if [ "$rc" = 0 ]; then
    BINDIR=$(cat "$D/bindir")
    if node_ready; then echo "node $NODE_NAME Ready"; else echo "node $NODE_NAME not Ready"; rc=1; fi
    echo "kubeconfig: $D/admin.kubeconfig"
  fi
  return "$rc"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
purge=0 D=""
for a in "$@"; do
  case "$a" in
    --purge) purge=1 ;;
    -*) usage ;;
    *) [ -z "$D" ] || usage; D=$a ;;
  esac
done
D=${D:-${CYRUSREPL_CLUSTER_DIR:-/tmp/cyrusrepl-cluster}}
if [ "$cmd" = up ]; then mkdir -p "$D"; fi
if [ -d "$D" ]; then D=$(cd "$D" && pwd); fi

case "$cmd" in
  up) do_up ;;
  down)
    do_down
    if [ "$purge" = 1 ] && [ -d "$D" ]; then
      # only a directory this script made, and only with nothing mounted below it
      [ -d "$D/pids" ] || die "refusing to purge $D: it does not look like a cluster directory (no pids/)"
      if grep -qF " $D/" /proc/self/mountinfo; then die "refusing to purge $D: still mounted below it"; fi
      rm -rf "$D"
      log "removed $D"
    fi ;;
  status) do_status ;;
  kubeconfig)
    [ -f "$D/admin.kubeconfig" ] || die "no kubeconfig in $D (run: hack/cluster.sh up $D)"
    echo "$D/admin.kubeconfig" ;;
  *) usage ;;
esac
