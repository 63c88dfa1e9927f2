// Package kubectlplugin implements `kubectl cyrusrepl`: status of a ReplicationPair, and
// resync or verify of users through UserResync objects, for people who live in kubectl.
// The commands only read and create API objects; the operator does the work.
package kubectlplugin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	replv1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
)

// Exit codes: 0 success, 1 the resync failed or found differences, 2 usage or API errors.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// Options are the flags of the commands.
type Options struct {
	Namespace string
	Wait      bool
	Timeout   time.Duration
	Poll      time.Duration
	Output    string // status: "" (text), json or yaml
	Follow    bool   // logs
	Tail      int64  // logs: last lines per pod; -1 all
	File      string // report: archive path
}

// Plugin runs the commands against one API client.
type Plugin struct {
	Client client.Client
	// Kube reads pod logs (logs, report); the controller-runtime client cannot.
	Kube kubernetes.Interface
	Out  io.Writer
	Opts Options
}

// Usage is the plugin's help text.
const Usage = `usage: kubectl cyrusrepl <command> [flags]

commands:
  status PAIR              health, backlog, last batch, decisions and mismatches of a pair
  resync PAIR USER...      full sync of the users (creates a UserResync, waits for its result)
  verify PAIR USER...      compare the users and report differences; changes nothing
  audit PAIR               audit every user of the master once now (sets the pair's
                           auditRequestedAt annotation; the manager creates the UserResync)
  suspend PAIR             stop the pair's replicator (the master's sync log keeps growing)
  resume PAIR              start it again; it consumes what accumulated
  logs PAIR                the replicator's log (the pair's Deployment)
  report PAIR              a support bundle (pair, resyncs, events, report ConfigMaps,
                           Deployment, Jobs, pods, replicator logs; no Secret) as .tar.gz

flags:
  -n, --namespace NS       namespace (default: the kubeconfig context's)
  --kubeconfig PATH        kubeconfig file (default: $KUBECONFIG or ~/.kube/config)
  --context NAME           kubeconfig context
  --wait=false             create the UserResync and return without waiting
  --timeout 30m            how long to wait for a resync to finish
  -o, --output json|yaml   status: print the ReplicationPair object instead of the summary
  -f, --follow             logs: stream new lines
  --tail N                 logs: the last N lines of each pod (default: all)
  --file PATH              report: where to write the archive
                           (default: cyrusrepl-report-PAIR-<time>.tar.gz)
`

// ParseArgs splits flags from positional arguments; flags may come anywhere.
func ParseArgs(args []string) (cmd string, pos []string, kubeconfig, kubecontext string, opts Options, err error) {
	fs := flag.NewFlagSet("kubectl-cyrusrepl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&opts.Namespace, "namespace", "", "")
	fs.StringVar(&opts.Namespace, "n", "", "")
	fs.StringVar(&kubeconfig, "kubeconfig", "", "")
	fs.StringVar(&kubecontext, "context", "", "")
	fs.BoolVar(&opts.Wait, "wait", true, "")
	fs.DurationVar(&opts.Timeout, "timeout", 30*time.Minute, "")
	fs.StringVar(&opts.Output, "output", "", "")
	fs.StringVar(&opts.Output, "o", "", "")
	fs.BoolVar(&opts.Follow, "follow", false, "")
	fs.BoolVar(&opts.Follow, "f", false, "")
	fs.Int64Var(&opts.Tail, "tail", -1, "")
	fs.StringVar(&opts.File, "file", "", "")
	opts.Poll = time.Second
	rest := args
	for len(rest) > 0 {
		if err = fs.Parse(rest); err != nil {
			return "", nil, "", "", opts, fmt.Errorf("%w\n\n%s", err, Usage)
		}
		rest = fs.Args()
		if len(rest) > 0 {
			pos = append(pos, rest[0])
			rest = rest[1:]
		}
	}
	if len(pos) == 0 {
		return "", nil, "", "", opts, errors.New("no command given\n\n" + Usage)
	}
	return pos[0], pos[1:], kubeconfig, kubecontext, opts, nil
}

// Run executes one command and returns the exit code.
func (p *Plugin) Run(ctx context.Context, cmd string, args []string) (int, error) {
	switch cmd {
	case "status":
		if len(args) != 1 {
			return ExitUsage, errors.New("status takes exactly one pair name")
		}
		if p.Opts.Output != "" {
			return p.StatusObject(ctx, args[0], p.Opts.Output)
		}
		return p.Status(ctx, args[0])
	case "suspend", "resume":
		if len(args) != 1 {
			return ExitUsage, fmt.Errorf("%s takes exactly one pair name", cmd)
		}
		return p.SetSuspend(ctx, args[0], cmd == "suspend")
	case "audit":
		if len(args) != 1 {
			return ExitUsage, errors.New("audit takes exactly one pair name")
		}
		return p.RequestAudit(ctx, args[0], time.Now())
	case "logs":
		if len(args) != 1 {
			return ExitUsage, errors.New("logs takes exactly one pair name")
		}
		return p.Logs(ctx, args[0])
	case "report":
		if len(args) != 1 {
			return ExitUsage, errors.New("report takes exactly one pair name")
		}
		return p.Report(ctx, args[0])
	case "resync", "verify":
		if len(args) < 2 {
			return ExitUsage, fmt.Errorf("%s takes a pair name and at least one user", cmd)
		}
		mode := replv1.ResyncSync
		if cmd == "verify" {
			mode = replv1.ResyncVerify
		}
		return p.Resync(ctx, args[0], args[1:], mode)
	case "help", "-h", "--help":
		fmt.Fprint(p.Out, Usage)
		return ExitOK, nil
	default:
		return ExitUsage, fmt.Errorf("unknown command %q\n\n%s", cmd, Usage)
	}
}

// Status prints the state of a pair.
func (p *Plugin) Status(ctx context.Context, name string) (int, error) {
	var pair replv1.ReplicationPair
	if err := p.Client.Get(ctx, client.ObjectKey{Namespace: p.Opts.Namespace, Name: name}, &pair); err != nil {
		return ExitUsage, fmt.Errorf("get replicationpair %s/%s: %w", p.Opts.Namespace, name, err)
	}
	RenderPair(p.Out, &pair)
	if c := apimeta.FindStatusCondition(pair.Status.Conditions, "Ready"); c == nil || c.Status != metav1.ConditionTrue {
		return ExitFailed, nil
	}
	return ExitOK, nil
}

// Resync creates a UserResync for the users and, with Wait, follows it to its end.
func (p *Plugin) Resync(ctx context.Context, pair string, users []string, mode replv1.ResyncMode) (int, error) {
	var pr replv1.ReplicationPair
	if err := p.Client.Get(ctx, client.ObjectKey{Namespace: p.Opts.Namespace, Name: pair}, &pr); err != nil {
		return ExitUsage, fmt.Errorf("get replicationpair %s/%s: %w", p.Opts.Namespace, pair, err)
	}
	ur := &replv1.UserResync{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:    p.Opts.Namespace,
			GenerateName: ResyncNamePrefix(pair, mode),
			Labels:       map[string]string{"app.kubernetes.io/created-by": "kubectl-cyrusrepl"},
		},
		Spec: replv1.UserResyncSpec{PairName: pair, Users: dedupe(users), Mode: mode},
	}
	if err := p.Client.Create(ctx, ur); err != nil {
		return ExitUsage, fmt.Errorf("create userresync: %w", err)
	}
	fmt.Fprintf(p.Out, "userresync.replication.cyrusrepl.io/%s created (%s of %d user(s) on pair %s)\n",
		ur.Name, strings.ToLower(string(mode)), len(ur.Spec.Users), pair)
	if !p.Opts.Wait {
		return ExitOK, nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.Opts.Timeout)
	defer cancel()
	lastPhase, lastStall := replv1.ResyncPhase(""), ""
	bar := newBarLine(p.Out)
	for {
		if err := p.Client.Get(ctx, client.ObjectKeyFromObject(ur), ur); err != nil {
			bar.end()
			return ExitUsage, fmt.Errorf("get userresync %s: %w", ur.Name, err)
		}
		if ur.Status.Phase != lastPhase && ur.Status.Phase != "" {
			bar.end()
			fmt.Fprintf(p.Out, "phase: %s\n", ur.Status.Phase)
			lastPhase = ur.Status.Phase
		}
		// A resync that waits for a person (e.g. a missing Secret) says why, once per cause.
		if c := apimeta.FindStatusCondition(ur.Status.Conditions, replv1.ConditionStalled); !ur.Status.Phase.Terminal() && c != nil &&
			c.Status == metav1.ConditionTrue && c.Reason+c.Message != lastStall {
			bar.end()
			fmt.Fprintf(p.Out, "stalled: %s: %s\n", c.Reason, c.Message)
			lastStall = c.Reason + c.Message
		}
		bar.show(ur.Status.Progress)
		if ur.Status.Phase.Terminal() {
			bar.end()
			break
		}
		select {
		case <-ctx.Done():
			bar.end()
			return ExitFailed, fmt.Errorf("userresync %s still %s after %s; follow it with: kubectl get userresync %s -w",
				ur.Name, orPending(ur.Status.Phase), p.Opts.Timeout, ur.Name)
		case <-time.After(p.Opts.Poll):
		}
	}
	RenderResync(p.Out, ur)
	if ur.Status.Phase != replv1.ResyncSucceeded {
		return ExitFailed, nil
	}
	return ExitOK, nil
}

// maxResyncName is the UserResync's metadata.name limit (its CRD's CEL rule); the API
// server appends generatedSuffix random characters to a generateName.
const (
	maxResyncName   = operator.MaxResyncName
	generatedSuffix = 5
)

// ResyncNamePrefix is the generateName of a UserResync the plugin creates:
// "<pair>-<mode>-", with the pair's name cut so that the generated name fits the
// UserResync's 52-character limit even for the longest pair name (48 characters).
func ResyncNamePrefix(pair string, mode replv1.ResyncMode) string {
	suffix := "-" + strings.ToLower(string(mode)) + "-"
	if keep := maxResyncName - generatedSuffix - len(suffix); len(pair) > keep {
		pair = strings.TrimRight(pair[:keep], "-.")
	}
	return pair + suffix
}

func orPending(p replv1.ResyncPhase) replv1.ResyncPhase {
	if p == "" {
		return replv1.ResyncPending
	}
	return p
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, u := range in {
		if u != "" && !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	return out
}

// RenderPair writes a human summary of a pair.
func RenderPair(w io.Writer, pair *replv1.ReplicationPair) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Pair:\t%s/%s\n", pair.Namespace, pair.Name)
	fmt.Fprintf(tw, "Master:\t%s\n", endpoint(pair.Spec.Master.Endpoint))
	if a := pair.Spec.Master.Agent; a != nil {
		fmt.Fprintf(tw, "Agent:\t%s\n", a.URL)
	}
	fmt.Fprintf(tw, "Replica:\t%s\n", endpoint(pair.Spec.Replica))
	fmt.Fprintf(tw, "Replicator:\t%s %s (%s)\n", pair.Status.Replicator.DeploymentName, pair.Status.Replicator.Mode, pair.Status.Replicator.State)
	if ps := pair.Status.Progress; ps != nil {
		label := "Progress:"
		if c := apimeta.FindStatusCondition(pair.Status.Conditions, replv1.ConditionSeeding); c != nil && c.Status == metav1.ConditionTrue {
			label = "Seeding:"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, ProgressBar(ps, clock()))
	}
	if pair.Status.Backlog != nil {
		fmt.Fprintf(tw, "Backlog:\t%d sync-log entries\n", *pair.Status.Backlog)
	}
	if lb := pair.Status.LastBatch; lb != nil {
		fmt.Fprintf(tw, "Last batch:\t%s, %d user(s), %d failed, %s\n", lb.Time.UTC().Format(time.RFC3339), lb.Users, lb.FailedUsers, lb.Result)
	}
	if v := pair.Spec.Verify; v != nil {
		fmt.Fprintf(tw, "Verify:\t%d user(s), schedule %s\n", len(v.Users), orNone(v.Schedule))
	}
	if v := pair.Status.Verify; v != nil && (v.LastResync != "" || v.Message != "") {
		fmt.Fprintf(tw, "Last verify:\t%s %s\n", orNone(v.LastResync), v.Message)
	}
	if a := pair.Status.Audit; a != nil && (a.LastResync != "" || a.Message != "") {
		fmt.Fprintf(tw, "Last audit:\t%s %s\n", orNone(a.LastResync), a.Message)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nConditions:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TYPE\tSTATUS\tREASON\tMESSAGE")
	for _, c := range pair.Status.Conditions {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	tw.Flush()
	renderReport(w, pair.Status.Report)
}

// RenderResync writes the result of a resync.
func RenderResync(w io.Writer, ur *replv1.UserResync) {
	fmt.Fprintf(w, "\n%s %s on pair %s: %s", ur.Name, strings.ToLower(string(ur.Spec.Mode)), ur.Spec.PairName, ur.Status.Phase)
	if ur.Status.StartTime != nil && ur.Status.CompletionTime != nil {
		fmt.Fprintf(w, " in %s", ur.Status.CompletionTime.Sub(ur.Status.StartTime.Time).Round(time.Second))
	}
	fmt.Fprintf(w, " (%d user(s), %d failed)\n", ur.Status.UsersTotal, ur.Status.UsersFailed)
	if len(ur.Status.Users) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  USER\tOUTCOME\tACTIONS\tDECISIONS\tMISMATCHES\tERROR")
		for _, u := range ur.Status.Users {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%s\n", u.User, u.Outcome, u.Actions, u.Decisions, u.Mismatches, u.Error)
		}
		tw.Flush()
	}
	renderReport(w, ur.Status.Report)
	if c := apimeta.FindStatusCondition(ur.Status.Conditions, "Ready"); c != nil && c.Message != "" && ur.Status.Phase == replv1.ResyncFailed {
		fmt.Fprintf(w, "\n%s\n", c.Message)
	}
	fmt.Fprintf(w, "\nmore: kubectl describe userresync %s -n %s (events)\n", ur.Name, ur.Namespace)
}

func renderReport(w io.Writer, r replv1.ReportStatus) {
	if len(r.DecisionCounts) > 0 || len(r.MismatchCounts) > 0 {
		fmt.Fprintf(w, "\nDecisions: %s\nMismatches: %s\n", counts(r.DecisionCounts), counts(r.MismatchCounts))
	}
	if len(r.RecentDecisions) > 0 {
		fmt.Fprintln(w, "\nRecent decisions:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  TIME\tUSER\tACTION\tEVIDENCE\tMASTER\tREPLICA\tREASON")
		for _, d := range r.RecentDecisions {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Time.UTC().Format(time.RFC3339), d.User, d.Action, d.Evidence, dash(d.MasterName), dash(d.ReplicaName), d.Reason)
		}
		tw.Flush()
	}
	if len(r.RecentMismatches) > 0 {
		fmt.Fprintln(w, "\nRecent mismatches:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  TIME\tUSER\tKIND\tMASTER\tREPLICA\tDETAIL")
		for _, m := range r.RecentMismatches {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", m.Time.UTC().Format(time.RFC3339), m.User, m.Kind, dash(m.MasterName), dash(m.ReplicaName), m.Detail)
		}
		tw.Flush()
	}
	if r.LastError != "" {
		fmt.Fprintf(w, "\nLast error: %s\n", r.LastError)
	}
}

func counts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// endpoint shows host:port with the port the replicator uses (2005 when unset).
func endpoint(e replv1.Endpoint) string {
	port, note := e.Port, ""
	if port == 0 {
		port, note = replv1.DefaultCsyncPort, " (default port)"
	}
	return net.JoinHostPort(e.Host, strconv.Itoa(int(port))) + note
}
