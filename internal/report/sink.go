package report

import "context"

// Sink receives the replicator's summary whenever it changes. The Kubernetes
// implementation (internal/report/kube) writes it to a ConfigMap the manager folds into
// the pair's or resync's status.
type Sink interface {
	Publish(ctx context.Context, s *Summary) error
}
