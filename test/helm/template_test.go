package helm

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"
)

func deploymentOf(t *testing.T, objs map[string]obj) obj {
	t.Helper()
	d, ok := objs["Deployment/rel-cyrusrepl-manager"]
	if !ok {
		t.Fatalf("no Deployment/rel-cyrusrepl-manager among %v", keys(objs))
	}
	return d
}

func keys(objs map[string]obj) []string {
	var out []string
	for k := range objs {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func stringsOf(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func envOf(container any) map[string]string {
	env := map[string]string{}
	l, _ := get(container, "env").([]any)
	for _, e := range l {
		env[str(e, "name")] = str(e, "value")
	}
	return env
}

func TestDefaults(t *testing.T) {
	c := newChart(t)
	objs := c.template()
	for _, want := range []string{
		"ServiceAccount/rel-cyrusrepl-manager",
		"ClusterRole/rel-cyrusrepl-manager", "ClusterRoleBinding/rel-cyrusrepl-manager",
		"Role/rel-cyrusrepl-leader-election", "RoleBinding/rel-cyrusrepl-leader-election",
		"Deployment/rel-cyrusrepl-manager", "Service/rel-cyrusrepl-metrics",
	} {
		if _, ok := objs[want]; !ok {
			t.Errorf("default render lacks %s (has %v)", want, keys(objs))
		}
	}
	if sm := ofKind(objs, "ServiceMonitor"); len(sm) != 0 {
		t.Errorf("ServiceMonitor rendered although disabled")
	}

	d := deploymentOf(t, objs)
	spec := get(d, "spec", "template", "spec")
	if get(spec, "hostNetwork") != nil {
		t.Errorf("hostNetwork set by default")
	}
	if get(spec, "securityContext", "runAsNonRoot") != true || str(spec, "securityContext", "seccompProfile", "type") != "RuntimeDefault" {
		t.Errorf("pod securityContext not hardened: %v", get(spec, "securityContext"))
	}
	if str(spec, "serviceAccountName") != "rel-cyrusrepl-manager" {
		t.Errorf("serviceAccountName %q", str(spec, "serviceAccountName"))
	}
	ctr := get(spec, "containers", 0)
	if str(ctr, "image") != "ghcr.io/cyrusrepl/cyrusrepl:0.1.0" || str(ctr, "imagePullPolicy") != "IfNotPresent" {
		t.Errorf("image %q pullPolicy %q", str(ctr, "image"), str(ctr, "imagePullPolicy"))
	}
	sc := get(ctr, "securityContext")
	if get(sc, "readOnlyRootFilesystem") != true || get(sc, "allowPrivilegeEscalation") != false ||
		!slices.Equal(stringsOf(get(sc, "capabilities", "drop")), []string{"ALL"}) {
		t.Errorf("container securityContext not hardened: %v", sc)
	}
	args := stringsOf(get(ctr, "args"))
	for _, want := range []string{"--leader-elect=true", "--metrics-bind-address=:8443", "--metrics-secure=true", "--health-probe-bind-address=:8081",
		"--log-level=info", "--allow-host-path=false", "--replicator-defaults=/etc/cyrusrepl/replicator-defaults/defaults.yaml"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		if str(ctr, probe, "httpGet", "path") != path || str(ctr, probe, "httpGet", "port") != "health" || get(ctr, probe, "httpGet", "host") != nil {
			t.Errorf("%s: %v", probe, get(ctr, probe))
		}
	}
	ports := map[string]float64{}
	for _, p := range get(ctr, "ports").([]any) {
		ports[str(p, "name")] = get(p, "containerPort").(float64)
	}
	if ports["metrics"] != 8443 || ports["health"] != 8081 {
		t.Errorf("container ports %v", ports)
	}
	env := envOf(ctr)
	if _, ok := env["KUBERNETES_SERVICE_HOST"]; ok {
		t.Errorf("KUBERNETES_SERVICE_HOST overridden by default")
	}
	if env["REPLICATOR_IMAGE"] != "ghcr.io/cyrusrepl/replicator:0.1.0" || env["CYRUSREPL_HOST_NETWORK"] != "false" {
		t.Errorf("REPLICATOR_IMAGE %q CYRUSREPL_HOST_NETWORK %q", env["REPLICATOR_IMAGE"], env["CYRUSREPL_HOST_NETWORK"])
	}
	if get(ctr, "resources", "limits", "memory") == nil {
		t.Errorf("no memory limit")
	}
}

// TestLocalClusterValues: the values hack/cluster.sh needs keep every listener and probe
// on 127.0.0.1 and point the manager at the loopback API server.
func TestLocalClusterValues(t *testing.T) {
	c := newChart(t)
	objs := c.template("-f=" + filepath.Join(chartDir, "ci", "local-cluster-values.yaml"))
	spec := get(deploymentOf(t, objs), "spec", "template", "spec")
	if get(spec, "hostNetwork") != true || str(spec, "dnsPolicy") != "ClusterFirstWithHostNet" {
		t.Errorf("hostNetwork %v dnsPolicy %v", get(spec, "hostNetwork"), get(spec, "dnsPolicy"))
	}
	ctr := get(spec, "containers", 0)
	if str(ctr, "image") != "cyrusrepl:dev" || str(ctr, "imagePullPolicy") != "Never" {
		t.Errorf("image %q pullPolicy %q", str(ctr, "image"), str(ctr, "imagePullPolicy"))
	}
	args := stringsOf(get(ctr, "args"))
	for _, want := range []string{"--metrics-bind-address=127.0.0.1:8443", "--health-probe-bind-address=127.0.0.1:8081", "--allow-host-path=false"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
	for _, probe := range []string{"livenessProbe", "readinessProbe"} {
		if str(ctr, probe, "httpGet", "host") != "127.0.0.1" {
			t.Errorf("%s host %v, want 127.0.0.1 (the kubelet would probe the node's address)", probe, get(ctr, probe, "httpGet", "host"))
		}
	}
	env := envOf(ctr)
	if env["KUBERNETES_SERVICE_HOST"] != "127.0.0.1" || env["KUBERNETES_SERVICE_PORT"] != "6443" ||
		env["CYRUSREPL_HOST_NETWORK"] != "true" || env["REPLICATOR_IMAGE"] != "cyrusrepl-replicator:dev" {
		t.Errorf("API server env %v", env)
	}
	if _, ok := objs["Service/rel-cyrusrepl-metrics"]; ok {
		t.Errorf("metrics Service rendered although disabled")
	}
}

func TestCRDToggles(t *testing.T) {
	c := newChart(t)
	want := len(c.crdSources())
	crds := ofKind(c.template(), "CustomResourceDefinition")
	if len(crds) != want {
		t.Fatalf("%d CRDs rendered, config/crd/bases has %d (run make manifests)", len(crds), want)
	}
	for _, crd := range crds {
		if str(crd, "metadata", "annotations", "helm.sh/resource-policy") != "keep" {
			t.Errorf("%s lacks helm.sh/resource-policy: keep", crd.name())
		}
		if str(crd, "spec", "group") != "replication.cyrusrepl.io" {
			t.Errorf("%s group %q", crd.name(), str(crd, "spec", "group"))
		}
	}
	for _, crd := range ofKind(c.template("crds.keep=false"), "CustomResourceDefinition") {
		if get(crd, "metadata", "annotations", "helm.sh/resource-policy") != nil {
			t.Errorf("%s keeps the keep annotation with crds.keep=false", crd.name())
		}
	}
	if n := len(ofKind(c.template("crds.enabled=false"), "CustomResourceDefinition")); n != 0 {
		t.Errorf("%d CRDs rendered with crds.enabled=false", n)
	}
}

func TestServiceMonitor(t *testing.T) {
	c := newChart(t)
	objs := c.template("metrics.serviceMonitor.enabled=true", "metrics.service.enabled=false", "metrics.serviceMonitor.labels.release=prom")
	sm, ok := objs["ServiceMonitor/rel-cyrusrepl-manager"]
	if !ok {
		t.Fatalf("no ServiceMonitor among %v", keys(objs))
	}
	if str(sm, "spec", "endpoints", 0, "port") != "metrics" || str(sm, "metadata", "labels", "release") != "prom" {
		t.Errorf("ServiceMonitor spec %v labels %v", get(sm, "spec"), get(sm, "metadata", "labels"))
	}
	// the ServiceMonitor needs the Service even when the plain Service is switched off
	svc, ok := objs["Service/rel-cyrusrepl-metrics"]
	if !ok {
		t.Fatalf("ServiceMonitor without its Service")
	}
	sel := get(sm, "spec", "selector", "matchLabels").(map[string]any)
	for k, v := range sel {
		if str(svc, "metadata", "labels", k) != v {
			t.Errorf("ServiceMonitor selects %s=%v, Service has %q", k, v, str(svc, "metadata", "labels", k))
		}
	}
}

// TestRBAC: the manager's ClusterRole is exactly the generated config/rbac/role.yaml
// when that exists (hack/sync-chart-crds.sh copies it), else the hand-written set covers
// what the manager needs; it never writes Secrets; leader election stays namespaced.
func TestRBAC(t *testing.T) {
	c := newChart(t)
	objs := c.template()
	cr, ok := objs["ClusterRole/rel-cyrusrepl-manager"]
	if !ok {
		t.Fatalf("no manager ClusterRole among %v", keys(objs))
	}
	generated, err := os.ReadFile(filepath.Join(c.repo, "config", "rbac", "role.yaml"))
	switch {
	case err == nil:
		var role obj
		if err := yaml.Unmarshal(generated, &role); err != nil {
			t.Fatalf("config/rbac/role.yaml: %v", err)
		}
		if !reflect.DeepEqual(get(role, "rules"), get(cr, "rules")) {
			t.Errorf("chart ClusterRole rules differ from config/rbac/role.yaml (run make manifests):\nchart: %v\nrole.yaml: %v",
				get(cr, "rules"), get(role, "rules"))
		}
	case errors.Is(err, fs.ErrNotExist):
		g := grants(cr)
		for _, need := range []grant{
			{"replication.cyrusrepl.io", "replicationpairs", "watch"},
			{"replication.cyrusrepl.io", "userresyncs", "watch"},
			{"replication.cyrusrepl.io", "replicationpairs/status", "patch"},
			{"replication.cyrusrepl.io", "userresyncs/status", "patch"},
			{"apps", "deployments", "create"},
			{"batch", "jobs", "create"},
			{"", "serviceaccounts", "create"},
			{"", "configmaps", "create"},
			{"rbac.authorization.k8s.io", "roles", "create"},
			{"rbac.authorization.k8s.io", "rolebindings", "create"},
			{"events.k8s.io", "events", "create"},
		} {
			if !g[need] {
				t.Errorf("manager ClusterRole lacks %+v", need)
			}
		}
	default:
		t.Fatal(err)
	}
	g := grants(cr)
	for _, verb := range []string{"create", "update", "patch", "delete"} {
		if g[grant{"", "secrets", verb}] {
			t.Errorf("manager may %s Secrets", verb)
		}
	}
	le, ok := objs["Role/rel-cyrusrepl-leader-election"]
	if !ok {
		t.Fatalf("no leader-election Role among %v", keys(objs))
	}
	if !grants(le)[grant{"coordination.k8s.io", "leases", "update"}] {
		t.Errorf("leader-election Role lacks leases update")
	}
	if str(le, "metadata", "namespace") != "cyrusrepl-system" {
		t.Errorf("leader-election Role not in the release namespace")
	}
}

type grant struct{ group, resource, verb string }

// grants expands an RBAC object's rules into single (group, resource, verb) grants.
func grants(o obj) map[grant]bool {
	g := map[grant]bool{}
	rules, _ := get(o, "rules").([]any)
	for _, r := range rules {
		for _, grp := range stringsOf(get(r, "apiGroups")) {
			for _, res := range stringsOf(get(r, "resources")) {
				for _, v := range stringsOf(get(r, "verbs")) {
					g[grant{grp, res, v}] = true
				}
			}
		}
	}
	return g
}

func TestLeaderElectionOff(t *testing.T) {
	c := newChart(t)
	objs := c.template("leaderElection.enabled=false")
	args := stringsOf(get(deploymentOf(t, objs), "spec", "template", "spec", "containers", 0, "args"))
	if !slices.Contains(args, "--leader-elect=false") {
		t.Errorf("args %v lack --leader-elect=false (the manager elects by default)", args)
	}
	if _, ok := objs["Role/rel-cyrusrepl-leader-election"]; ok {
		t.Errorf("leader-election Role rendered with election off")
	}
}
