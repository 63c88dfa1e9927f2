package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
	reportkube "github.com/cyrusrepl/cyrusrepl/internal/report/kube"
)

// replicatorClient acts as the replicator pod: the ServiceAccount the operator created
// for owner, impersonated, so the test exercises the least-privilege Role for real.
func replicatorClient(t *testing.T, ns, owner string) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(replicatorConfig(ns, owner))
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// replicatorConfig is the API server config of the replicator's ServiceAccount.
func replicatorConfig(ns, owner string) *rest.Config {
	cfg := rest.CopyConfig(restCfg)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: fmt.Sprintf("system:serviceaccount:%s:%s", ns, operator.ReplicatorName(owner)),
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
	return cfg
}

// replicatorSink is the replicator's report sink, authenticated as its ServiceAccount.
func replicatorSink(t *testing.T, ns, owner, name string) *reportkube.ConfigMapSink {
	t.Helper()
	cfg := replicatorConfig(ns, owner)
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return reportkube.NewConfigMapSink(hc, cfg.Host, ns, name)
}

// markAvailable plays the Deployment controller (there is none in envtest).
func markAvailable(t *testing.T, ctx context.Context, ns, pair string) {
	t.Helper()
	eventually(t, "deployment status", func() error {
		d, err := getDeployment(ctx, ns, pair)
		if err != nil {
			return err
		}
		d.Status = appsv1.DeploymentStatus{
			ObservedGeneration: d.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
		}
		return k8s.Status().Update(ctx, d)
	})
}

// bigReport has n decisions (5 on tombstone evidence, 2 replica-only kept, the rest
// updates) and 20 mismatches, with realistic names.
func bigReport(pair string, n int, t0 time.Time) *report.Summary {
	s := &report.Summary{
		Kind: report.SummaryKind, Mode: "rolling", Pair: pair, Started: t0, Updated: t0.Add(time.Hour),
		DecisionCounts: map[string]int{}, MismatchCounts: map[string]int{},
	}
	backlog := 0
	s.Backlog = &backlog
	s.LastBatch = &report.Batch{Time: t0.Add(time.Hour), Users: 40, DurationMS: 1234}
	for i := 0; i < n; i++ {
		d := report.Decision{
			Time: t0.Add(time.Duration(i) * time.Second), Pair: pair,
			User: fmt.Sprintf("user%04d@example.org", i%500), UniqueID: fmt.Sprintf("%016x%016x", i, i*7),
			MasterName: fmt.Sprintf("user.user%04d.Archive.%d", i%500, i), ReplicaName: fmt.Sprintf("user.user%04d.Archive.%d", i%500, i),
			Action: report.ActionUpdate, Evidence: report.EvidenceNone, Reason: "CRC differs: contents brought up to date",
		}
		switch {
		case i < 5:
			d.Action, d.Evidence, d.Reason = report.ActionDelete, report.EvidenceTombstone, "master mailboxes.db holds a tombstone for the uniqueid"
		case i < 7:
			d.Action, d.Evidence, d.Reason = report.ActionKeep, report.EvidenceNone, "replica-only, no tombstone"
		}
		d.ID = report.RecordID(d.User, d.UniqueID, d.Action, i)
		s.Decisions = append(s.Decisions, d)
		s.DecisionCounts[string(d.Action)+"/"+string(d.Evidence)]++
	}
	for i := 0; i < 20; i++ {
		m := report.Mismatch{
			Time: t0.Add(time.Duration(i) * time.Minute), Pair: pair, User: fmt.Sprintf("user%04d@example.org", i),
			Kind: report.MismatchReplicaOnly, UniqueID: fmt.Sprintf("%032x", i), ReplicaName: fmt.Sprintf("user.user%04d.Old", i),
			Detail: "folder exists on the replica only",
		}
		m.ID = report.RecordID(m.User, m.UniqueID, m.Kind)
		s.Mismatches = append(s.Mismatches, m)
		s.MismatchCounts[string(m.Kind)]++
	}
	return s
}

// summaryEvents lists the notes of the record summary Events on obj, by reason
// (RecordsResolved, NeedsAttention), checking each has the type that goes with it.
func summaryEvents(ctx context.Context, ns string, uid types.UID) (map[string][]string, error) {
	var list eventsv1.EventList
	if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, e := range list.Items {
		if e.Regarding.UID != uid || (e.Reason != v1.EventRecordsResolved && e.Reason != v1.EventNeedsAttention) {
			continue
		}
		if want := map[string]string{v1.EventRecordsResolved: corev1.EventTypeNormal, v1.EventNeedsAttention: corev1.EventTypeWarning}[e.Reason]; e.Type != want {
			return nil, fmt.Errorf("%s event of type %s, want %s", e.Reason, e.Type, want)
		}
		out[e.Reason] = append(out[e.Reason], e.Note)
	}
	return out, nil
}

func getPair(ctx context.Context, ns, name string) (*v1.ReplicationPair, error) {
	var p v1.ReplicationPair
	err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &p)
	return &p, err
}

func TestReportFoldedIntoStatus(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	pair := newPair(ns, "fold")
	createPair(t, ctx, pair)
	markAvailable(t, ctx, ns, "fold")
	eventually(t, "role bound", func() error {
		return k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "fold-replicator"}, &rbacRoleBinding)
	})

	rc := replicatorClient(t, ns, "fold")
	// Least privilege: the replicator cannot touch another ConfigMap.
	_, err := rc.CoreV1().ConfigMaps(ns).Get(ctx, "other", metav1.GetOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("replicator reading another configmap: err = %v, want Forbidden", err)
	}

	const n = 2500
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	sum := bigReport("fold", n, t0)
	sink := replicatorSink(t, ns, "fold", operator.ReportConfigMapName("fold"))
	if err := sink.Publish(ctx, sum); err != nil {
		t.Fatalf("publish as the replicator: %v", err)
	}
	var cm corev1.ConfigMap
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "fold-report"}, &cm); err != nil {
		t.Fatal(err)
	}
	t.Logf("report ConfigMap with %d decisions: %d bytes", n, len(cm.Data[reportkube.DataKey]))

	var p *v1.ReplicationPair
	eventually(t, "report folded", func() (err error) {
		p, err = getPair(ctx, ns, "fold")
		if err != nil {
			return err
		}
		if p.Status.Report.DecisionCounts["update/none"] != n-7 {
			return fmt.Errorf("decision counts %v", p.Status.Report.DecisionCounts)
		}
		return nil
	})
	cond := func(typ string) metav1.Condition {
		for _, c := range p.Status.Conditions {
			if c.Type == typ {
				return c
			}
		}
		return metav1.Condition{}
	}
	for typ, want := range map[string]string{
		v1.ConditionReady: "True/" + v1.ReasonAvailable, v1.ConditionInSync: "True/" + v1.ReasonCaughtUp,
		v1.ConditionSplitBrainSuspected: "True/" + v1.ReasonReplicaOnlyKept,
	} {
		if c := cond(typ); string(c.Status)+"/"+c.Reason != want {
			t.Errorf("condition %s = %s/%s (%s), want %s", typ, c.Status, c.Reason, c.Message, want)
		}
	}
	if got := p.Status.Report.MismatchCounts["replica-only"]; got != 20 {
		t.Errorf("mismatch count %d, want 20", got)
	}
	if len(p.Status.Report.RecentDecisions) != v1.MaxRecentRecords || len(p.Status.Report.RecentMismatches) != v1.MaxRecentRecords {
		t.Errorf("recent lists %d/%d, want %d each", len(p.Status.Report.RecentDecisions), len(p.Status.Report.RecentMismatches), v1.MaxRecentRecords)
	}
	if newest := p.Status.Report.RecentDecisions[0]; !newest.Time.Time.Equal(t0.Add((n - 1) * time.Second)) {
		t.Errorf("newest recent decision at %v, want %v", newest.Time, t0.Add((n-1)*time.Second))
	}
	if p.Status.LastBatch == nil || p.Status.LastBatch.Result != v1.BatchSucceeded || p.Status.LastBatch.Users != 40 {
		t.Errorf("last batch = %+v", p.Status.LastBatch)
	}
	if p.Status.Backlog == nil || *p.Status.Backlog != 0 {
		t.Errorf("backlog = %v", p.Status.Backlog)
	}
	raw, _ := json.Marshal(p.Status)
	t.Logf("status size with %d decisions and 20 mismatches: %d bytes", n, len(raw))
	if len(raw) >= 16*1024 {
		t.Errorf("status is %d bytes, want < 16 KiB", len(raw))
	}
	writeFigure(t, fmt.Sprintf("status_bytes_%d_decisions=%d", n, len(raw)))

	// kstatus: a healthy pair is Current.
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(p)
	if err != nil {
		t.Fatal(err)
	}
	res, err := status.Compute(&unstructured.Unstructured{Object: obj})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != status.CurrentStatus {
		t.Errorf("kstatus = %s (%s), want Current", res.Status, res.Message)
	}

	// `kubectl get rp` answers "is it healthy?".
	cols, row := tableRow(t, ctx, "/apis/replication.cyrusrepl.io/v1alpha1/namespaces/"+ns+"/replicationpairs/fold")
	t.Logf("kubectl get rp:\n%v\n%v", cols, row)
	for col, want := range map[string]string{"Ready": "True", "In-Sync": "True", "Split-Brain": "True", "Backlog": "0", "Status": "Available"} {
		i := slices.Index(cols, col)
		if i < 0 || fmt.Sprint(row[i]) != want {
			t.Errorf("column %s = %v, want %s (columns %v)", col, row, want, cols)
		}
	}

	// The manager's gauge sees at least this Ready pair.
	if err := metricValue(`cyrusrepl_pairs`, map[string]string{"condition": "SplitBrainSuspected", "status": "True"}, 1); err != nil {
		t.Error(err)
	}

	// One summary per kind of record, not one Event per record: a Warning for the 20
	// replica-only mismatches and 2 folders kept, a Normal one for the 5 tombstone deletes.
	eventually(t, "summary events", func() error {
		notes, err := summaryEvents(ctx, ns, p.UID)
		if err != nil {
			return err
		}
		w, n := notes[v1.EventNeedsAttention], notes[v1.EventRecordsResolved]
		if len(w) != 1 || len(n) != 1 {
			return fmt.Errorf("summaries %v, want one of each", notes)
		}
		if !strings.Contains(w[0], "22 new record(s) need a person") || !strings.Contains(w[0], "mismatch replica-only=20") ||
			!strings.Contains(n[0], "decision delete/tombstone=5") {
			return fmt.Errorf("summary notes %q", notes)
		}
		return nil
	})

	// Republishing the same content with a new Updated time writes nothing.
	rv := cm.ResourceVersion
	sum.Updated = sum.Updated.Add(time.Minute)
	if err := sink.Publish(ctx, sum); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "fold-report"}, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.ResourceVersion != rv {
		t.Errorf("unchanged report rewrote the ConfigMap: rv %s -> %s", rv, cm.ResourceVersion)
	}

	// A new mismatch gives exactly one new summary (after the test manager's short
	// interval), and old records are not counted again.
	m := report.Mismatch{Time: t0.Add(2 * time.Hour), User: "zed", Kind: report.MismatchUniqueIDCollision,
		UniqueID: "feedface", MasterName: "user.zed.X", ReplicaName: "user.zed.X", Detail: "different uniqueids"}
	m.ID = report.RecordID(m.User, m.UniqueID, m.Kind)
	sum.Mismatches = append(sum.Mismatches, m)
	sum.MismatchCounts[string(m.Kind)]++
	if err := sink.Publish(ctx, sum); err != nil {
		t.Fatal(err)
	}
	eventually(t, "one more summary", func() error {
		notes, err := summaryEvents(ctx, ns, p.UID)
		if err != nil {
			return err
		}
		w := notes[v1.EventNeedsAttention]
		if len(w) != 2 || len(notes[v1.EventRecordsResolved]) != 1 {
			return fmt.Errorf("summaries %v, want a second Warning only", notes)
		}
		for _, note := range w {
			if strings.Contains(note, "[record "+m.ID+"]") {
				if !strings.HasPrefix(note, "1 new record(s)") {
					return fmt.Errorf("the new summary re-counts old records: %q", note)
				}
				return nil
			}
		}
		return fmt.Errorf("no summary names record %s: %q", m.ID, w)
	})
	eventually(t, "new mismatch folded", func() error {
		p, err := getPair(ctx, ns, "fold")
		if err != nil {
			return err
		}
		if len(p.Status.Report.RecentMismatches) == 0 || p.Status.Report.RecentMismatches[0].ID != m.ID {
			return fmt.Errorf("newest mismatch not folded yet")
		}
		return nil
	})
	assertQuietReconcile(t, ctx, ns, "fold")
}

// assertQuietReconcile runs a fresh pair reconciler (as after a manager restart) on a
// settled pair and checks that it writes nothing: same resourceVersion on the pair and on
// every owned object.
func assertQuietReconcile(t *testing.T, ctx context.Context, ns, name string) {
	t.Helper()
	objs := []client.Object{&v1.ReplicationPair{}, &appsv1.Deployment{}, &corev1.ConfigMap{}, &corev1.ServiceAccount{}, &rbacv1.Role{}, &rbacv1.RoleBinding{}}
	keys := []string{name, operator.ReplicatorName(name), operator.ReportConfigMapName(name), operator.ReplicatorName(name), operator.ReplicatorName(name), operator.ReplicatorName(name)}
	rvs := func() []string {
		var out []string
		for i, o := range objs {
			if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: keys[i]}, o); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%T=%s", o, o.GetResourceVersion()))
		}
		return out
	}
	before := rvs()
	r := &ReplicationPairReconciler{Client: k8s, Pod: operator.PodOptions{Image: testImage}}
	r.events = newReportEvents(k8s)
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}); err != nil {
		t.Fatal(err)
	}
	if after := rvs(); !slices.Equal(before, after) {
		t.Fatalf("a reconcile with nothing changed wrote:\nbefore %v\nafter  %v", before, after)
	}
}

// TestReapplyPairIsNoop applies the sample manifest twice with server-side apply, as a
// GitOps tool would; the second apply must not change the object.
func TestReapplyPairIsNoop(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	raw, err := os.ReadFile("../config/samples/replication_v1alpha1_replicationpair.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		u.SetNamespace(ns)
		objs = append(objs, u)
	}
	applyAll := func() {
		t.Helper()
		for _, u := range objs {
			if err := k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(u.DeepCopy()), client.FieldOwner("gitops"), client.ForceOwnership); err != nil {
				t.Fatalf("apply %s: %v", u.GetKind(), err)
			}
		}
	}
	applyAll()
	// Let the manager settle: status observed and the Deployment created.
	eventually(t, "pair observed", func() error {
		p, err := getPair(ctx, ns, "mail")
		if err != nil {
			return err
		}
		if p.Status.ObservedGeneration != p.Generation || len(p.Status.Conditions) == 0 {
			return fmt.Errorf("not observed yet")
		}
		_, err = getDeployment(ctx, ns, "mail")
		return err
	})
	// The manager may still be writing status right after the first observation (the
	// Deployment it just created reports back): wait until the pair is quiet, so that a
	// change seen below can only come from the re-apply.
	var before *v1.ReplicationPair
	lastRV := ""
	eventually(t, "pair quiet for a second", func() error {
		p, err := getPair(ctx, ns, "mail")
		if err != nil {
			return err
		}
		if p.ResourceVersion != lastRV {
			lastRV = p.ResourceVersion
			time.Sleep(time.Second)
			return fmt.Errorf("resourceVersion still moving (%s)", lastRV)
		}
		before = p
		return nil
	})
	applyAll()
	after, _ := getPair(ctx, ns, "mail")
	if before.ResourceVersion != after.ResourceVersion || before.Generation != after.Generation {
		t.Fatalf("re-apply changed the pair: rv %s -> %s, generation %d -> %d",
			before.ResourceVersion, after.ResourceVersion, before.Generation, after.Generation)
	}
	// The same with a plain update carrying the identical spec.
	if err := k8s.Update(ctx, after); err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != before.ResourceVersion {
		t.Fatalf("identical update changed rv %s -> %s", before.ResourceVersion, after.ResourceVersion)
	}
	// The sample resync passes admission too, and re-applying it is a no-op.
	rsRaw, err := os.ReadFile("../config/samples/replication_v1alpha1_userresync.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rsObj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(rsRaw, &rsObj.Object); err != nil {
		t.Fatal(err)
	}
	rsObj.SetNamespace(ns)
	for i := 0; i < 2; i++ {
		if err := k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(rsObj.DeepCopy()), client.FieldOwner("gitops"), client.ForceOwnership); err != nil {
			t.Fatalf("apply sample resync: %v", err)
		}
	}
	if r, err := getResync(ctx, ns, rsObj.GetName()); err != nil || r.Generation != 1 {
		t.Fatalf("sample resync: %v, generation %d", err, r.Generation)
	}

	// No server default crept into the spec: what Git holds is what the server holds.
	if after.Spec.ReplicaOnlyPolicy != "" || after.Spec.AuditInterval != nil || after.Spec.Replica.Port != 0 {
		t.Fatalf("server defaults in spec: %+v", after.Spec)
	}
}

// metricValue checks that the manager registry has a sample of name with labels >= min.
func metricValue(name string, labels map[string]string, min float64) error {
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		return err
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			if v := m.GetGauge().GetValue() + m.GetCounter().GetValue(); v >= min {
				return nil
			} else {
				return fmt.Errorf("%s%v = %v, want >= %v", name, labels, v, min)
			}
		}
	}
	return fmt.Errorf("no sample %s%v", name, labels)
}

// TestGarbledReport: a report ConfigMap holding garbage makes InSync Unknown with a
// readable reason; the manager neither crashes nor keeps retrying.
func TestGarbledReport(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	createPair(t, ctx, newPair(ns, "garbled"))
	rc := replicatorClient(t, ns, "garbled")
	eventually(t, "write garbage as the replicator", func() error {
		cm, err := rc.CoreV1().ConfigMaps(ns).Get(ctx, "garbled-report", metav1.GetOptions{})
		if err != nil {
			return err
		}
		cm.Data = map[string]string{reportkube.DataKey: `{"kind": "cyrusrepl.io/report/v1", "usersTotal": "many"`}
		_, err = rc.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
	eventually(t, "InSync Unknown/ReportInvalid", func() error {
		p, err := getPair(ctx, ns, "garbled")
		if err != nil {
			return err
		}
		c := cond(p.Status.Conditions, v1.ConditionInSync)
		if c.Status != metav1.ConditionUnknown || c.Reason != v1.ReasonReportInvalid || !strings.Contains(c.Message, "report.json") {
			return fmt.Errorf("InSync = %s/%s %q", c.Status, c.Reason, c.Message)
		}
		return nil
	})
}

// tableRow fetches path as a server-side Table (what kubectl get prints) and returns the
// column names and the first row.
func tableRow(t *testing.T, ctx context.Context, path string) ([]string, []any) {
	t.Helper()
	hc, err := rest.HTTPClientFor(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(restCfg.Host, "/")+restCfg.APIPath+path, nil)
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var tbl metav1.Table
	if err := json.Unmarshal(body, &tbl); err != nil {
		t.Fatalf("%s: %v: %.300s", path, err, body)
	}
	if len(tbl.Rows) == 0 {
		t.Fatalf("empty table for %s", path)
	}
	var cols []string
	for _, c := range tbl.ColumnDefinitions {
		cols = append(cols, c.Name)
	}
	return cols, tbl.Rows[0].Cells
}
