#!/usr/bin/env bash
# Runs helm v3, building it from the Go module proxy into a versioned cache the first
# time (Debian bookworm has no helm package; about 1.5 minutes and 0.7 GB of build cache
# cold, nothing when cached).
#
#   hack/helm.sh [helm args...]     e.g. hack/helm.sh lint charts/cyrusrepl
#   hack/helm.sh --path             build if needed and print the binary's path
#
# Helm's own config/cache/data directories are kept inside the cache directory, so a run
# never touches ~/.config/helm and never needs a repository index.
set -euo pipefail

HELM_VERSION=${HELM_VERSION:-v3.22.0}
CACHE_ROOT=${CYRUSREPL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cyrusrepl}
DIR="$CACHE_ROOT/helm/$HELM_VERSION"
HELM="$DIR/helm"

if [ ! -x "$HELM" ]; then
  mkdir -p "$DIR"
  exec 9>"$DIR/.build.lock"
  flock 9
  if [ ! -x "$HELM" ]; then
    echo "[helm] building helm $HELM_VERSION from the Go module proxy into $DIR" >&2
    # Like helm's Makefile: the Kubernetes version `helm template` and `helm lint` assume
    # comes from helm's client-go (v0.X.Y -> 1.X); without it they assume 1.20.
    gomod=$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    client_go=$(awk '$1 == "k8s.io/client-go" {print $2}' "$gomod")
    k8s_minor=${client_go#v0.}; k8s_minor=${k8s_minor%%.*}
    [[ "$k8s_minor" =~ ^[0-9]+$ ]] || { echo "[helm] cannot read k8s.io/client-go from $gomod" >&2; exit 1; }
    ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
    for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
      ldflags+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$k8s_minor"
    done
    GOBIN="$DIR" go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  fi
  exec 9>&-
fi

if [ "${1:-}" = --path ]; then echo "$HELM"; exit 0; fi
export HELM_CONFIG_HOME="$DIR/home/config" HELM_CACHE_HOME="$DIR/home/cache" HELM_DATA_HOME="$DIR/home/data"
exec "$HELM" "$@"
