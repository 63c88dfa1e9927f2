#!/usr/bin/env bash
# Runs every Go fuzz target of the fuzzed packages for a bounded time each
# (FUZZTIME, default 30s), one target at a time, so that the total is about
# FUZZTIME × number of targets plus build time. New crashers are written by `go test`
# under <package>/testdata/fuzz/<Target>/ and make this script fail.
#   FUZZTIME=30s hack/fuzz.sh            # all targets
#   FUZZTIME=10s hack/fuzz.sh ./internal/csync/
# Makefile: fuzz: ; hack/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-30s}
PARALLEL=${FUZZ_PARALLEL:-2}
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./internal/csync/ ./internal/replication/)
rc=0
for pkg in "${pkgs[@]}"; do
  targets=$(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
  for t in $targets; do
    echo "== $pkg $t ($FUZZTIME)"
    start=$(date +%s)
    if ! go test -run '^$' -fuzz "^${t}\$" -fuzztime "$FUZZTIME" -parallel "$PARALLEL" "$pkg"; then
      echo "FAIL: $pkg $t (a crasher, if any, is in ${pkg%/}/testdata/fuzz/$t/)" >&2
      rc=1
    fi
    echo "-- $t took $(( $(date +%s) - start ))s"
  done
done
exit $rc
