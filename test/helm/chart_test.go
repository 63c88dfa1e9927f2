// Package helm checks the Helm chart in charts/cyrusrepl with a real helm v3 binary
// (hack/helm.sh builds it into the cache): `helm lint`, and `helm template` under the
// value combinations that matter, decoded and inspected object by object.
//
// Without a cached helm the tests skip; with CYRUSREPL_REQUIRE_HELM=1 they build helm
// (hack/helm.sh, about 1.5 minutes cold) and fail if that fails.
package helm

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const chartDir = "charts/cyrusrepl"

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// helmBinary returns the helm to use: $HELM, the cached build, or (when required) a
// fresh build through hack/helm.sh.
func helmBinary(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	repo := repoRoot(t)
	require := os.Getenv("CYRUSREPL_REQUIRE_HELM") == "1"
	cache := os.Getenv("CYRUSREPL_CACHE")
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(base, "cyrusrepl")
	}
	cached := filepath.Join(cache, "helm", "v3.22.0", "helm")
	if _, err := os.Stat(cached); err == nil {
		return cached
	}
	if !require {
		t.Skipf("helm not built (%s missing); run hack/helm.sh --path, or set CYRUSREPL_REQUIRE_HELM=1 to build it here", cached)
	}
	out, err := exec.Command(filepath.Join(repo, "hack", "helm.sh"), "--path").Output()
	if err != nil {
		t.Fatalf("CYRUSREPL_REQUIRE_HELM=1 and building helm failed: %v", err)
	}
	return strings.TrimSpace(string(out))
}

type chart struct {
	t    *testing.T
	helm string
	repo string
	home string
}

func newChart(t *testing.T) *chart {
	return &chart{t: t, helm: helmBinary(t), repo: repoRoot(t), home: t.TempDir()}
}

// run executes helm in the repo with its config/cache/data dirs in a temp dir.
func (c *chart) run(args ...string) (string, error) {
	cmd := exec.Command(c.helm, args...)
	cmd.Dir = c.repo
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(c.home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(c.home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(c.home, "data"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// obj is one rendered manifest, decoded generically.
type obj map[string]any

func (o obj) kind() string { s, _ := o["kind"].(string); return s }
func (o obj) name() string { return str(o, "metadata", "name") }

// get walks nested maps (and list indexes given as ints).
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				if o, ok2 := v.(obj); ok2 {
					m = o
				} else {
					return nil
				}
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, path ...any) string { s, _ := get(v, path...).(string); return s }

// template renders the chart with --set values and returns the objects by "Kind/name"
// ("Kind/namespace/name" for a second object of the same kind and name).
func (c *chart) template(sets ...string) map[string]obj {
	c.t.Helper()
	args := []string{"template", "rel", chartDir, "--namespace", "cyrusrepl-system"}
	for _, s := range sets {
		if strings.HasPrefix(s, "-f=") {
			args = append(args, "-f", strings.TrimPrefix(s, "-f="))
		} else {
			args = append(args, "--set", s)
		}
	}
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatal(err)
	}
	objs := map[string]obj{}
	seen := map[string]bool{}
	for _, doc := range strings.Split(out, "\n---") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var o obj
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			c.t.Fatalf("rendered document is not YAML: %v\n%s", err, doc)
		}
		if o == nil {
			continue // comment-only document
		}
		key := o.kind() + "/" + o.name()
		full := o.kind() + "/" + str(o, "metadata", "namespace") + "/" + o.name()
		if _, dup := seen[full]; dup {
			c.t.Fatalf("%s rendered twice", full)
		}
		seen[full] = true
		if _, taken := objs[key]; taken {
			key = full // same name in another namespace (e.g. the namespaced Roles)
		}
		objs[key] = o
	}
	return objs
}

func (c *chart) crdSources() []string {
	files, err := filepath.Glob(filepath.Join(c.repo, "config", "crd", "bases", "*.yaml"))
	if err != nil {
		c.t.Fatal(err)
	}
	return files
}

func ofKind(objs map[string]obj, kind string) []obj {
	var out []obj
	for _, o := range objs {
		if o.kind() == kind {
			out = append(out, o)
		}
	}
	return out
}
