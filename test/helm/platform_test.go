package helm

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
)

func managerArgs(t *testing.T, objs map[string]obj) []string {
	t.Helper()
	return stringsOf(get(deploymentOf(t, objs), "spec", "template", "spec", "containers", 0, "args"))
}

// replicatorDefaults decodes the defaults file the chart hands the manager, exactly as
// the manager does (operator.LoadPodDefaults: strict, the pair's spec.replicator shape).
func replicatorDefaults(t *testing.T, objs map[string]obj) v1.ReplicatorPodSpec {
	t.Helper()
	cm, ok := objs["ConfigMap/rel-cyrusrepl-replicator-defaults"]
	if !ok {
		t.Fatalf("no replicator defaults ConfigMap among %v", keys(objs))
	}
	f := filepath.Join(t.TempDir(), "defaults.yaml")
	if err := os.WriteFile(f, []byte(str(cm, "data", "defaults.yaml")), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := operator.LoadPodDefaults(f)
	if err != nil {
		t.Fatalf("the manager would refuse the chart's defaults: %v", err)
	}
	return d
}

// TestReplicatorPodValues: every replicator.* value reaches the defaults file the
// manager loads, and the defaults are never BestEffort.
func TestReplicatorPodValues(t *testing.T) {
	c := newChart(t)
	d := replicatorDefaults(t, c.template())
	if d.ImagePullPolicy != "IfNotPresent" || d.Resources.Requests.Memory().IsZero() || d.Resources.Limits.Memory().IsZero() ||
		*d.RunAsUser != 65532 || *d.RunAsGroup != 65532 || *d.FSGroup != 65532 {
		t.Errorf("chart defaults %+v", d)
	}
	objs := c.template(
		"replicator.imagePullPolicy=Always",
		"replicator.imagePullSecrets[0].name=registry",
		"replicator.podLabels.team=mail",
		"replicator.podAnnotations.owner=mail",
		"replicator.priorityClassName=mail-critical",
		"replicator.nodeSelector.zone=a",
		"replicator.tolerations[0].key=mail", "replicator.tolerations[0].operator=Exists",
		"replicator.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=cyrus",
		"replicator.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=Exists",
		"replicator.resources.limits.memory=1Gi",
		"replicator.runAsUser=1000", "replicator.fsGroup=2000",
		"replicator.runAsGroup=null",
	)
	d = replicatorDefaults(t, objs)
	if d.ImagePullPolicy != "Always" || len(d.ImagePullSecrets) != 1 || d.ImagePullSecrets[0].Name != "registry" ||
		d.PodLabels["team"] != "mail" || d.PodAnnotations["owner"] != "mail" || d.PriorityClassName != "mail-critical" ||
		d.NodeSelector["zone"] != "a" || len(d.Tolerations) != 1 || d.Tolerations[0].Key != "mail" ||
		d.Affinity == nil || d.Affinity.NodeAffinity == nil || d.Resources.Limits.Memory().String() != "1Gi" {
		t.Errorf("values not in the defaults: %+v", d)
	}
	if *d.RunAsUser != 1000 || *d.FSGroup != 2000 || d.RunAsGroup != nil {
		t.Errorf("ids: runAsUser %v runAsGroup %v fsGroup %v", d.RunAsUser, d.RunAsGroup, d.FSGroup)
	}
	// OpenShift restricted-v2: no ids at all
	d = replicatorDefaults(t, c.template("replicator.runAsUser=null", "replicator.runAsGroup=null", "replicator.fsGroup=null"))
	if d.RunAsUser != nil || d.RunAsGroup != nil || d.FSGroup != nil {
		t.Errorf("ids not left to the platform: %+v", d)
	}
	// the manager restarts when the defaults change
	ann := func(objs map[string]obj) string {
		return str(deploymentOf(t, objs), "spec", "template", "metadata", "annotations", "checksum/replicator-defaults")
	}
	if a, b := ann(c.template()), ann(objs); a == "" || a == b {
		t.Errorf("checksum annotation %q / %q does not follow the defaults", a, b)
	}
}

func TestAllowHostPath(t *testing.T) {
	c := newChart(t)
	if args := managerArgs(t, c.template()); !slices.Contains(args, "--allow-host-path=false") {
		t.Errorf("hostPath allowed by default: %v", args)
	}
	if args := managerArgs(t, c.template("replicator.allowHostPath=true")); !slices.Contains(args, "--allow-host-path=true") {
		t.Errorf("replicator.allowHostPath=true not passed: %v", args)
	}
}

// TestNamespacedInstall: rbac.namespaced with watchNamespaces gives Roles in those
// namespaces only, no cluster-wide Secret access, the Lease only in the release
// namespace, and the manager watching exactly those namespaces.
func TestNamespacedInstall(t *testing.T) {
	c := newChart(t)
	objs := c.template("rbac.namespaced=true", "watchNamespaces={mail-a,mail-b}")
	if args := managerArgs(t, objs); !slices.Contains(args, "--namespace=mail-a,mail-b") {
		t.Errorf("manager args %v lack --namespace=mail-a,mail-b", args)
	}
	var roleNS []string
	for _, o := range ofKind(objs, "Role") {
		ns := str(o, "metadata", "namespace")
		g := grants(o)
		if g[grant{"coordination.k8s.io", "leases", "update"}] && ns != "cyrusrepl-system" {
			t.Errorf("Lease permission in %s", ns)
		}
		if o.name() == "rel-cyrusrepl-manager" {
			roleNS = append(roleNS, ns)
			if !g[grant{"", "secrets", "get"}] || !g[grant{"apps", "deployments", "create"}] || g[grant{"coordination.k8s.io", "leases", "get"}] {
				t.Errorf("manager Role in %s: %v", ns, g)
			}
		}
	}
	sort.Strings(roleNS)
	if !slices.Equal(roleNS, []string{"mail-a", "mail-b"}) {
		t.Errorf("manager Roles in %v, want mail-a and mail-b", roleNS)
	}
	bindings := map[string]bool{}
	for _, o := range ofKind(objs, "RoleBinding") {
		if o.name() == "rel-cyrusrepl-manager" {
			bindings[str(o, "metadata", "namespace")] = true
			if str(o, "subjects", 0, "namespace") != "cyrusrepl-system" || str(o, "roleRef", "kind") != "Role" {
				t.Errorf("binding %v", o)
			}
		}
	}
	if !bindings["mail-a"] || !bindings["mail-b"] {
		t.Errorf("manager RoleBindings in %v", bindings)
	}
	for _, o := range ofKind(objs, "ClusterRole") {
		g := grants(o)
		for k := range g {
			if k.resource == "secrets" || k.resource == "leases" || k.resource == "deployments" {
				t.Errorf("ClusterRole %s grants %+v in a namespaced install", o.name(), k)
			}
		}
	}
	if _, ok := objs["ClusterRoleBinding/rel-cyrusrepl-manager"]; ok {
		t.Errorf("manager ClusterRoleBinding rendered in a namespaced install")
	}
	// the cluster-wide default keeps the Lease out of the ClusterRole too
	cr := c.template()["ClusterRole/rel-cyrusrepl-manager"]
	if grants(cr)[grant{"coordination.k8s.io", "leases", "get"}] {
		t.Errorf("the manager ClusterRole grants Leases in every namespace")
	}
	if _, err := c.run("template", "rel", chartDir, "--set", "rbac.namespaced=true"); err == nil {
		t.Errorf("rbac.namespaced without watchNamespaces rendered")
	}
	// watchNamespaces alone (cluster RBAC) still narrows the manager's cache
	if args := managerArgs(t, c.template("watchNamespaces={mail}")); !slices.Contains(args, "--namespace=mail") {
		t.Errorf("args %v", args)
	}
}

func TestAggregatedRoles(t *testing.T) {
	c := newChart(t)
	objs := c.template()
	view, edit := objs["ClusterRole/rel-cyrusrepl-view"], objs["ClusterRole/rel-cyrusrepl-edit"]
	if view == nil || edit == nil {
		t.Fatalf("aggregated roles missing among %v", keys(objs))
	}
	if str(view, "metadata", "labels", "rbac.authorization.k8s.io/aggregate-to-view") != "true" ||
		str(edit, "metadata", "labels", "rbac.authorization.k8s.io/aggregate-to-edit") != "true" {
		t.Errorf("aggregation labels: view %v edit %v", get(view, "metadata", "labels"), get(edit, "metadata", "labels"))
	}
	for _, kind := range []string{"replicationpairs", "userresyncs"} {
		if !grants(view)[grant{"replication.cyrusrepl.io", kind, "list"}] || grants(view)[grant{"replication.cyrusrepl.io", kind, "create"}] {
			t.Errorf("view role on %s: %v", kind, grants(view))
		}
		if !grants(edit)[grant{"replication.cyrusrepl.io", kind, "create"}] {
			t.Errorf("edit role lacks create on %s", kind)
		}
	}
	if _, ok := c.template("rbac.aggregatedRoles=false")["ClusterRole/rel-cyrusrepl-view"]; ok {
		t.Errorf("aggregated roles rendered with rbac.aggregatedRoles=false")
	}
}

// TestManagerMetricsSecured: by default the manager's metrics are HTTPS behind the API
// server's authn/authz (its ServiceAccount may create TokenReviews and
// SubjectAccessReviews; a metrics-reader ClusterRole exists for scrapers); the
// ServiceMonitor scrapes with a token over HTTPS; metrics.secure=false turns it all off.
func TestManagerMetricsSecured(t *testing.T) {
	c := newChart(t)
	objs := c.template("metrics.serviceMonitor.enabled=true")
	auth := grants(objs["ClusterRole/rel-cyrusrepl-metrics-auth"])
	if !auth[grant{"authentication.k8s.io", "tokenreviews", "create"}] || !auth[grant{"authorization.k8s.io", "subjectaccessreviews", "create"}] {
		t.Errorf("metrics-auth ClusterRole %v", auth)
	}
	if _, ok := objs["ClusterRoleBinding/rel-cyrusrepl-metrics-auth"]; !ok {
		t.Errorf("metrics-auth not bound")
	}
	reader := objs["ClusterRole/rel-cyrusrepl-metrics-reader"]
	if !slices.Equal(stringsOf(get(reader, "rules", 0, "nonResourceURLs")), []string{"/metrics"}) {
		t.Errorf("metrics-reader %v", reader)
	}
	sm := objs["ServiceMonitor/rel-cyrusrepl-manager"]
	if str(sm, "spec", "endpoints", 0, "scheme") != "https" || str(sm, "spec", "endpoints", 0, "bearerTokenFile") == "" {
		t.Errorf("ServiceMonitor endpoint %v", get(sm, "spec", "endpoints", 0))
	}
	objs = c.template("metrics.secure=false", "metrics.port=8080", "metrics.serviceMonitor.enabled=true")
	if args := managerArgs(t, objs); !slices.Contains(args, "--metrics-secure=false") || !slices.Contains(args, "--metrics-bind-address=:8080") {
		t.Errorf("args %v", args)
	}
	if _, ok := objs["ClusterRole/rel-cyrusrepl-metrics-auth"]; ok {
		t.Errorf("metrics-auth rendered with metrics.secure=false")
	}
	if s := str(objs["ServiceMonitor/rel-cyrusrepl-manager"], "spec", "endpoints", 0, "scheme"); s == "https" {
		t.Errorf("plain metrics scraped over https")
	}
}

// TestPodMonitor: the replicator pods' metrics port, selected by the labels the
// operator puts on Deployment pods, in the watched namespaces or all.
func TestPodMonitor(t *testing.T) {
	c := newChart(t)
	if len(ofKind(c.template(), "PodMonitor")) != 0 {
		t.Errorf("PodMonitor rendered by default")
	}
	objs := c.template("metrics.podMonitor.enabled=true", "metrics.podMonitor.labels.release=prom", "metrics.podMonitor.interval=15s")
	pm, ok := objs["PodMonitor/rel-cyrusrepl-replicator"]
	if !ok {
		t.Fatalf("no PodMonitor among %v", keys(objs))
	}
	ep := get(pm, "spec", "podMetricsEndpoints", 0)
	if str(ep, "port") != "metrics" || str(ep, "path") != "/metrics" || str(ep, "interval") != "15s" {
		t.Errorf("endpoint %v", ep)
	}
	// the selector matches what the operator labels a pair's pods with
	d := operator.Deployment(&v1.ReplicationPair{}, operator.PodOptions{})
	podLabels := d.Spec.Template.Labels
	for k, v := range get(pm, "spec", "selector", "matchLabels").(map[string]any) {
		if podLabels[k] != v {
			t.Errorf("PodMonitor selects %s=%v; replicator pods have %q", k, v, podLabels[k])
		}
	}
	var port int32
	for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
		if p.Name == "metrics" {
			port = p.ContainerPort
		}
	}
	if port != operator.MetricsPort {
		t.Errorf("replicator container has no port named metrics (%d)", port)
	}
	if get(pm, "spec", "namespaceSelector", "any") != true || str(pm, "metadata", "labels", "release") != "prom" {
		t.Errorf("namespaceSelector %v labels %v", get(pm, "spec", "namespaceSelector"), get(pm, "metadata", "labels"))
	}
	pm = c.template("metrics.podMonitor.enabled=true", "watchNamespaces={mail}")["PodMonitor/rel-cyrusrepl-replicator"]
	if !slices.Equal(stringsOf(get(pm, "spec", "namespaceSelector", "matchNames")), []string{"mail"}) {
		t.Errorf("namespaceSelector %v", get(pm, "spec", "namespaceSelector"))
	}
}

// TestPrometheusRule: the six alerts, each on a metric the replicator serves, with the
// thresholds from values.
func TestPrometheusRule(t *testing.T) {
	c := newChart(t)
	if len(ofKind(c.template(), "PrometheusRule")) != 0 {
		t.Errorf("PrometheusRule rendered by default")
	}
	objs := c.template("metrics.prometheusRule.enabled=true", "metrics.prometheusRule.lagThresholdSeconds=120",
		"metrics.prometheusRule.noSuccessSeconds=900", "metrics.prometheusRule.alertLabels.team=mail", "metrics.prometheusRule.labels.release=prom")
	pr, ok := objs["PrometheusRule/rel-cyrusrepl"]
	if !ok {
		t.Fatalf("no PrometheusRule among %v", keys(objs))
	}
	rules, _ := get(pr, "spec", "groups", 0, "rules").([]any)
	exprs := map[string]string{}
	for _, r := range rules {
		exprs[str(r, "alert")] = str(r, "expr")
		if str(r, "labels", "team") != "mail" || str(r, "labels", "severity") == "" {
			t.Errorf("%s labels %v", str(r, "alert"), get(r, "labels"))
		}
	}
	for alert, want := range map[string]string{
		"CyrusReplLagHigh":             "cyrusrepl_replication_lag_seconds",
		"CyrusReplBacklogGrowing":      "cyrusrepl_sync_log_backlog_entries",
		"CyrusReplNoSuccess":           "cyrusrepl_last_success_timestamp_seconds",
		"CyrusReplUsersFailing":        "cyrusrepl_users_failed",
		"CyrusReplSplitBrainSuspected": "cyrusrepl_decisions_total",
		"CyrusReplReplicatorDown":      "up{",
	} {
		if !strings.Contains(exprs[alert], want) {
			t.Errorf("%s: expr %q lacks %s", alert, exprs[alert], want)
		}
	}
	if !strings.HasSuffix(exprs["CyrusReplLagHigh"], "> 120") || !strings.HasSuffix(exprs["CyrusReplNoSuccess"], "> 900") {
		t.Errorf("thresholds: %q / %q", exprs["CyrusReplLagHigh"], exprs["CyrusReplNoSuccess"])
	}
	// every metric an alert uses is one the replicator serves (its HELP list in
	// docs/operations.md) or Prometheus's own up
	docs, err := os.ReadFile(filepath.Join(c.repo, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	for alert, e := range exprs {
		for _, m := range regexp.MustCompile(`\bcyrusrepl_[a-z_]+`).FindAllString(e, -1) {
			if !strings.Contains(string(docs), "`"+m+"`") {
				t.Errorf("%s uses %s, which docs/operations.md does not list", alert, m)
			}
		}
	}
}

func TestDashboard(t *testing.T) {
	c := newChart(t)
	if len(ofKind(c.template(), "ConfigMap")) != 1 {
		t.Errorf("dashboard rendered by default")
	}
	objs := c.template("metrics.dashboard.enabled=true", "metrics.dashboard.namespace=monitoring", "metrics.dashboard.annotations.grafana_folder=Mail")
	cm, ok := objs["ConfigMap/rel-cyrusrepl-dashboard"]
	if !ok {
		t.Fatalf("no dashboard ConfigMap among %v", keys(objs))
	}
	if str(cm, "metadata", "labels", "grafana_dashboard") != "1" || str(cm, "metadata", "namespace") != "monitoring" ||
		str(cm, "metadata", "annotations", "grafana_folder") != "Mail" {
		t.Errorf("metadata %v", get(cm, "metadata"))
	}
	var dash map[string]any
	if err := yaml.Unmarshal([]byte(str(cm, "data", "cyrusrepl.json")), &dash); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	body := str(cm, "data", "cyrusrepl.json")
	for _, m := range []string{"cyrusrepl_replication_lag_seconds", "cyrusrepl_sync_log_backlog_entries", "cyrusrepl_users_failed", "cyrusrepl_decisions_total"} {
		if !strings.Contains(body, m) {
			t.Errorf("dashboard lacks %s", m)
		}
	}
}

// TestRendersWithoutKubeVersion: a helm built without Kubernetes version ldflags assumes
// v1.20; the chart has no kubeVersion constraint, so `helm template` works with it.
func TestRendersWithoutKubeVersion(t *testing.T) {
	c := newChart(t)
	if _, err := c.run("template", "rel", chartDir, "--kube-version", "v1.20.0"); err != nil {
		t.Fatal(err)
	}
}

// TestVersionsAgree: the chart's appVersion is the tag of the image the kustomize
// manifests run, of the replicator image they pass, and of the manager's built-in default
// replicator image.
func TestVersionsAgree(t *testing.T) {
	c := newChart(t)
	var meta struct {
		AppVersion string `json:"appVersion"`
	}
	b, err := os.ReadFile(filepath.Join(c.repo, chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &meta); err != nil || meta.AppVersion == "" {
		t.Fatalf("Chart.yaml appVersion %q: %v", meta.AppVersion, err)
	}
	kust, err := os.ReadFile(filepath.Join(c.repo, "config", "manager", "manager.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"image: ghcr.io/cyrusrepl/cyrusrepl:" + meta.AppVersion, "--replicator-image=ghcr.io/cyrusrepl/replicator:" + meta.AppVersion} {
		if !strings.Contains(string(kust), want) {
			t.Errorf("config/manager/manager.yaml lacks %q (chart appVersion %s)", want, meta.AppVersion)
		}
	}
	if operator.DefaultReplicatorImage != "ghcr.io/cyrusrepl/replicator:"+meta.AppVersion {
		t.Errorf("operator.DefaultReplicatorImage %q, chart appVersion %s", operator.DefaultReplicatorImage, meta.AppVersion)
	}
	env := envOf(get(deploymentOf(t, c.template()), "spec", "template", "spec", "containers", 0))
	if env["REPLICATOR_IMAGE"] != operator.DefaultReplicatorImage {
		t.Errorf("chart REPLICATOR_IMAGE %q", env["REPLICATOR_IMAGE"])
	}
}

// TestReadmeListsEveryValue: charts/cyrusrepl/README.md names every key of values.yaml
// (leaves, and maps the user fills in, such as resources or labels).
func TestReadmeListsEveryValue(t *testing.T) {
	c := newChart(t)
	b, err := os.ReadFile(filepath.Join(c.repo, chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(c.repo, chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, k := range valueKeys("", values) {
		if !strings.Contains(string(readme), "`"+k+"`") {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("charts/cyrusrepl/README.md does not document %d values: %v", len(missing), missing)
	}
}

// opaque values are documented as a whole: what is inside is the user's (resources,
// label and annotation maps, scheduling).
var opaque = map[string]bool{"resources": true, "labels": true, "alertLabels": true, "annotations": true, "podLabels": true,
	"podAnnotations": true, "nodeSelector": true, "affinity": true}

func valueKeys(prefix string, m map[string]any) []string {
	var out []string
	for k, v := range m {
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok && !opaque[k] && len(sub) > 0 {
			out = append(out, valueKeys(path, sub)...)
			continue
		}
		out = append(out, path)
	}
	sort.Strings(out)
	return out
}
