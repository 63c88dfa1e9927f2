package kubectlplugin

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	replv1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
)

// cmdNS is the namespace of these tests: the resync tests of plugin_test.go look for
// any new UserResync in "default".
const cmdNS = "plugin-cmds"

func plugin(out io.Writer) *Plugin {
	return &Plugin{Client: k8s, Kube: kube, Out: out, Opts: Options{Namespace: cmdNS, Tail: -1}}
}

// needCmdNS creates cmdNS once.
func needCmdNS(t *testing.T) {
	t.Helper()
	needEnvtest(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: cmdNS}}
	if err := k8s.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// TestStatusOutputFormats: `status -o json|yaml` prints the pair object, typed, without
// managed fields; the text form shows the port the replicator uses.
func TestStatusOutputFormats(t *testing.T) {
	needCmdNS(t)
	ctx := context.Background()
	newPair(t, cmdNS, "fmt1") // master port 2005 set, replica port 2006
	for _, format := range []string{"json", "yaml"} {
		var out bytes.Buffer
		p := plugin(&out)
		p.Opts.Output = format
		code, err := p.Run(ctx, "status", []string{"fmt1"})
		if err != nil || code != ExitOK {
			t.Fatalf("-o %s: exit %d, %v", format, code, err)
		}
		var got replv1.ReplicationPair
		if err := yaml.Unmarshal(out.Bytes(), &got); err != nil { // YAML is a superset of JSON
			t.Fatalf("-o %s: %v\n%s", format, err, out.String())
		}
		if got.Kind != "ReplicationPair" || got.APIVersion != replv1.GroupVersion.String() || got.Name != "fmt1" ||
			got.Spec.Replica.Port != 2006 || len(got.ManagedFields) != 0 {
			t.Fatalf("-o %s: %s %s %s port %d managedFields %d", format, got.APIVersion, got.Kind, got.Name, got.Spec.Replica.Port, len(got.ManagedFields))
		}
		if format == "json" && !json.Valid(out.Bytes()) {
			t.Fatalf("-o json is not JSON:\n%s", out.String())
		}
	}
	p := plugin(io.Discard)
	p.Opts.Output = "xml"
	if code, err := p.Run(ctx, "status", []string{"fmt1"}); code != ExitUsage || err == nil {
		t.Fatalf("-o xml: exit %d, %v", code, err)
	}
	// The text form: a pair without a port shows the default the replicator uses.
	pair := &replv1.ReplicationPair{ObjectMeta: metav1.ObjectMeta{Namespace: cmdNS, Name: "fmt2"}, Spec: replv1.ReplicationPairSpec{
		Verify:  &replv1.ScheduledVerify{Schedule: "@daily", Users: []string{"canary"}},
		Master:  replv1.MasterEndpoint{Endpoint: replv1.Endpoint{Host: "m.example.org", IMAPPort: 143, Username: "repl", PasswordSecretRef: replv1.SecretKeyRef{Name: "s", Key: "k"}}},
		Replica: replv1.Endpoint{Host: "r.example.org", Port: 12005, Username: "repl", PasswordSecretRef: replv1.SecretKeyRef{Name: "s", Key: "k"}},
	}}
	if err := k8s.Create(ctx, pair); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := plugin(&out).Run(ctx, "status", []string{"fmt2"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"m.example.org:2005 (default port)", "r.example.org:12005\n", "1 user(s), schedule @daily"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("status lacks %q:\n%s", want, out.String())
		}
	}
}

// TestSuspendResume: suspend sets spec.suspend, resume removes it (no drift against a
// manifest without it).
func TestSuspendResume(t *testing.T) {
	needCmdNS(t)
	ctx := context.Background()
	newPair(t, cmdNS, "susp")
	get := func() *replv1.ReplicationPair {
		var p replv1.ReplicationPair
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: cmdNS, Name: "susp"}, &p); err != nil {
			t.Fatal(err)
		}
		return &p
	}
	var out bytes.Buffer
	if code, err := plugin(&out).Run(ctx, "suspend", []string{"susp"}); err != nil || code != ExitOK {
		t.Fatalf("suspend: %d %v", code, err)
	}
	if !get().Spec.Suspend || !strings.Contains(out.String(), "suspended") {
		t.Fatalf("not suspended; output %q", out.String())
	}
	if code, err := plugin(&out).Run(ctx, "resume", []string{"susp"}); err != nil || code != ExitOK {
		t.Fatalf("resume: %d %v", code, err)
	}
	if get().Spec.Suspend {
		t.Fatal("still suspended after resume")
	}
	if code, err := plugin(&out).Run(ctx, "suspend", []string{"nosuch"}); code != ExitUsage || err == nil {
		t.Fatalf("suspend of a missing pair: %d %v", code, err)
	}
}

// TestAuditRequest: `audit PAIR` sets the auditRequestedAt annotation to the time and
// names the UserResync the manager will create for it; a missing pair is an error.
func TestAuditRequest(t *testing.T) {
	needCmdNS(t)
	ctx := context.Background()
	newPair(t, cmdNS, "aud")
	var out bytes.Buffer
	now := time.Date(2026, 12, 6, 12, 30, 0, 0, time.UTC)
	if code, err := plugin(&out).RequestAudit(ctx, "aud", now); err != nil || code != ExitOK {
		t.Fatalf("audit: %d %v", code, err)
	}
	var p replv1.ReplicationPair
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: cmdNS, Name: "aud"}, &p); err != nil {
		t.Fatal(err)
	}
	at := "2026-12-06T12:30:00Z"
	if got := p.Annotations[replv1.AnnotationAuditRequestedAt]; got != at {
		t.Fatalf("annotation %q, want %q", got, at)
	}
	if !strings.Contains(out.String(), operator.RequestedAuditName("aud", at)) {
		t.Fatalf("output does not name the audit: %q", out.String())
	}
	if code, err := plugin(&out).Run(ctx, "audit", []string{"nosuch"}); code != ExitUsage || err == nil {
		t.Fatalf("audit of a missing pair: %d %v", code, err)
	}
}

// replicatorPod creates a pod like the pair's Deployment makes (no kubelet runs it).
func replicatorPod(t *testing.T, pair string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: cmdNS, Name: pair + "-replicator-abc12",
			Labels: map[string]string{operator.LabelPair: pair, operator.LabelComponent: "replicator"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "replicator", Image: "example.org/replicator:test"}}},
	}
	if err := k8s.Create(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	return pod
}

// TestLogs: without a replicator pod, logs says so; with one, it reads that pod's
// replicator log through the API server. (envtest has no kubelet: the API server answers
// an empty log for a pod that no node runs yet, so this checks the path, not content.)
func TestLogs(t *testing.T) {
	needCmdNS(t)
	ctx := context.Background()
	newPair(t, cmdNS, "logs1")
	code, err := plugin(io.Discard).Run(ctx, "logs", []string{"logs1"})
	if code != ExitFailed || err == nil || !strings.Contains(err.Error(), "no replicator pod") {
		t.Fatalf("logs without a pod: %d %v", code, err)
	}
	replicatorPod(t, "logs1")
	if code, err := plugin(io.Discard).Run(ctx, "logs", []string{"logs1"}); code != ExitOK || err != nil {
		t.Fatalf("logs of a pod: %d %v", code, err)
	}
}

// TestReportBundle: `report PAIR` writes one .tar.gz with the pair, its resyncs (not
// another pair's), the Events about them, the report ConfigMaps, the pods and, for a
// log it could not read, errors.txt; no Secret value.
func TestReportBundle(t *testing.T) {
	needCmdNS(t)
	ctx := context.Background()
	newPair(t, cmdNS, "rep1")
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: cmdNS, Name: "s"}, StringData: map[string]string{"master": "TOPSECRET-pw"}}
	if err := k8s.Create(ctx, sec); err != nil && !strings.Contains(err.Error(), "exists") {
		t.Fatal(err)
	}
	for _, rs := range []*replv1.UserResync{
		{ObjectMeta: metav1.ObjectMeta{Namespace: cmdNS, Name: "rep1-verify-x"}, Spec: replv1.UserResyncSpec{PairName: "rep1", Users: []string{"alice"}, Mode: replv1.ResyncVerify}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: cmdNS, Name: "other-verify-x"}, Spec: replv1.UserResyncSpec{PairName: "other", Users: []string{"bob"}, Mode: replv1.ResyncVerify}},
	} {
		if err := k8s.Create(ctx, rs); err != nil {
			t.Fatal(err)
		}
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: cmdNS, Name: "rep1-report"}, Data: map[string]string{"report.json": `{"kind":"cyrusrepl.io/report/v1"}`}}
	if err := k8s.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: cmdNS, Name: "rep1.abc"}, Reason: "NeedsAttention", Message: "1 new record(s) need a person",
		InvolvedObject: corev1.ObjectReference{Kind: "ReplicationPair", Namespace: cmdNS, Name: "rep1"}, Type: corev1.EventTypeWarning}
	if err := k8s.Create(ctx, ev); err != nil {
		t.Fatal(err)
	}
	pod := replicatorPod(t, "rep1")

	path := filepath.Join(t.TempDir(), "bundle.tar.gz")
	var out bytes.Buffer
	p := plugin(&out)
	p.Opts.File = path
	if code, err := p.Run(ctx, "report", []string{"rep1"}); err != nil || code != ExitOK {
		t.Fatalf("report: %d %v", code, err)
	}
	files := readBundle(t, path)
	for name, want := range map[string]string{
		"replicationpair.yaml":   "name: rep1",
		"userresyncs.yaml":       "rep1-verify-x",
		"report-configmaps.yaml": "cyrusrepl.io/report/v1",
		"events.yaml":            "NeedsAttention",
		"pods.yaml":              pod.Name,
	} {
		if !strings.Contains(files[name], want) {
			t.Errorf("%s lacks %q:\n%s", name, want, files[name])
		}
	}
	if _, ok := files["logs/"+pod.Name+".log"]; !ok {
		t.Errorf("no log of pod %s in the bundle: %v", pod.Name, keys(files))
	}
	if strings.Contains(files["userresyncs.yaml"], "other-verify-x") {
		t.Errorf("the bundle holds another pair's resync")
	}
	for name, data := range files {
		if strings.Contains(data, "TOPSECRET") {
			t.Errorf("%s holds a Secret value", name)
		}
	}
	if !strings.Contains(out.String(), path) {
		t.Errorf("output %q does not name the archive", out.String())
	}
	// An existing file is not overwritten.
	if code, err := p.Run(ctx, "report", []string{"rep1"}); code != ExitUsage || err == nil {
		t.Fatalf("second report to the same path: %d %v", code, err)
	}
}

func readBundle(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimPrefix(h.Name, "cyrusrepl-report/")] = string(b)
	}
	return files
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestParseArgsNewFlags(t *testing.T) {
	cmd, pos, _, _, opts, err := ParseArgs([]string{"logs", "p", "-f", "--tail", "50"})
	if err != nil || cmd != "logs" || len(pos) != 1 || !opts.Follow || opts.Tail != 50 {
		t.Fatalf("logs: %q %v %+v %v", cmd, pos, opts, err)
	}
	_, _, _, _, opts, err = ParseArgs([]string{"status", "-o", "yaml", "p"})
	if err != nil || opts.Output != "yaml" || opts.Tail != -1 {
		t.Fatalf("status -o: %+v %v", opts, err)
	}
	_, _, _, _, opts, err = ParseArgs([]string{"report", "p", "--file", "/tmp/x.tar.gz"})
	if err != nil || opts.File != "/tmp/x.tar.gz" {
		t.Fatalf("report --file: %+v %v", opts, err)
	}
}

// TestRenderPairNamesTheAgent: `status` names the master's agent when the pair has one.
func TestRenderPairNamesTheAgent(t *testing.T) {
	pair := &replv1.ReplicationPair{Spec: replv1.ReplicationPairSpec{
		Master: replv1.MasterEndpoint{Endpoint: replv1.Endpoint{Host: "m.example.org"},
			Agent: &replv1.AgentSource{URL: "https://m.example.org:8443"}},
		Replica: replv1.Endpoint{Host: "r.example.org"},
	}}
	var b strings.Builder
	RenderPair(&b, pair)
	if !strings.Contains(b.String(), "Agent:") || !strings.Contains(b.String(), "https://m.example.org:8443") {
		t.Fatalf("status lacks the agent:\n%s", b.String())
	}
	pair.Spec.Master.Agent = nil
	b.Reset()
	RenderPair(&b, pair)
	if strings.Contains(b.String(), "Agent:") {
		t.Fatalf("status names an agent the pair does not have:\n%s", b.String())
	}
}
