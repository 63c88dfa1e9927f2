#!/usr/bin/env bash
# The quick start: a real Cyrus master+replica, the master agent beside the master, a
# local single-node Kubernetes, the operator from the Helm chart, and a ReplicationPair
# that keeps the replica in step through the agent (its pod mounts nothing of the master's).
#
#   hack/demo.sh up [DIR]      (make demo)       everything, then a guided tour
#   hack/demo.sh down [DIR]    (make demo-down)  stop the cluster, the agent and the pair, by PID
#   hack/demo.sh env [DIR]     print the exports to use kubectl/pairctl by hand
#
# DIR defaults to $CYRUSREPL_DEMO_DIR or /tmp/cyrusrepl-demo: DIR/pair is the Cyrus pair
# (hack/cyrus-pair.sh), DIR/agent the master's agent (hack/agent.sh), DIR/cluster the
# cluster (hack/cluster.sh), DIR/bin the tools.
# Needs root (containerd, kubelet). Every listener is on 127.0.0.1, the agent's included.
# A first run on a new machine builds Kubernetes and helm from the Go module proxy (about
# 8-10 minutes, with progress lines); later runs take about a minute.
set -euo pipefail

HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HACK/.." && pwd)
NS=${CYRUSREPL_DEMO_NAMESPACE:-mail}
OPNS=cyrusrepl-system
RELEASE=cyrusrepl
PAIR=demo
WAIT=${CYRUSREPL_DEMO_WAIT:-180} # seconds, for every wait below
T0=$(date +%s)

step() { printf '\n\033[1m==> [%3ss] %s\033[0m\n' "$(($(date +%s) - T0))" "$*"; }
say() { printf '    %s\n' "$*"; }
die() { printf '\ndemo: ERROR: %s\n' "$*" >&2; exit 1; }
show() { printf '    $ %s\n' "$*"; "$@" 2>&1 | sed 's/^/      /'; }

cmd=${1:-up}
D=${2:-${CYRUSREPL_DEMO_DIR:-/tmp/cyrusrepl-demo}}
PAIR_DIR="$D/pair" AGENT_DIR="$D/agent" CLUSTER_DIR="$D/cluster" BIN="$D/bin"
REPLICATOR_UID=65532 # the chart's default user of the replicator pods

# diagnostics prints what helps when a wait runs out.
diagnostics() {
  echo "---- diagnostics" >&2
  kc get replicationpairs,userresyncs,deployments,jobs,pods -A -o wide >&2 || true
  kc -n "$NS" get events --sort-by=.lastTimestamp >&2 || true
  kc -n "$OPNS" logs deploy/cyrusrepl-manager --tail=40 >&2 || true
  kc -n "$NS" logs deploy/"$PAIR"-replicator --tail=40 >&2 || true
  echo "---- component logs: $CLUSTER_DIR/logs, agent: $AGENT_DIR/agent.log, Cyrus syslog: $PAIR_DIR/syslog.log" >&2
}

# until_ok WHAT CMD...: retry CMD every second until it succeeds, for at most $WAIT s.
until_ok() {
  local what=$1; shift
  local end=$(($(date +%s) + WAIT))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$end" ]; then diagnostics; die "$what: not reached within ${WAIT}s"; fi
    sleep 1
  done
}

kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG" "$@"; }
pairctl() { "$BIN/pairctl" -pair "$PAIR_DIR" "$@"; }

tools() {
  KBIN=$("$HACK/k8s-binaries.sh" kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl etcd)
  KUBECTL="$KBIN/kubectl"
  mkdir -p "$BIN"
  say "building pairctl and kubectl-cyrusrepl into $BIN (a few minutes with a cold Go build cache)"
  (cd "$REPO" && go build -o "$BIN/" ./hack/pairctl ./cmd/kubectl-cyrusrepl) || die "building pairctl/kubectl-cyrusrepl failed"
  ln -sf "$KUBECTL" "$BIN/kubectl"
  export PATH="$BIN:$PATH" # kubectl finds the plugin kubectl-cyrusrepl on PATH
}

# folder_count INSTANCE USER FOLDER: message count of a folder, from `pairctl list`.
# `pairctl list` names subfolders INBOX.<name>.
folder_count() { pairctl -on "$1" list "$2" 2>/dev/null | awk -v f="$3" '$1 == f || $1 == "INBOX." f {print $2}'; }
has_count() { [ "$(folder_count "$1" "$2" "$3")" = "$4" ]; }
no_folder() { pairctl -on "$1" list "$2" >/dev/null 2>&1 && [ -z "$(folder_count "$1" "$2" "$3")" ]; }
pair_field() { kc -n "$NS" get replicationpair "$PAIR" -o jsonpath="$1" 2>/dev/null; }
pair_ready() { [ "$(pair_field '{.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
pair_renamed() { pair_field '{.status.report.recentDecisions[*].action}' | grep -qw rename; }
resync_done() { case "$(kc -n "$NS" get userresync "$1" -o jsonpath='{.status.phase}' 2>/dev/null)" in Succeeded|Failed) return 0;; esac; return 1; }

up() {
  [ "$(id -u)" = 0 ] || die "needs root (containerd, runc and the kubelet run here)"
  step "installing what is missing: Cyrus 3.6 (Debian), Kubernetes v1.37.2 node binaries (built once, cached)"
  "$HACK/cyrus-install.sh"
  tools
  say "kubectl: $KUBECTL ($("$KUBECTL" version --client 2>/dev/null | head -1))"

  if [ -f "$PAIR_DIR/pair.env" ] || [ -f "$AGENT_DIR/agent.pid" ] || [ -d "$CLUSTER_DIR/pids" ]; then
    step "a previous demo is still there: stopping it first (every run starts fresh)"
    down >/dev/null
  fi
  step "starting a real Cyrus master and replica on 127.0.0.1 ($PAIR_DIR)"
  rm -rf "$PAIR_DIR"; mkdir -p "$PAIR_DIR"
  "$HACK/cyrus-pair.sh" start "$PAIR_DIR"
  # shellcheck disable=SC1091
  . "$PAIR_DIR/pair.env"
  say "master  sync_server $MASTER_SYNC  imap $MASTER_IMAP"
  say "replica sync_server $REPLICA_SYNC  imap $REPLICA_IMAP"
  local synclog="$MASTER_DIR/conf/sync/$CHANNEL"
  # Cyrus creates the channel directory on its first write, with umask 077; create it
  # now (as cyrus) so the agent serves it from the start.
  install -d -o cyrus -g "$(id -g cyrus)" -m 0700 "$MASTER_DIR/conf/sync" "$synclog"
  # The replicator's state claim: this cluster has no storage provisioner, so a hostPath
  # PersistentVolume bound to the claim in advance, owned by the replicator's user. (A
  # volume of the cluster's, not of the pair: the pair mounts nothing of the master's.)
  local statedir="$PAIR_DIR/replicator-state"
  install -d -o "$REPLICATOR_UID" -g "$REPLICATOR_UID" -m 0700 "$statedir"

  step "starting the master agent beside the master ($AGENT_DIR)"
  say "as Cyrus's user, on 127.0.0.1 (the address this cluster's pods reach: they share the"
  say "node's network), TLS from a throw-away CA, a random bearer token"
  "$HACK/agent.sh" start "$AGENT_DIR" "$PAIR_DIR"
  # shellcheck disable=SC1091
  . "$AGENT_DIR/agent.env"
  say "agent   $AGENT_URL  (pid $AGENT_PID, log $AGENT_LOG)"

  step "starting a single-node Kubernetes on 127.0.0.1 ($CLUSTER_DIR)"
  KUBECONFIG=$("$HACK/cluster.sh" up "$CLUSTER_DIR" | tail -1)
  export KUBECONFIG
  show kc get nodes

  step "building the images without Docker and importing them into containerd"
  "$HACK/images.sh" --cluster "$CLUSTER_DIR" dev

  step "installing the operator with helm (charts/cyrusrepl)"
  "$HACK/helm.sh" --kubeconfig "$KUBECONFIG" upgrade --install "$RELEASE" "$REPO/charts/cyrusrepl" \
    --namespace "$OPNS" --create-namespace -f "$REPO/charts/cyrusrepl/ci/local-cluster-values.yaml" \
    --set image.pullPolicy=Never --set hostNetwork=true \
    --set kubernetesService.host=127.0.0.1 --set-string kubernetesService.port=6443 \
    --wait --timeout "${WAIT}s" >/dev/null || { diagnostics; die "helm install failed"; }
  show kc -n "$OPNS" get deploy,pods

  step "creating the Secrets and the ReplicationPair (namespace $NS)"
  kc create namespace "$NS" --dry-run=client -o yaml | kc apply -f - >/dev/null
  kc -n "$NS" create secret generic cyrus-repl --from-literal=master-password="$REPL_PASSWORD" \
    --from-literal=replica-password="$REPL_PASSWORD" --dry-run=client -o yaml | kc apply -f - >/dev/null
  # the agent's token and the CA its certificate comes from (docs/agent-sidecar.md)
  kc -n "$NS" create secret generic cyrus-agent --from-file=token="$AGENT_TOKEN_FILE" \
    --from-file=ca.crt="$AGENT_CA" --dry-run=client -o yaml | kc apply -f - >/dev/null
  local manifest="$D/replicationpair.yaml"
  cat >"$manifest" <<EOF
apiVersion: v1
kind: PersistentVolume
metadata:
  name: $NS-$PAIR-state
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  claimRef: {namespace: $NS, name: $PAIR-state}
  hostPath: {path: $statedir, type: Directory}
---
apiVersion: replication.cyrusrepl.io/v1alpha1
kind: ReplicationPair
metadata:
  name: $PAIR
  namespace: $NS
spec:
  master:
    host: 127.0.0.1
    port: ${MASTER_SYNC##*:}
    username: $REPL_USER
    passwordSecretRef: {name: cyrus-repl, key: master-password}
    tls: {mode: None}   # the demo pair is plain, on loopback only (the pair shows PlaintextPassword)
    # the master's agent serves its sync-log channel (sync_log_channels: cyrusrepl) and
    # mailboxes.db over HTTPS: the replicator pod mounts nothing of the master's
    agent:
      url: $AGENT_URL
      tokenSecretRef: {name: cyrus-agent, key: token}
      caSecretRef: {name: cyrus-agent, key: ca.crt}
  replica:
    host: 127.0.0.1
    port: ${REPLICA_SYNC##*:}
    username: $REPL_USER
    passwordSecretRef: {name: cyrus-repl, key: replica-password}
    tls: {mode: None}
  workers: 2
EOF
  kc apply -f "$manifest"
  say "manifest: $manifest"

  step "delivering mail on the master (LMTP) and creating folders (IMAP)"
  for u in alice bob; do pairctl create-user "$u" >/dev/null; done
  pairctl deliver alice 3 >/dev/null
  pairctl create-folder alice Projects >/dev/null
  pairctl deliver bob 2 >/dev/null
  show pairctl list alice

  step "waiting for the replicator pod and for the replica to converge"
  until_ok "pair Ready" pair_ready
  until_ok "alice's INBOX on the replica" has_count replica alice INBOX 3
  until_ok "bob's INBOX on the replica" has_count replica bob INBOX 2
  show kc -n "$NS" get replicationpairs
  show kc -n "$NS" get pods -o wide
  show pairctl -on replica list alice
  say "the replicator pod's volumes (no hostPath: the agent serves the master's side):"
  show kc -n "$NS" get pods -l "replication.cyrusrepl.io/pair=$PAIR,app.kubernetes.io/component=replicator" \
    -o jsonpath='{range .items[0].spec.volumes[*]}{.name}{"\t"}{.secret.secretName}{.persistentVolumeClaim.claimName}{.emptyDir}{.configMap.name}{.hostPath.path}{"\n"}{end}'

  step "renaming a folder on the master: it reaches the replica as a rename (same uniqueid, nothing re-uploaded)"
  pairctl rename alice Projects Archive >/dev/null
  until_ok "Archive on the replica" has_count replica alice Archive 0
  until_ok "Projects gone from the replica" no_folder replica alice Projects
  until_ok "the rename decision on the pair" pair_renamed
  show pairctl -on replica list alice
  show kc -n "$NS" get replicationpair "$PAIR" -o jsonpath='{range .status.report.recentDecisions[*]}{.action}{"  "}{.user}{"  "}{.masterName}{" <- "}{.replicaName}{"  uniqueid="}{.uniqueID}{"  evidence="}{.evidence}{"\n"}{end}'
  say "the replicator's line for that batch (bodiesSent 0: nothing re-uploaded):"
  kc -n "$NS" logs deploy/"$PAIR"-replicator | grep '"type":"user","user":"alice","outcome":"synced"' | tail -1 | sed 's/^/      /'
  show kc -n "$NS" get events --field-selector involvedObject.kind=ReplicationPair

  step "a UserResync with kubectl apply"
  local rs="$D/userresync.yaml" name
  name="resync-$(date +%H%M%S)"
  cat >"$rs" <<EOF
apiVersion: replication.cyrusrepl.io/v1alpha1
kind: UserResync
metadata:
  name: $name
  namespace: $NS
spec:
  pairName: $PAIR
  mode: Sync
  users: [alice, bob]
EOF
  kc apply -f "$rs"
  until_ok "UserResync $name finished" resync_done "$name"
  show kc -n "$NS" get userresyncs
  show kc -n "$NS" get userresync "$name" -o jsonpath='{range .status.users[*]}{.user}{": "}{.outcome}{"  actions="}{.actions}{"  mismatches="}{.mismatches}{"\n"}{end}'

  step "the same with the kubectl plugin: kubectl cyrusrepl resync"
  # kubectl passes no flags in front of a plugin's name: the plugin reads $KUBECONFIG
  show "$KUBECTL" cyrusrepl -n "$NS" resync "$PAIR" alice --timeout 3m
  show "$KUBECTL" cyrusrepl -n "$NS" status "$PAIR"

  step "done in $(($(date +%s) - T0))s. Where to look next:"
  cat <<EOF
    export KUBECONFIG=$KUBECONFIG PATH=$BIN:\$PATH     # kubectl v1.37.2 and the plugin
    kubectl -n $NS get replicationpairs,userresyncs
    kubectl -n $NS describe replicationpair $PAIR       # conditions, decisions, events
    kubectl -n $NS logs deploy/$PAIR-replicator         # the replicator's JSON lines
    kubectl -n $OPNS logs deploy/cyrusrepl-manager      # the operator
    $BIN/pairctl -pair $PAIR_DIR deliver alice 5        # more mail on the master
    $BIN/pairctl -pair $PAIR_DIR -on replica list alice # what the replica holds
    Cyrus syslog: $PAIR_DIR/syslog.log   agent: $AGENT_LOG   cluster logs: $CLUSTER_DIR/logs/
    docs/quickstart.md explains all of this.

    Stop everything:  make demo-down   (hack/demo.sh down $D)
EOF
}

down() {
  step "stopping the cluster ($CLUSTER_DIR)"
  if [ -d "$CLUSTER_DIR" ]; then "$HACK/cluster.sh" down "$CLUSTER_DIR"; else say "not there"; fi
  step "stopping the master agent ($AGENT_DIR)"
  if [ -f "$AGENT_DIR/agent.pid" ]; then "$HACK/agent.sh" stop "$AGENT_DIR"; else say "not there"; fi
  step "stopping the Cyrus pair ($PAIR_DIR)"
  if [ -f "$PAIR_DIR/pair.env" ]; then "$HACK/cyrus-pair.sh" stop "$PAIR_DIR"; else say "not there"; fi
  say "stopped. Leftovers (images, PKI, mail spools) are in $D; remove them with: rm -rf $D"
}

case "$cmd" in
  up) up ;;
  down) down ;;
  env)
    KBIN=$("$HACK/k8s-binaries.sh" kubectl)
    echo "export KUBECONFIG=$("$HACK/cluster.sh" kubeconfig "$CLUSTER_DIR") PATH=$BIN:$KBIN:\$PATH CYRUSREPL_PAIR_DIR=$PAIR_DIR"
    ;;
  *) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
