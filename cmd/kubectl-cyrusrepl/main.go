// Command kubectl-cyrusrepl is a kubectl plugin (`kubectl cyrusrepl ...`) for cyrusrepl:
// the state of a ReplicationPair, resync or verify of users through UserResync objects,
// suspend/resume, the replicator's logs and a support bundle. Install it anywhere on PATH.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	replv1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/kubectlplugin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	cmd, pos, kubeconfig, kubecontext, opts, err := kubectlplugin.ParseArgs(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubectl-cyrusrepl: %v\n", err)
		return kubectlplugin.ExitUsage
	}
	if cmd == "help" || cmd == "-h" || cmd == "--help" {
		fmt.Print(kubectlplugin.Usage)
		return kubectlplugin.ExitOK
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubecontext})
	if opts.Namespace == "" {
		ns, _, err := cc.Namespace()
		if err != nil {
			fmt.Fprintf(os.Stderr, "kubectl-cyrusrepl: kubeconfig: %v\n", err)
			return kubectlplugin.ExitUsage
		}
		opts.Namespace = ns
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubectl-cyrusrepl: kubeconfig: %v\n", err)
		return kubectlplugin.ExitUsage
	}
	scheme := runtime.NewScheme()
	if err := errors.Join(replv1.AddToScheme(scheme), clientgoscheme.AddToScheme(scheme)); err != nil {
		fmt.Fprintf(os.Stderr, "kubectl-cyrusrepl: %v\n", err)
		return kubectlplugin.ExitUsage
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubectl-cyrusrepl: %v\n", err)
		return kubectlplugin.ExitUsage
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubectl-cyrusrepl: %v\n", err)
		return kubectlplugin.ExitUsage
	}
	p := &kubectlplugin.Plugin{Client: c, Kube: kube, Out: os.Stdout, Opts: opts}
	code, err := p.Run(ctx, cmd, pos)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubectl-cyrusrepl %s: %v\n", cmd, err)
	}
	return code
}
