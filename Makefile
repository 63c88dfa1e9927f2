# cyrusrepl — build, test and generate.
#
#   make demo     the quick start: a real Cyrus pair, a local cluster, the operator (see README)
#   make test     everything CI runs: lint, generated-file drift, unit + integration tests
#   make bench    benchmarks against stock sync_client (not part of make test)

SHELL := /usr/bin/env bash -o pipefail
GO ?= go
BIN ?= $(CURDIR)/bin
CONTROLLER_GEN ?= $(GO) run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0
K8S_COMPONENTS ?= kube-apiserver etcd
GOTEST_FLAGS ?= -count=1 -timeout 45m
PKGS ?= ./...

.PHONY: all build test test-race test-only test-default-namespace test-agent lint verify generate manifests cyrus k8s-binaries helm bench fuzz fuzz-ci clean demo demo-down e2e

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/...

## generate: deepcopy code from the API types
generate:
	@if [ -d api/v1alpha1 ] && ls api/v1alpha1/*.go >/dev/null 2>&1; then \
	  $(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...; fi

## manifests: CRDs, RBAC, and their copy in the Helm chart
manifests:
	@if [ -d api/v1alpha1 ] && ls api/v1alpha1/*.go >/dev/null 2>&1; then \
	  $(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases && \
	  $(CONTROLLER_GEN) rbac:roleName=cyrusrepl-manager paths=./controllers/... output:rbac:artifacts:config=config/rbac && \
	  if [ -x hack/sync-chart-crds.sh ]; then hack/sync-chart-crds.sh; fi; fi

lint:
	$(GO) vet ./...
	cd hack/imagebuild && $(GO) vet ./... && $(GO) test -count=1 ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## verify: regenerate everything and fail if the tree changed
verify: generate manifests
	$(GO) mod tidy
	@if [ -n "$$(git status --porcelain -- go.mod go.sum api config charts)" ]; then \
	  echo "generated files are out of date; run make generate manifests && go mod tidy:"; \
	  git status --porcelain -- go.mod go.sum api config charts; git diff --stat; exit 1; fi

## cyrus: install Debian's Cyrus packages when missing
cyrus:
	hack/cyrus-install.sh

## k8s-binaries: build kube-apiserver and etcd (cached) for envtest
k8s-binaries:
	hack/k8s-binaries.sh $(K8S_COMPONENTS)

## helm: build helm v3 (cached) for the chart tests
helm:
	hack/helm.sh --path

## test: what CI runs
test: lint verify cyrus k8s-binaries helm test-race test-only test-default-namespace test-agent fuzz-ci e2e

## test-race: the race detector over the packages whose tests need no server (their
## Cyrus tests are skipped here and run in test-only)
RACE_PKGS ?= ./internal/replication/ ./internal/setupcheck/ ./internal/executor/ ./internal/state/ ./internal/synclog/ ./internal/mboxdb/ ./internal/plan/ ./internal/mboxname/ ./internal/csync/ ./internal/twoskip/ ./internal/cyrusindex/ ./internal/operator/ ./internal/report/... ./internal/testutil/faultproxy/ ./internal/progress/ ./internal/agent/... ./internal/agentclient/
test-race:
	CYRUSREPL_UNIT_ONLY=1 $(GO) test -race -count=1 -timeout 20m $(RACE_PKGS)

test-only:
	KUBEBUILDER_ASSETS=$$(hack/k8s-binaries.sh $(K8S_COMPONENTS)) \
	  CYRUSREPL_REQUIRE_CYRUS=1 CYRUSREPL_REQUIRE_ENVTEST=1 CYRUSREPL_REQUIRE_HELM=1 \
	  $(GO) test $(GOTEST_FLAGS) $(PKGS)

## test-default-namespace: the Cyrus integration suites again, with every test pair in
## Cyrus 3's default namespace plus virtdomains and TLS on (CYRUSREPL_TLS=1: every
## replicator run, csync dial and IMAP session of the tests uses STARTTLS verified
## against the pair's CA); test-only runs them in netnews, plaintext, first.
## Tests that already run each namespace themselves are not repeated.
NAMESPACE_PKGS ?= ./internal/replication/ ./internal/mboxdb/ ./internal/cyrusindex/ ./cmd/replicator/ ./test/fault/
NAMESPACE_SKIP ?= TestCyrusNamesMatchCtlMboxlist|TestCyrusRollingSkipsSharedFolders|TestCLIAuditDottedDomainUsers
test-default-namespace:
	CYRUSREPL_REQUIRE_CYRUS=1 CYRUSREPL_NAMESPACE=default CYRUSREPL_TLS=1 \
	  $(GO) test $(GOTEST_FLAGS) -skip '$(NAMESPACE_SKIP)' $(NAMESPACE_PKGS)

## test-agent: the rolling, sync-log and evidence suites of internal/replication,
## cmd/replicator and test/fault again with the sync log, mailboxes.db and the master's
## settings through the master's agent (CYRUSREPL_VIA_AGENT=1: --master-config and
## --sync-log become --agent flags of an agent process beside the test pair; the
## package's own suites take the agent client as their sources). The agent's own tests
## run in test-only.
AGENT_PKGS ?= ./internal/replication/ ./cmd/replicator/ ./test/fault/
## Tests that start an agent of their own (…ThroughAgent) run in test-only already.
AGENT_RUN ?= Rolling|SyncLog|OnePass|InitialSyncRoundTrips|ReplicaCache|RenameRoundTrips|SyncSheer|TestCLISyncVerify|TestCLIChannelSilence|TestCyrusCompareAndDelete|TestCyrusMasterIntermediate|TestCyrusRow|TestCyrusMailboxesDBReadOnlyOnDisagreement|TestCyrusDeletedFolderRefusedKept
AGENT_SKIP ?= ThroughAgent
test-agent:
	CYRUSREPL_REQUIRE_CYRUS=1 CYRUSREPL_VIA_AGENT=1 \
	  $(GO) test $(GOTEST_FLAGS) -p 1 -run '$(AGENT_RUN)' -skip '$(AGENT_SKIP)' $(AGENT_PKGS)

## bench: BENCH_PARTS picks parts (csync onepass fleet lag operator; default all), e.g.
##   make bench BENCH_PARTS="onepass lag" CYRUSREPL_ONEPASS_SIZES=1000,10000
bench: cyrus
	hack/bench.sh $(BENCH_PARTS)

## demo: the quick start (docs/quickstart.md): Cyrus pair + local cluster + operator, guided
demo:
	hack/demo.sh up

## demo-down: stop everything `make demo` started (by PID)
demo-down:
	hack/demo.sh down

## e2e: real pods on the local cluster (needs root): the operator from the chart, a pair, resyncs
E2E_FLAGS ?= -count=1 -timeout 30m -v
e2e: cyrus
	hack/k8s-binaries.sh kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl etcd >/dev/null
	CYRUSREPL_REQUIRE_E2E=1 CYRUSREPL_REQUIRE_CYRUS=1 $(GO) test -tags e2e $(E2E_FLAGS) ./test/e2e/

## fuzz: every fuzz target for FUZZTIME each (default 30s); CI runs them for 10s each
fuzz:
	FUZZTIME=$(or $(FUZZTIME),30s) hack/fuzz.sh

fuzz-ci:
	FUZZTIME=10s hack/fuzz.sh

clean:
	rm -rf $(BIN)
