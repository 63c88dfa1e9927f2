#!/usr/bin/env bash
# Installs (or upgrades) the operator from charts/cyrusrepl into the local cluster started
# by hack/cluster.sh: builds and imports cyrusrepl:dev, then `helm upgrade --install`
# with charts/cyrusrepl/ci/local-cluster-values.yaml (hostNetwork, 127.0.0.1 API server).
#
#   hack/deploy-local.sh [--cluster DIR] [--wait] [extra helm args...]
#   hack/deploy-local.sh --uninstall [--cluster DIR]
set -euo pipefail

HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HACK/.." && pwd)
dir=${CYRUSREPL_CLUSTER_DIR:-/tmp/cyrusrepl-cluster}
NAMESPACE=${CYRUSREPL_NAMESPACE:-cyrusrepl-system}
RELEASE=${CYRUSREPL_RELEASE:-cyrusrepl}
uninstall=0 wait_flag=() extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cluster) dir=${2:?--cluster needs a directory}; shift 2 ;;
    --uninstall) uninstall=1; shift ;;
    --wait) wait_flag=(--wait --timeout 3m); shift ;;
    *) extra+=("$1"); shift ;;
  esac
done
kubeconfig=$("$HACK/cluster.sh" kubeconfig "$dir")
helm() { "$HACK/helm.sh" --kubeconfig "$kubeconfig" "$@"; }

if [ "$uninstall" = 1 ]; then
  helm uninstall "$RELEASE" --namespace "$NAMESPACE" --ignore-not-found
  exit 0
fi
"$HACK/images.sh" --cluster "$dir" dev
helm upgrade --install "$RELEASE" "$REPO/charts/cyrusrepl" --namespace "$NAMESPACE" --create-namespace \
  -f "$REPO/charts/cyrusrepl/ci/local-cluster-values.yaml" "${wait_flag[@]}" "${extra[@]}"
echo "kubeconfig: $kubeconfig" >&2
