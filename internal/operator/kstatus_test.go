package operator

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// TestPairKstatus: what kstatus (kubectl wait, Flux, Argo health) makes of each state.
func TestPairKstatus(t *testing.T) {
	stalled := available()
	stalled.Status.AvailableReplicas = 0
	stalled.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: "False", Reason: "ProgressDeadlineExceeded"}}
	b0 := 0
	cases := []struct {
		name    string
		suspend bool
		obs     PairObservation
		want    status.Status
	}{
		{"progressing", false, PairObservation{}, status.InProgressStatus},
		{"healthy", false, PairObservation{Deployment: available(), Report: &report.Summary{Backlog: &b0}}, status.CurrentStatus},
		{"healthy, split-brain suspected", false, PairObservation{Deployment: available(), Report: &report.Summary{DecisionCounts: map[string]int{"keep/none": 1}}}, status.CurrentStatus},
		{"rollout stalled", false, PairObservation{Deployment: stalled}, status.FailedStatus},
		{"suspended", true, PairObservation{}, status.CurrentStatus},
		{"secret missing", false, PairObservation{MissingReferences: []string{`Secret "s" not found (spec.master.passwordSecretRef)`}}, status.FailedStatus},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := pair()
			p.Generation = 2
			p.Spec.Suspend = tc.suspend
			p.Status = PairStatus(p, tc.obs)
			m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(p)
			if err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{Object: m}
			u.SetAPIVersion(v1.GroupVersion.String())
			u.SetKind("ReplicationPair")
			res, err := status.Compute(u)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tc.want {
				t.Fatalf("kstatus %s (%s), want %s", res.Status, res.Message, tc.want)
			}
		})
	}
}
