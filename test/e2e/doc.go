// Package e2e holds end-to-end tests that run real pods on the project's local
// single-node cluster (hack/cluster.sh). They need root and are built only with the
// `e2e` tag, so `go test ./...` never runs them:
//
//	go test -tags e2e -count=1 -v ./test/e2e/
//
// CYRUSREPL_E2E_CLUSTER_DIR picks the cluster directory (default /tmp/cyrusrepl-e2e).
package e2e
