// Command manager runs the cyrusrepl operator: the ReplicationPair and UserResync
// reconcilers, with leader election, health probes and Prometheus metrics.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/controllers"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	metricsAddr := fs.String("metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (0 disables it)")
	probeAddr := fs.String("health-probe-bind-address", ":8081", "address of the /healthz and /readyz endpoints")
	leaderElect := fs.Bool("leader-elect", true, "elect a leader so that only one manager reconciles at a time")
	leaderNS := fs.String("leader-election-namespace", "", "namespace of the leader-election Lease (default: the pod's namespace)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error (or a number: -1 is debug)")
	image := fs.String("replicator-image", envOr("REPLICATOR_IMAGE", "ghcr.io/cyrusrepl/replicator:latest"), "default replicator image for pairs without spec.replicator.image")
	watchNS := fs.String("namespace", "", "watch only this namespace (default: all)")
	hostNet := fs.Bool("replicator-host-network", envOr("CYRUSREPL_HOST_NETWORK", "false") == "true",
		"run replicator pods in the node's network namespace, passing on this pod's KUBERNETES_SERVICE_HOST/PORT (for clusters without a pod network)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	logger, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	ctrl.SetLogger(zapr.NewLogger(logger))
	log := ctrl.Log.WithName("setup")

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1.AddToScheme(scheme); err != nil {
		return err
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	opts := ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: *metricsAddr},
		HealthProbeBindAddress:  *probeAddr,
		LeaderElection:          *leaderElect,
		LeaderElectionID:        "cyrusrepl-manager.replication.cyrusrepl.io",
		LeaderElectionNamespace: *leaderNS,
		// Release the lease on a clean shutdown so a rolling update hands over at once.
		LeaderElectionReleaseOnCancel: true,
		Cache:                         controllers.CacheOptions(*watchNS),
	}
	mgr, err := ctrl.NewManager(cfg, opts)
	if err != nil {
		return fmt.Errorf("new manager: %w", err)
	}
	operator.Node = operator.NodeSettings{HostNetwork: *hostNet}
	if *hostNet {
		operator.Node.APIServerHost = os.Getenv("KUBERNETES_SERVICE_HOST")
		operator.Node.APIServerPort = os.Getenv("KUBERNETES_SERVICE_PORT")
	}
	if err := controllers.Setup(mgr, *image); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("healthz: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("readyz: %w", err)
	}
	log.Info("starting manager", "replicatorImage", *image, "leaderElection", *leaderElect, "replicatorHostNetwork", *hostNet)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	return nil
}

// newLogger builds a JSON zap logger at the given level.
func newLogger(level string) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		var n int
		if _, scanErr := fmt.Sscanf(level, "%d", &n); scanErr != nil {
			return nil, fmt.Errorf("--log-level %q: %w", level, err)
		}
		lvl = zapcore.Level(n)
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = nil
	cfg.EncoderConfig.TimeKey = "ts"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	return cfg.Build()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
