package controllers

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// TestHostPathNeedsPermission: the suite's manager runs without --allow-host-path, so a
// pair asking for a hostPath gets no Deployment (no pod) and is Stalled naming the field;
// its resync waits without a Job; switching to a claim brings the Deployment.
func TestHostPathNeedsPermission(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	p := newPair(ns, "hp")
	p.Spec.SyncLog.Volume = v1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/cyrus/sync/cyrusrepl"}}
	createPair(t, ctx, p)
	key := client.ObjectKeyFromObject(p)

	eventually(t, "pair stalled on its hostPath", func() error {
		got, err := getPair(ctx, ns, "hp")
		if err != nil {
			return err
		}
		s := cond(got.Status.Conditions, v1.ConditionStalled)
		if s.Status != metav1.ConditionTrue || s.Reason != v1.ReasonVolumeNotAllowed ||
			!strings.Contains(s.Message, "spec.syncLog.volume.hostPath") || !strings.Contains(s.Message, "--allow-host-path") {
			return fmt.Errorf("Stalled = %+v", s)
		}
		if r := cond(got.Status.Conditions, v1.ConditionReady); r.Status != metav1.ConditionFalse || r.Reason != v1.ReasonVolumeNotAllowed {
			return fmt.Errorf("Ready = %+v", r)
		}
		return nil
	})
	if _, err := getDeployment(ctx, ns, "hp"); !apierrors.IsNotFound(err) {
		t.Fatalf("a Deployment exists for a hostPath pair without --allow-host-path (err %v)", err)
	}

	rs := &v1.UserResync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hp-now"},
		Spec: v1.UserResyncSpec{PairName: "hp", Users: []string{"alice"}, Mode: v1.ResyncSync}}
	if err := k8s.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	eventually(t, "resync waits on the pair's hostPath", func() error {
		got, err := getResync(ctx, ns, "hp-now")
		if err != nil {
			return err
		}
		if c := cond(got.Status.Conditions, v1.ConditionStalled); got.Status.Phase != v1.ResyncPending || c.Reason != v1.ReasonVolumeNotAllowed ||
			!strings.Contains(c.Message, "spec.syncLog.volume.hostPath") {
			return fmt.Errorf("phase %s, Stalled %+v", got.Status.Phase, c)
		}
		return nil
	})
	if _, err := getJob(ctx, ns, "hp-now"); !apierrors.IsNotFound(err) {
		t.Fatalf("a Job exists for a resync of a hostPath pair (err %v)", err)
	}

	updatePair(t, ctx, key, func(p *v1.ReplicationPair) {
		p.Spec.SyncLog.Volume = v1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "cyrus-sync"}}
	})
	eventually(t, "deployment once the pair uses a claim", func() error {
		if _, err := getDeployment(ctx, ns, "hp"); err != nil {
			return err
		}
		got, err := getPair(ctx, ns, "hp")
		if err != nil {
			return err
		}
		if s := cond(got.Status.Conditions, v1.ConditionStalled); s.Reason == v1.ReasonVolumeNotAllowed {
			return fmt.Errorf("still stalled: %+v", s)
		}
		return nil
	})
}

// TestPodOverridesAccepted: the pod settings of spec.replicator pass the CRD schema and
// reach the Deployment the real API server accepted, over the manager's defaults
// (requests and a memory limit: never BestEffort; probes on the metrics port).
func TestPodOverridesAccepted(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	p := newPair(ns, "tuned")
	p.Spec.Replicator = v1.ReplicatorPodSpec{
		ImagePullPolicy:   corev1.PullAlways,
		ImagePullSecrets:  []corev1.LocalObjectReference{{Name: "registry"}},
		PodLabels:         map[string]string{"team": "mail"},
		PodAnnotations:    map[string]string{"example.org/owner": "mail"},
		PriorityClassName: "mail-critical",
	}
	createPair(t, ctx, p)
	var tmpl corev1.PodTemplateSpec
	eventually(t, "deployment", func() error {
		d, err := getDeployment(ctx, ns, "tuned")
		if err == nil {
			tmpl = d.Spec.Template
		}
		return err
	})
	ps, c := tmpl.Spec, tmpl.Spec.Containers[0]
	if c.ImagePullPolicy != corev1.PullAlways || len(ps.ImagePullSecrets) != 1 || ps.ImagePullSecrets[0].Name != "registry" || ps.PriorityClassName != "mail-critical" {
		t.Errorf("pod spec %+v", ps)
	}
	if tmpl.Labels["team"] != "mail" || tmpl.Annotations["example.org/owner"] != "mail" {
		t.Errorf("labels %v annotations %v", tmpl.Labels, tmpl.Annotations)
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v", c.Resources)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("probes %+v %+v", c.LivenessProbe, c.ReadinessProbe)
	}
	bad := newPair(ns, "bad")
	bad.Spec.Replicator.ImagePullPolicy = "Sometimes"
	if err := k8s.Create(ctx, bad); err == nil || !strings.Contains(err.Error(), "imagePullPolicy") {
		t.Errorf("an unknown pull policy was accepted: %v", err)
	}
}

// TestLagFoldedIntoStatus: a report with a backlog of entries and the date of the
// oldest one gives status.backlog (entries), status.pendingSince and the Lag column; the
// InSync message counts entries.
func TestLagFoldedIntoStatus(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	createPair(t, ctx, newPair(ns, "lag"))
	markAvailable(t, ctx, ns, "lag")
	eventually(t, "role bound", func() error {
		return k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "lag-replicator"}, &rbacRoleBinding)
	})
	since := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Second)
	backlog := 3
	sum := &report.Summary{Kind: report.SummaryKind, Mode: "rolling", Pair: "lag", Started: since, Updated: since,
		Backlog: &backlog, PendingSince: &since}
	if err := replicatorSink(t, ns, "lag", operator.ReportConfigMapName("lag")).Publish(ctx, sum); err != nil {
		t.Fatal(err)
	}
	eventually(t, "lag folded", func() error {
		p, err := getPair(ctx, ns, "lag")
		if err != nil {
			return err
		}
		if p.Status.Backlog == nil || *p.Status.Backlog != 3 || p.Status.PendingSince == nil || !p.Status.PendingSince.Time.Equal(since) {
			return fmt.Errorf("backlog %v pendingSince %v", p.Status.Backlog, p.Status.PendingSince)
		}
		if c := cond(p.Status.Conditions, v1.ConditionInSync); c.Message != "3 sync-log entries wait" {
			return fmt.Errorf("InSync %+v", c)
		}
		return nil
	})
	cols, row := tableRow(t, ctx, "/apis/replication.cyrusrepl.io/v1alpha1/namespaces/"+ns+"/replicationpairs/lag")
	i := slices.Index(cols, "Lag")
	if i < 0 || fmt.Sprint(row[i]) != "10m" {
		t.Errorf("Lag column: columns %v row %v, want 10m", cols, row)
	}
	if i := slices.Index(cols, "Backlog"); i < 0 || fmt.Sprint(row[i]) != "3" {
		t.Errorf("Backlog column: %v %v", cols, row)
	}
}
