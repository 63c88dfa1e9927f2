#!/usr/bin/env bash
# Benchmarks against stock Cyrus sync_client, measured in the same run on the same real
# master (not part of `make test`). Sizes through the environment, e.g.
#   CYRUSREPL_BENCH_USERS=100 CYRUSREPL_BENCH_MSGS=100 CYRUSREPL_BENCH_NEW=1000 hack/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
hack/cyrus-install.sh
export CYRUSREPL_REQUIRE_CYRUS=1
echo "== csync codec and relay"
go test -run '^$' -bench . -benchtime 1x -count 1 ./internal/csync/ | grep -E '^(Benchmark|ok|FAIL)' || true
echo "== replicator versus stock sync_client"
go test -run '^$' -bench BenchmarkVersusStock -benchtime 1x -count 1 -timeout 60m ./test/bench/
echo "== fleet: users × folders, initial / day of traffic / renames / audit, versus stock"
# sizes: CYRUSREPL_FLEET_SIZES (users per run, "50,200"), CYRUSREPL_FLEET_FOLDERS (20),
# CYRUSREPL_FLEET_MSGS (20 INBOX messages), CYRUSREPL_FLEET_PERFOLDER (3); see docs/performance.md
go test -run '^$' -bench BenchmarkFleet -benchtime 1x -count 1 -timeout 90m ./test/bench/ | grep -Ev '^(goos|goarch|pkg|cpu):'
echo "== operator: ReplicationPairs on envtest (CYRUSREPL_SCALE_PAIRS, default 1000)"
KUBEBUILDER_ASSETS=$(hack/k8s-binaries.sh) CYRUSREPL_REQUIRE_ENVTEST=1 \
	go test -run '^$' -bench BenchmarkOperatorScale -benchtime 1x -count 1 -timeout 60m ./test/scale/ | grep -Ev '^(goos|goarch|pkg|cpu):'
