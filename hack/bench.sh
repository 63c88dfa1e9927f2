#!/usr/bin/env bash
# Benchmarks against stock Cyrus sync_client, measured in the same run on the same real
# master (not part of `make test`). Any failure (a program's non-zero exit, replicas that
# differ from the master, a build error) fails the script.
#
#   hack/bench.sh                      # every part: csync onepass fleet lag operator
#   hack/bench.sh onepass lag          # only these parts
#
# Sizes and repetitions through the environment (docs/performance.md):
#   CYRUSREPL_BENCH_RUNS        fleet runs per size (3; at least 3)
#   CYRUSREPL_ONEPASS_SIZES     INBOX sizes of the one-message passes ("1000,10000,50000")
#   CYRUSREPL_ONEPASS_PASSES    one-message passes per size (10; at least 3)
#   CYRUSREPL_FLEET_SIZES       users per fleet sub-benchmark ("200"), CYRUSREPL_FLEET_FOLDERS (20),
#                               CYRUSREPL_FLEET_MSGS (20), CYRUSREPL_FLEET_PERFOLDER (3)
#   CYRUSREPL_LAG_USERS, CYRUSREPL_LAG_RATE, CYRUSREPL_LAG_SECONDS   (10 users, 10/s, 30 s)
#   CYRUSREPL_LAG_AGENT         1 = the replicator through cmd/agent, 0 = local channel
#                               (unset: through the agent when the module has cmd/agent)
#   CYRUSREPL_SCALE_PAIRS       ReplicationPairs of the operator benchmark (1000)
set -euo pipefail
cd "$(dirname "$0")/.."
hack/cyrus-install.sh
export CYRUSREPL_REQUIRE_CYRUS=1

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(csync onepass fleet lag operator)

# quiet drops go test's header lines; awk always exits 0, so with pipefail the
# pipeline's status is go test's; fflush shows each line as it comes.
quiet() { awk '!/^(goos|goarch|pkg|cpu):/ { print; fflush() }'; }

gobench() { # name timeout package
  go test -run '^$' -bench "$1" -benchtime 1x -count 1 -timeout "$2" "$3" | quiet
}

echo "== $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null || echo '?') load $(cut -d' ' -f1-3 /proc/loadavg)"
for part in "${parts[@]}"; do
  case "$part" in
  csync)
    echo "== csync codec and relay"
    go test -run '^$' -bench . -benchtime 1x -count 1 ./internal/csync/ | awk '/^(Benchmark|ok|FAIL|---)/ { print; fflush() }'
    ;;
  onepass)
    echo "== one-message passes by folder size, versus stock sync_client -R -f"
    gobench BenchmarkOnePass 60m ./test/bench/
    ;;
  fleet)
    echo "== fleet: users × folders, initial / day of traffic / renames / audit, versus stock"
    gobench BenchmarkFleet 90m ./test/bench/
    ;;
  lag)
    echo "== replication lag under a steady stream, versus stock sync_client -R"
    gobench BenchmarkLag 30m ./test/bench/
    ;;
  operator)
    echo "== operator: ReplicationPairs on envtest (CYRUSREPL_SCALE_PAIRS, default 1000)"
    KUBEBUILDER_ASSETS=$(hack/k8s-binaries.sh) CYRUSREPL_REQUIRE_ENVTEST=1 \
      gobench BenchmarkOperatorScale 60m ./test/scale/
    ;;
  *)
    echo "unknown part $part (csync onepass fleet lag operator)" >&2
    exit 2
    ;;
  esac
done
