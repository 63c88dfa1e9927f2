// Command manager runs the cyrusrepl operator: the ReplicationPair and UserResync
// reconcilers, with leader election, health probes and Prometheus metrics.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/controllers"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
)

func main() {
	if err := run(ctrl.SetupSignalHandler(), os.Args[1:], nil); err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(1)
	}
}

// run starts the manager and blocks until ctx ends. cfg nil means the usual kubeconfig
// lookup (in-cluster, $KUBECONFIG, ~/.kube/config).
func run(ctx context.Context, args []string, cfg *rest.Config) error {
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	metricsAddr := fs.String("metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (0 disables it)")
	probeAddr := fs.String("health-probe-bind-address", ":8081", "address of the /healthz and /readyz endpoints")
	leaderElect := fs.Bool("leader-elect", true, "elect a leader so that only one manager reconciles at a time")
	leaderNS := fs.String("leader-election-namespace", "", "namespace of the leader-election Lease (default: the pod's namespace)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error (or a number: -1 is debug)")
	image := fs.String("replicator-image", envOr("REPLICATOR_IMAGE", "ghcr.io/cyrusrepl/replicator:latest"), "default replicator image for pairs without spec.replicator.image")
	hostNet := fs.Bool("replicator-host-network", os.Getenv("CYRUSREPL_HOST_NETWORK") == "true",
		"run replicator pods with hostNetwork (clusters without a pod network); they then also get this process's KUBERNETES_SERVICE_HOST/PORT")
	watchNS := fs.String("namespace", "", "watch only this namespace (default: all)")
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
	if cfg == nil {
		if cfg, err = ctrl.GetConfig(); err != nil {
			return fmt.Errorf("kubeconfig: %w", err)
		}
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
	pod := operator.PodOptions{Image: *image, HostNetwork: *hostNet}
	if *hostNet {
		pod.APIServerHost, pod.APIServerPort = os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	}
	if err := controllers.Setup(mgr, pod); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("healthz: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("readyz: %w", err)
	}
	log.Info("starting manager", "replicatorImage", *image, "leaderElection", *leaderElect)
	if err := mgr.Start(ctx); err != nil {
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
