package main

import (
	"flag"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/report/kube"
)

// --report-configmap: publish the summary to a ConfigMap in the pod's namespace
// (POD_NAMESPACE), where the manager folds it into the pair's or resync's status. The
// manager passes this flag to every replicator pod it creates.
func init() {
	sinkFlagHooks = append(sinkFlagHooks, func(fs *flag.FlagSet) func() (report.Sink, error) {
		name := fs.String("report-configmap", "", "publish the JSON report to this ConfigMap in $POD_NAMESPACE (in-cluster service account)")
		return func() (report.Sink, error) {
			if *name == "" {
				return nil, nil
			}
			return kube.NewInClusterSink(*name)
		}
	})
}
