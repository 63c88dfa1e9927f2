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
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./internal/csync/ ./internal/synclog/ ./internal/plan/ ./internal/twoskip/ ./internal/cyrusindex/ ./internal/agent/)
rc=0
for pkg in "${pkgs[@]}"; do
  # A package that does not build fails the script here (set -e); awk, unlike grep,
  # does not fail when a package has no fuzz target.
  list=$(go test -list '^Fuzz' "$pkg")
  targets=$(awk '/^Fuzz/' <<<"$list")
  for t in $targets; do
    echo "== $pkg $t ($FUZZTIME)"
    start=$(date +%s)
    # Go's fuzzing coordinator sometimes ends a clean run with "context deadline exceeded"
    # when -fuzztime runs out mid-exchange with a worker; that run wrote no crasher, so it
    # is run once more. A real crash says "Failing input written to" and fails at once.
    for try in 1 2; do
      out=$(go test -run '^$' -fuzz "^${t}\$" -fuzztime "$FUZZTIME" -parallel "$PARALLEL" "$pkg" 2>&1) && { echo "$out"; break; }
      echo "$out"
      if [ "$try" = 1 ] && grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written to' <<<"$out"; then
        echo "-- $t: coordinator deadline hiccup without a failing input; running it once more"
        continue
      fi
      echo "FAIL: $pkg $t (a crasher, if any, is in ${pkg%/}/testdata/fuzz/$t/)" >&2
      rc=1
      break
    done
    echo "-- $t took $(( $(date +%s) - start ))s"
  done
done
exit $rc
