#!/usr/bin/env bash
# Builds the Kubernetes binaries the tests need (kube-apiserver, etcd, and on request the
# node components) from the Go module proxy into a versioned cache directory, and prints
# that directory. A second run with the binaries present only prints the directory.
#
#   hack/k8s-binaries.sh [component ...]   default: kube-apiserver etcd
#   components: kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl etcd
#
# Why a throw-away tools module: k8s.io/kubernetes requires its staging repos at v0.0.0
# with relative replace lines that a dependent module ignores, so the module has to map
# each k8s.io/X to the published k8s.io/X v0.<minor>.<patch> itself. etcd gets its own
# module so that MVS does not drag the 3.6 server up to k8s's 3.7 client libraries.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
CACHE_ROOT=${CYRUSREPL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cyrusrepl}
OUT="$CACHE_ROOT/k8s/$K8S_VERSION-etcd-$ETCD_VERSION"

components=("$@")
[ ${#components[@]} -gt 0 ] || components=(kube-apiserver etcd)

log() { echo "[k8s-binaries] $*" >&2; }

# heartbeat LABEL CMD...: runs CMD, printing a progress line every 30 s, because a cold
# `go build` of Kubernetes is silent for minutes.
heartbeat() {
  local label=$1; shift
  local t0=$SECONDS
  ( while sleep 30; do log "$label: still building ($((SECONDS - t0))s)"; done ) &
  local hb=$!
  local rc=0
  "$@" || rc=$?
  kill "$hb" 2>/dev/null; wait "$hb" 2>/dev/null || true
  log "$label: done in $((SECONDS - t0))s (exit $rc)"
  return $rc
}

missing=()
for c in "${components[@]}"; do
  case "$c" in
    kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kubectl|etcd) ;;
    *) log "unknown component: $c"; exit 2 ;;
  esac
  [ -x "$OUT/$c" ] || missing+=("$c")
done
if [ ${#missing[@]} -eq 0 ]; then echo "$OUT"; exit 0; fi

mkdir -p "$OUT"
lock="$OUT/.build.lock"
exec 9>"$lock"
flock 9
work="$CACHE_ROOT/k8s/work"
mkdir -p "$work"

k8s_parts=()
want_etcd=0
for c in "${missing[@]}"; do
  [ -x "$OUT/$c" ] && continue   # built by a concurrent run while we waited for the lock
  if [ "$c" = etcd ]; then want_etcd=1; else k8s_parts+=("$c"); fi
done

if [ ${#k8s_parts[@]} -gt 0 ]; then
  log "building ${k8s_parts[*]} $K8S_VERSION from the Go module proxy (cold: about 5-10 minutes, 3 GB of build cache)"
  mod="$work/kubernetes-$K8S_VERSION"
  mkdir -p "$mod"
  staging_ver="v0${K8S_VERSION#v1}"
  if [ ! -f "$mod/go.sum" ]; then
    (
      cd "$mod"
      rm -f go.mod go.sum
      go mod init cyrusrepl.local/k8s-tools >/dev/null 2>&1
      go mod edit -go=1.26.0 -require="k8s.io/kubernetes@$K8S_VERSION"
      upstream_mod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
      # every ./staging/ replace of upstream becomes a replace to the published module
      # (the go.mod "replace ( k8s.io/X => ./staging/src/k8s.io/X )" lines, read as text)
      sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$upstream_mod" \
        | while read -r m; do
            if go list -m "$m@$staging_ver" >/dev/null 2>&1; then
              go mod edit -replace="$m=$m@$staging_ver"
            else
              log "skip $m (not published at $staging_ver)"
            fi
          done
      cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
      go mod tidy 2>&1 | grep -v "^go: downloading" >&2 || true
      [ -f go.sum ] && go list -m k8s.io/api >/dev/null
    ) || { rm -f "$mod/go.sum"; exit 1; }
  fi
  date_now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  ldflags="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=$date_now -X $p.gitCommit=module-proxy"
  done
  pkgs=()
  for c in "${k8s_parts[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  (cd "$mod" && heartbeat "${k8s_parts[*]}" go build -ldflags "$ldflags" -o "$OUT/" "${pkgs[@]}")
fi

if [ "$want_etcd" = 1 ]; then
  log "building etcd $ETCD_VERSION from the Go module proxy"
  mod="$work/etcd-$ETCD_VERSION"
  mkdir -p "$mod"
  (
    cd "$mod"
    if [ ! -f go.sum ]; then
      rm -f go.mod
      go mod init cyrusrepl.local/etcd-tools >/dev/null 2>&1
      go mod edit -go=1.26.0 -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
      for m in api/v3 client/pkg/v3 client/v3 pkg/v3; do
        go mod edit -replace="go.etcd.io/etcd/$m=go.etcd.io/etcd/$m@$ETCD_VERSION"
      done
      printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
      go mod tidy >&2 || { rm -f go.sum; exit 1; }
    fi
    heartbeat etcd go build -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3
  )
fi

for c in "${components[@]}"; do
  [ -x "$OUT/$c" ] || { log "missing after build: $OUT/$c"; exit 1; }
done
echo "$OUT"
