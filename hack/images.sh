#!/usr/bin/env bash
# Builds the project's container images without Docker and imports them into the local
# cluster (hack/cluster.sh) through containerd's `ctr`.
#
#   hack/images.sh [--cluster DIR] [--no-import] [TARGET ...]     TARGET: dev (default) pause smoke all
#
#   dev    cyrusrepl:dev — /manager, /replicator, /kubectl-cyrusrepl (those that exist in
#          cmd/), static (CGO_ENABLED=0), user 65532:65532, entrypoint /manager (or
#          /replicator while there is no manager); cyrusrepl-replicator:dev, the same
#          files with entrypoint /replicator (the image of the pods the operator creates);
#          and cyrusrepl-agent:dev, /agent alone (the master agent's sidecar image: user
#          65532, no shell, nothing to write, so it runs with a read-only root filesystem)
#   pause  registry.k8s.io/pause:3.10 — the sandbox image, built from hack/imagebuild/pause
#   smoke  cyrusrepl-smoke:dev — the e2e test's tiny workload (hack/imagebuild/smoke)
#
# Archives (docker-archive format) go to bin/images/NAME.tar. They are imported when the
# cluster at DIR ($CYRUSREPL_CLUSTER_DIR, default /tmp/cyrusrepl-cluster) is running;
# with an explicit --cluster a stopped cluster is an error.
set -euo pipefail

HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HACK/.." && pwd)
OUT=${CYRUSREPL_IMAGES_OUT:-$REPO/bin/images}
T0=$(date +%s.%N)
log() { printf '[images %6.2fs] %s\n' "$(awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN{print a-b}')" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

cluster_dir="" explicit_cluster=0 import=1 targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cluster) cluster_dir=${2:?--cluster needs a directory}; explicit_cluster=1; shift 2 ;;
    --no-import) import=0; shift ;;
    -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    dev|pause|smoke) targets+=("$1"); shift ;;
    all) targets+=(dev pause smoke); shift ;;
    *) die "unknown argument: $1 (see hack/images.sh --help)" ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(dev)
cluster_dir=${cluster_dir:-${CYRUSREPL_CLUSTER_DIR:-/tmp/cyrusrepl-cluster}}
mkdir -p "$OUT/rootfs" "$OUT/tools"

version=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo dev)
gobuild() { CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" "$@"; }

log "building the imagebuild tool"
(cd "$HACK/imagebuild" && go build -trimpath -o "$OUT/tools/imagebuild" .) || die "building hack/imagebuild failed"
ib="$OUT/tools/imagebuild"
# one fixed timestamp keeps image IDs stable for unchanged binaries
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || echo 0)}

archives=()
for t in "${targets[@]}"; do
  first=${#archives[@]}
  case "$t" in
    pause)
      (cd "$HACK/imagebuild" && gobuild -o "$OUT/rootfs/pause/pause" ./pause) || die "building pause failed"
      "$ib" -out "$OUT/pause.tar" -tag registry.k8s.io/pause:3.10 -user 65535:65535 -user-name pause \
        -add "$OUT/rootfs/pause/pause:/pause" -entrypoint /pause >/dev/null
      archives+=("$OUT/pause.tar") ;;
    smoke)
      (cd "$HACK/imagebuild" && gobuild -o "$OUT/rootfs/smoke/smoke" ./smoke) || die "building smoke failed"
      "$ib" -out "$OUT/smoke.tar" -tag cyrusrepl-smoke:dev -user 65532:65532 \
        -add "$OUT/rootfs/smoke/smoke:/smoke" -entrypoint /smoke >/dev/null
      archives+=("$OUT/smoke.tar") ;;
    dev)
      bindir="$OUT/rootfs/dev"
      rm -rf "$bindir"; mkdir -p "$bindir"
      mains=$(cd "$REPO" && go list -f '{{if eq .Name "main"}}{{.ImportPath}}{{end}}' ./cmd/...) ||
        die "go list ./cmd/... failed"
      [ -n "$mains" ] || die "no commands under cmd/"
      log "building $(echo $mains | tr ' ' '\n' | sed 's#.*/##' | tr '\n' ' ')(version $version)"
      # shellcheck disable=SC2086
      (cd "$REPO" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$bindir/" $mains) ||
        die "go build ./cmd/... failed"
      adds=()
      for b in manager replicator kubectl-cyrusrepl; do
        [ -x "$bindir/$b" ] && adds+=(-add "$bindir/$b:/$b")
      done
      [ ${#adds[@]} -gt 0 ] || die "neither manager nor replicator was built"
      labels=(-label "org.opencontainers.image.version=$version"
              -label "org.opencontainers.image.source=https://github.com/cyrusrepl/cyrusrepl")
      entry=/manager; [ -x "$bindir/manager" ] || entry=/replicator
      "$ib" -out "$OUT/cyrusrepl.tar" -tag cyrusrepl:dev -user 65532:65532 -entrypoint "$entry" "${adds[@]}" \
        -label "org.opencontainers.image.title=cyrusrepl" "${labels[@]}" >/dev/null
      archives+=("$OUT/cyrusrepl.tar")
      # The same files with /replicator as entrypoint: the operator starts replicator pods
      # with arguments only. The layer is shared, so the second image costs nothing.
      if [ -x "$bindir/replicator" ]; then
        "$ib" -out "$OUT/cyrusrepl-replicator.tar" -tag cyrusrepl-replicator:dev -user 65532:65532 \
          -entrypoint /replicator "${adds[@]}" -label "org.opencontainers.image.title=cyrusrepl-replicator" "${labels[@]}" >/dev/null
        archives+=("$OUT/cyrusrepl-replicator.tar")
      fi
      # The agent runs inside the master's pod: its image holds nothing else.
      if [ -x "$bindir/agent" ]; then
        "$ib" -out "$OUT/cyrusrepl-agent.tar" -tag cyrusrepl-agent:dev -user 65532:65532 \
          -entrypoint /agent -add "$bindir/agent:/agent" -label "org.opencontainers.image.title=cyrusrepl-agent" "${labels[@]}" >/dev/null
        archives+=("$OUT/cyrusrepl-agent.tar")
      fi ;;
  esac
  for a in "${archives[@]:$first}"; do log "built $t: $a ($(du -h "$a" | cut -f1))"; done
done

[ "$import" = 1 ] || exit 0
sock="$cluster_dir/containerd/containerd.sock"
if ! [ -S "$sock" ] || ! ctr --address "$sock" version >/dev/null 2>&1; then
  if [ "$explicit_cluster" = 1 ]; then die "no containerd running at $sock (start it: hack/cluster.sh up $cluster_dir)"; fi
  log "no cluster running at $cluster_dir; archives left in $OUT (import later: hack/images.sh)"
  exit 0
fi
for a in "${archives[@]}"; do
  ctr --address "$sock" -n k8s.io images import --platform "linux/$(go env GOARCH)" "$a" >/dev/null ||
    die "ctr images import $a failed"
  log "imported $(basename "$a") into $cluster_dir"
done
