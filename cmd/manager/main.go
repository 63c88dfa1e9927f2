// Command manager runs the cyrusrepl operator: the ReplicationPair and UserResync
// reconcilers, with leader election, health probes and Prometheus metrics.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
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
	f, err := parseFlags(args)
	if err != nil {
		return err
	}
	logger, err := newLogger(f.logLevel)
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
	if f.leaderElect && f.leaderNS == "" && !inCluster() {
		return errors.New("--leader-elect out of a cluster needs --leader-election-namespace (or POD_NAMESPACE)")
	}
	pod, err := f.podOptions()
	if err != nil {
		return err
	}
	opts := ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsOptions(f.metricsAddr, f.metricsSecure),
		HealthProbeBindAddress:  f.probeAddr,
		LeaderElection:          f.leaderElect,
		LeaderElectionID:        "cyrusrepl-manager.replication.cyrusrepl.io",
		LeaderElectionNamespace: f.leaderNS,
		// Release the lease on a clean shutdown so a rolling update hands over at once.
		LeaderElectionReleaseOnCancel: true,
		Cache:                         controllers.CacheOptions(f.namespaces...),
		Controller:                    controllerOptions,
	}
	mgr, err := ctrl.NewManager(cfg, opts)
	if err != nil {
		return fmt.Errorf("new manager: %w", err)
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
	log.Info("starting manager", "replicatorImage", pod.Image, "leaderElection", f.leaderElect,
		"namespaces", f.namespaces, "allowHostPath", pod.AllowHostPath, "metricsSecure", f.metricsSecure)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	return nil
}

// controllerOptions are the controllers' defaults; the tests, which start several
// managers in one process, turn off the check that controller names are unique.
var controllerOptions config.Controller

// managerFlags are the manager's command line.
type managerFlags struct {
	metricsAddr, probeAddr, leaderNS, logLevel string
	leaderElect, metricsSecure                 bool
	namespaces                                 []string
	image, replicatorDefaults                  string
	hostNet, allowHostPath                     bool
}

func parseFlags(args []string) (*managerFlags, error) {
	f := &managerFlags{}
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", ":8443", "address of the Prometheus metrics endpoint (0 disables it)")
	fs.BoolVar(&f.metricsSecure, "metrics-secure", true,
		"serve metrics over HTTPS to callers the API server authenticates (TokenReview) and authorizes (SubjectAccessReview: get on the non-resource URL /metrics); false serves plain HTTP to anyone who reaches the port")
	fs.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "address of the /healthz and /readyz endpoints")
	// Out of a cluster (a kubeconfig, no pod) one manager is the usual case and there is
	// no pod namespace to hold the Lease: election is off unless asked for.
	fs.BoolVar(&f.leaderElect, "leader-elect", inCluster(), "elect a leader so that only one manager reconciles at a time (default: on in a pod, off out of a cluster)")
	fs.StringVar(&f.leaderNS, "leader-election-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the leader-election Lease (default: $POD_NAMESPACE, else the pod's namespace)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error (or a number: -1 is debug)")
	fs.StringVar(&f.image, "replicator-image", envOr("REPLICATOR_IMAGE", operator.DefaultReplicatorImage), "default replicator image for pairs without spec.replicator.image")
	fs.StringVar(&f.replicatorDefaults, "replicator-defaults", "",
		"YAML file of defaults for every replicator pod (pull policy and secrets, labels, annotations, priority class, scheduling, resources, user/group); see docs/operations.md")
	fs.BoolVar(&f.hostNet, "replicator-host-network", os.Getenv("CYRUSREPL_HOST_NETWORK") == "true",
		"run replicator pods with hostNetwork (clusters without a pod network); they then also get this process's KUBERNETES_SERVICE_HOST/PORT")
	fs.BoolVar(&f.allowHostPath, "allow-host-path", false,
		"let pairs mount hostPath and nfs volumes (spec.syncLog.volume, spec.masterConfig.volume); without it such a pair gets no pod and is Stalled")
	fs.Func("namespace", "watch only these namespaces (comma-separated, repeatable; default: all)", func(v string) error {
		for _, ns := range strings.Split(v, ",") {
			if ns = strings.TrimSpace(ns); ns != "" && !slices.Contains(f.namespaces, ns) {
				f.namespaces = append(f.namespaces, ns)
			}
		}
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return f, nil
}

// podOptions are the manager-wide replicator pod settings from the flags and the
// defaults file.
func (f *managerFlags) podOptions() (operator.PodOptions, error) {
	pod := operator.PodOptions{Image: f.image, HostNetwork: f.hostNet, AllowHostPath: f.allowHostPath}
	if f.replicatorDefaults != "" {
		d, err := operator.LoadPodDefaults(f.replicatorDefaults)
		if err != nil {
			return pod, fmt.Errorf("--replicator-defaults: %w", err)
		}
		pod.Defaults = &d
	}
	if f.hostNet {
		pod.APIServerHost, pod.APIServerPort = os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	}
	return pod, nil
}

// metricsOptions serves the metrics over HTTPS behind the API server's authentication
// and authorization (controller-runtime's filter), or in clear when secure is false.
func metricsOptions(addr string, secure bool) metricsserver.Options {
	o := metricsserver.Options{BindAddress: addr}
	if secure {
		o.SecureServing = true
		o.FilterProvider = filters.WithAuthenticationAndAuthorization
		// HTTP/1.1 only: the metrics endpoint gains nothing from HTTP/2, and its stream
		// handling has been a denial-of-service vector (CVE-2023-44487).
		o.TLSOpts = []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
	}
	return o
}

// inCluster says whether the manager runs in a pod (a service account is mounted).
func inCluster() bool {
	if os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		return false
	}
	_, err := os.Stat("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	return err == nil
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
