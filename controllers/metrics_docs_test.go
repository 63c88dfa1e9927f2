package controllers

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestManagerMetricsDocumented: every cyrusrepl_* metric of the manager has HELP text
// and is listed in docs/operations.md.
func TestManagerMetricsDocumented(t *testing.T) {
	docs, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *prometheus.Desc, 16)
	for _, c := range managerCollectors(nil) {
		c.Describe(ch)
	}
	close(ch)
	nameRE := regexp.MustCompile(`fqName: "([^"]+)", help: "([^"]*)"`)
	n := 0
	for d := range ch {
		m := nameRE.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read %s", d)
		}
		n++
		if m[2] == "" {
			t.Errorf("%s has no HELP text", m[1])
		}
		if !strings.Contains(string(docs), "`"+m[1]+"`") {
			t.Errorf("docs/operations.md does not list `%s`", m[1])
		}
	}
	if n != 2 {
		t.Errorf("%d metrics described, want 2", n)
	}
}
