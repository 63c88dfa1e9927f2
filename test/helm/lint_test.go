package helm

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestLint(t *testing.T) {
	c := newChart(t)
	for _, extra := range [][]string{nil, {"-f", filepath.Join(chartDir, "ci", "local-cluster-values.yaml")}} {
		out, err := c.run(append([]string{"lint", "--strict", chartDir}, extra...)...)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") {
			t.Errorf("unexpected lint output:\n%s", out)
		}
	}
}

// TestSchemaRejects: values.schema.json and the template guards turn bad values into
// errors at install time.
func TestSchemaRejects(t *testing.T) {
	c := newChart(t)
	cases := map[string][]string{
		"unknown pull policy":           {"image.pullPolicy=Sometimes"},
		"unknown top-level key":         {"replicas=2"},
		"non-numeric API server port":   {"kubernetesService.port=https"},
		"metrics port out of range":     {"metrics.port=70000"},
		"unknown log level":             {"logLevel=loud"},
		"two replicas without election": {"replicaCount=2", "leaderElection.enabled=false"},
	}
	for name, sets := range cases {
		args := []string{"template", "rel", chartDir}
		for _, s := range sets {
			args = append(args, "--set", s)
		}
		if _, err := c.run(args...); err == nil {
			t.Errorf("%s: helm template accepted %v", name, sets)
		}
	}
}
