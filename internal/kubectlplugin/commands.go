package kubectlplugin

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"

	replv1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
)

// StatusObject prints the pair as JSON or YAML (without managed fields), like
// `kubectl get -o`; it exits 0 whatever the pair's health.
func (p *Plugin) StatusObject(ctx context.Context, name, format string) (int, error) {
	var pair replv1.ReplicationPair
	if err := p.Client.Get(ctx, client.ObjectKey{Namespace: p.Opts.Namespace, Name: name}, &pair); err != nil {
		return ExitUsage, fmt.Errorf("get replicationpair %s/%s: %w", p.Opts.Namespace, name, err)
	}
	b, err := p.encode(&pair, format)
	if err != nil {
		return ExitUsage, err
	}
	_, err = p.Out.Write(b)
	return ExitOK, err
}

// encode renders an object (with its apiVersion and kind, without managed fields) as
// json or yaml.
func (p *Plugin) encode(obj client.Object, format string) ([]byte, error) {
	p.typed(obj)
	switch format {
	case "json":
		b, err := json.MarshalIndent(obj, "", "    ")
		return append(b, '\n'), err
	case "yaml":
		return yaml.Marshal(obj)
	}
	return nil, fmt.Errorf("unknown output format %q: use json or yaml", format)
}

// typed fills in apiVersion and kind (the client leaves them empty on typed objects)
// and drops the managed fields, which only repeat the object.
func (p *Plugin) typed(obj client.Object) {
	if gvk, err := apiutil.GVKForObject(obj, p.Client.Scheme()); err == nil {
		obj.GetObjectKind().SetGroupVersionKind(gvk)
	}
	obj.SetManagedFields(nil)
}

// SetSuspend sets or clears spec.suspend. Resume removes the field rather than writing
// false, so a manifest without it shows no drift.
func (p *Plugin) SetSuspend(ctx context.Context, name string, suspend bool) (int, error) {
	pair := &replv1.ReplicationPair{}
	pair.Namespace, pair.Name = p.Opts.Namespace, name
	patch := []byte(`{"spec":{"suspend":null}}`)
	verb := "resumed"
	if suspend {
		patch, verb = []byte(`{"spec":{"suspend":true}}`), "suspended"
	}
	if err := p.Client.Patch(ctx, pair, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return ExitUsage, fmt.Errorf("patch replicationpair %s/%s: %w", p.Opts.Namespace, name, err)
	}
	fmt.Fprintf(p.Out, "replicationpair.replication.cyrusrepl.io/%s %s\n", name, verb)
	if suspend {
		fmt.Fprintln(p.Out, "the replicator is scaled to zero; the master's sync log accumulates until `resume`.")
	}
	fmt.Fprintln(p.Out, "note: a GitOps tool that manages this pair sets spec.suspend back to what Git says.")
	return ExitOK, nil
}

// RequestAudit sets the pair's auditRequestedAt annotation to now; the manager runs one
// Audit UserResync per new value and names it in status.audit.lastResync.
func (p *Plugin) RequestAudit(ctx context.Context, name string, now time.Time) (int, error) {
	pair := &replv1.ReplicationPair{}
	pair.Namespace, pair.Name = p.Opts.Namespace, name
	at := now.UTC().Format(time.RFC3339Nano)
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{replv1.AnnotationAuditRequestedAt: at}}})
	if err != nil {
		return ExitUsage, fmt.Errorf("audit patch: %w", err)
	}
	if err := p.Client.Patch(ctx, pair, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return ExitUsage, fmt.Errorf("patch replicationpair %s/%s: %w", p.Opts.Namespace, name, err)
	}
	fmt.Fprintf(p.Out, "replicationpair.replication.cyrusrepl.io/%s audit requested at %s\n", name, at)
	rs := operator.RequestedAuditName(name, at)
	fmt.Fprintf(p.Out, "the manager creates UserResync %s; follow it with `kubectl get userresync %s -w`.\n", rs, rs)
	return ExitOK, nil
}

// replicatorPods lists the pods of the pair's Deployment, oldest first.
func (p *Plugin) replicatorPods(ctx context.Context, pair string) ([]corev1.Pod, error) {
	var pods corev1.PodList
	if err := p.Client.List(ctx, &pods, client.InNamespace(p.Opts.Namespace),
		client.MatchingLabels{operator.LabelPair: pair, operator.LabelComponent: "replicator"}); err != nil {
		return nil, fmt.Errorf("list pods of pair %s: %w", pair, err)
	}
	sort.Slice(pods.Items, func(i, j int) bool {
		return pods.Items[i].CreationTimestamp.Before(&pods.Items[j].CreationTimestamp)
	})
	return pods.Items, nil
}

// Logs prints the replicator's log. With several pods (a rollout) each is printed under
// a header; --follow streams the newest only.
func (p *Plugin) Logs(ctx context.Context, pair string) (int, error) {
	if err := p.needKube(); err != nil {
		return ExitUsage, err
	}
	pods, err := p.replicatorPods(ctx, pair)
	if err != nil {
		return ExitUsage, err
	}
	if len(pods) == 0 {
		return ExitFailed, fmt.Errorf("pair %s has no replicator pod (suspended? see: kubectl cyrusrepl status %s)", pair, pair)
	}
	if p.Opts.Follow {
		pods = pods[len(pods)-1:]
	}
	for _, pod := range pods {
		if len(pods) > 1 {
			fmt.Fprintf(p.Out, "==> pod %s <==\n", pod.Name)
		}
		if err := p.copyLog(ctx, pod.Name, p.Opts.Follow, p.Opts.Tail, p.Out); err != nil {
			return ExitFailed, err
		}
	}
	return ExitOK, nil
}

func (p *Plugin) needKube() error {
	if p.Kube == nil {
		return errors.New("no clientset for pod logs")
	}
	return nil
}

// copyLog copies one pod's replicator log to w.
func (p *Plugin) copyLog(ctx context.Context, pod string, follow bool, tail int64, w io.Writer) error {
	opts := &corev1.PodLogOptions{Container: "replicator", Follow: follow}
	if tail >= 0 {
		opts.TailLines = &tail
	}
	rc, err := p.Kube.CoreV1().Pods(p.Opts.Namespace).GetLogs(pod, opts).Stream(ctx)
	if err != nil {
		return fmt.Errorf("logs of pod %s: %w", pod, err)
	}
	defer rc.Close()
	if _, err := io.Copy(w, rc); err != nil && ctx.Err() == nil {
		return fmt.Errorf("logs of pod %s: %w", pod, err)
	}
	return nil
}

// Report writes a support bundle of the pair as a .tar.gz: the pair, its resyncs, the
// Events about them and their workloads, the report ConfigMaps, the Deployment, Jobs and
// pods, and the replicator logs. No Secret is read. What cannot be read (RBAC, a pod
// without a node) is listed in errors.txt; the bundle is written anyway.
func (p *Plugin) Report(ctx context.Context, pair string) (int, error) {
	ns := p.Opts.Namespace
	var pr replv1.ReplicationPair
	if err := p.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: pair}, &pr); err != nil {
		return ExitUsage, fmt.Errorf("get replicationpair %s/%s: %w", ns, pair, err)
	}
	path := p.Opts.File
	if path == "" {
		path = fmt.Sprintf("cyrusrepl-report-%s-%s.tar.gz", pair, time.Now().UTC().Format("20060102T150405Z"))
	}
	b := &bundle{p: p}
	b.collect(ctx, &pr)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return ExitUsage, fmt.Errorf("report: %w", err)
	}
	if err := b.write(f); err != nil {
		f.Close()
		return ExitFailed, fmt.Errorf("report %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return ExitFailed, fmt.Errorf("report %s: %w", path, err)
	}
	fmt.Fprintf(p.Out, "wrote %s (%d files", path, len(b.files))
	if len(b.errs) > 0 {
		fmt.Fprintf(p.Out, "; %d items could not be read, see errors.txt", len(b.errs))
	}
	fmt.Fprintln(p.Out, ")")
	return ExitOK, nil
}

// bundle gathers the files of a report in memory (a few MiB at most: the status and
// report ConfigMaps are bounded; logs are cut to maxLogLines per pod).
type bundle struct {
	p     *Plugin
	files []bundleFile
	errs  []string
}

type bundleFile struct {
	name string
	data []byte
}

// maxLogLines bounds each pod's log in a report.
const maxLogLines = 20000

func (b *bundle) add(name string, data []byte) { b.files = append(b.files, bundleFile{name, data}) }

func (b *bundle) fail(what string, err error) { b.errs = append(b.errs, what+": "+err.Error()) }

// addObjects adds objects as one YAML list.
func (b *bundle) addObjects(name string, objs []client.Object) {
	items := make([]json.RawMessage, 0, len(objs))
	for _, o := range objs {
		b.p.typed(o)
		raw, err := json.Marshal(o)
		if err != nil {
			b.fail(name, err)
			continue
		}
		items = append(items, raw)
	}
	out, err := yaml.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
	if err != nil {
		b.fail(name, err)
		return
	}
	b.add(name, out)
}

func (b *bundle) collect(ctx context.Context, pair *replv1.ReplicationPair) {
	ns, c := pair.Namespace, b.p.Client
	b.addObjects("replicationpair.yaml", []client.Object{pair})
	names := map[string]bool{pair.Name: true} // objects whose Events belong in the bundle
	reports := []string{operator.ReportConfigMapName(pair.Name)}

	var resyncs replv1.UserResyncList
	if err := c.List(ctx, &resyncs, client.InNamespace(ns)); err != nil {
		b.fail("userresyncs", err)
	}
	var rs []client.Object
	for i := range resyncs.Items {
		if r := &resyncs.Items[i]; r.Spec.PairName == pair.Name {
			rs = append(rs, r)
			names[r.Name] = true
			reports = append(reports, operator.ReportConfigMapName(r.Name))
		}
	}
	b.addObjects("userresyncs.yaml", rs)

	var cms []client.Object
	for _, n := range reports {
		var cm corev1.ConfigMap
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: n}, &cm); err != nil {
			if !apierrors.IsNotFound(err) {
				b.fail("configmap "+n, err)
			}
			continue
		}
		cms = append(cms, &cm)
	}
	b.addObjects("report-configmaps.yaml", cms)

	workloads := []struct {
		file string
		list client.ObjectList
	}{
		{"deployments.yaml", &appsv1.DeploymentList{}},
		{"jobs.yaml", &batchv1.JobList{}},
		{"pods.yaml", &corev1.PodList{}},
	}
	var pods []corev1.Pod
	for _, w := range workloads {
		if err := c.List(ctx, w.list, client.InNamespace(ns), client.MatchingLabels{operator.LabelPair: pair.Name}); err != nil {
			b.fail(w.file, err)
			continue
		}
		objs := listObjects(w.list)
		for _, o := range objs {
			names[o.GetName()] = true
		}
		if pl, ok := w.list.(*corev1.PodList); ok {
			pods = pl.Items
		}
		b.addObjects(w.file, objs)
	}
	b.collectEvents(ctx, ns, names)
	b.collectLogs(ctx, pods)
}

// listObjects returns the items of a list as objects.
func listObjects(list client.ObjectList) []client.Object {
	var out []client.Object
	switch l := list.(type) {
	case *appsv1.DeploymentList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *batchv1.JobList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *corev1.PodList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	}
	return out
}

// collectEvents adds the namespace's Events about the named objects, oldest first.
func (b *bundle) collectEvents(ctx context.Context, ns string, names map[string]bool) {
	var evs corev1.EventList
	if err := b.p.Client.List(ctx, &evs, client.InNamespace(ns)); err != nil {
		b.fail("events", err)
		return
	}
	var objs []client.Object
	for i := range evs.Items {
		if e := &evs.Items[i]; names[e.InvolvedObject.Name] {
			objs = append(objs, e)
		}
	}
	sort.SliceStable(objs, func(i, j int) bool {
		ti, tj := objs[i].GetCreationTimestamp(), objs[j].GetCreationTimestamp()
		return ti.Before(&tj)
	})
	b.addObjects("events.yaml", objs)
}

// collectLogs adds the replicator log of every pod of the pair (the last maxLogLines
// lines each).
func (b *bundle) collectLogs(ctx context.Context, pods []corev1.Pod) {
	if err := b.p.needKube(); err != nil {
		b.fail("logs", err)
		return
	}
	for _, pod := range pods {
		var buf bytes.Buffer
		if err := b.p.copyLog(ctx, pod.Name, false, maxLogLines, &buf); err != nil {
			b.fail("log of pod "+pod.Name, err)
			continue
		}
		b.add("logs/"+pod.Name+".log", buf.Bytes())
	}
}

// write writes the bundle as a gzip-compressed tar, with errors.txt when something
// could not be read.
func (b *bundle) write(w io.Writer) error {
	files := b.files
	if len(b.errs) > 0 {
		files = append(files, bundleFile{"errors.txt", []byte(strings.Join(b.errs, "\n") + "\n")})
	}
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	now := time.Now()
	for _, f := range files {
		hdr := &tar.Header{Name: "cyrusrepl-report/" + f.name, Mode: 0o600, Size: int64(len(f.data)), ModTime: now, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}
