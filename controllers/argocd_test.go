package controllers

import (
	"fmt"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lua "github.com/yuin/gopher-lua"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
)

// argoHealth runs one of the project's Argo CD health checks (config/argocd) on obj, as
// Argo CD does: the object as the global table obj, the script's returned table read
// for status and message. gopher-lua is the interpreter Argo CD itself embeds.
func argoHealth(t *testing.T, script string, obj client.Object) (status, message string) {
	t.Helper()
	src, err := os.ReadFile("../config/argocd/" + script)
	if err != nil {
		t.Fatal(err)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	L := lua.NewState()
	defer L.Close()
	L.SetGlobal("obj", luaValue(L, m))
	if err := L.DoString(string(src)); err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	ret, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("%s returned %v, want a table", script, L.Get(-1))
	}
	return ret.RawGetString("status").String(), ret.RawGetString("message").String()
}

// luaValue converts decoded JSON into Lua values (objects to tables, arrays to 1-based
// tables), as Argo CD does before it calls a health script.
func luaValue(L *lua.LState, v any) lua.LValue {
	switch t := v.(type) {
	case map[string]any:
		tbl := L.NewTable()
		for k, e := range t {
			tbl.RawSetString(k, luaValue(L, e))
		}
		return tbl
	case []any:
		tbl := L.NewTable()
		for _, e := range t {
			tbl.Append(luaValue(L, e))
		}
		return tbl
	case string:
		return lua.LString(t)
	case bool:
		return lua.LBool(t)
	case int64:
		return lua.LNumber(t)
	case float64:
		return lua.LNumber(t)
	case nil:
		return lua.LNil
	}
	return lua.LString(fmt.Sprint(v))
}

// TestArgoCDHealth runs the Argo CD health checks on the objects the manager writes as
// a pair and its resyncs go through their states on the real API server.
func TestArgoCDHealth(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	wantHealth := func(script string, get func() (client.Object, error), status, msgPart string) {
		t.Helper()
		eventually(t, script+" "+status, func() error {
			obj, err := get()
			if err != nil {
				return err
			}
			s, m := argoHealth(t, script, obj)
			if s != status || !strings.Contains(m, msgPart) {
				return fmt.Errorf("health %s (%q), want %s (%q)", s, m, status, msgPart)
			}
			return nil
		})
	}
	pairObj := func() (client.Object, error) { return getPair(ctx, ns, "argo") }
	const rp, ur = "replicationpair-health.lua", "userresync-health.lua"

	// Just created, before the manager wrote status.
	pair := newPair(ns, "argo")
	if err := k8s.Create(ctx, pair); err != nil {
		t.Fatal(err)
	}
	if s, _ := argoHealth(t, rp, pair); s != "Progressing" {
		t.Fatalf("new pair: %s, want Progressing", s)
	}
	// Its Secrets are missing: a person must act.
	wantHealth(rp, pairObj, "Degraded", "ReferenceMissing")
	createPairSecrets(t, ctx, ns)
	wantHealth(rp, pairObj, "Progressing", "Progressing")
	markAvailable(t, ctx, ns, "argo")
	wantHealth(rp, pairObj, "Healthy", "")
	updatePair(t, ctx, types.NamespacedName{Namespace: ns, Name: "argo"}, func(p *v1.ReplicationPair) { p.Spec.Suspend = true })
	wantHealth(rp, pairObj, "Suspended", "suspended")

	// Resyncs: running, succeeded, and one whose pod cannot start.
	rs := &v1.UserResync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "argo-ok"},
		Spec: v1.UserResyncSpec{PairName: "argo", Users: []string{"alice"}, Mode: v1.ResyncSync}}
	if err := k8s.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	resync := func(name string) func() (client.Object, error) {
		return func() (client.Object, error) { return getResync(ctx, ns, name) }
	}
	wantHealth(ur, resync("argo-ok"), "Progressing", "Running")
	finishJob(t, ctx, ns, "argo-ok", true)
	wantHealth(ur, resync("argo-ok"), "Healthy", "Succeeded")

	bad := &v1.UserResync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "argo-bad"},
		Spec: v1.UserResyncSpec{PairName: "argo", Users: []string{"alice"}, Mode: v1.ResyncSync}}
	if err := k8s.Create(ctx, bad); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, ctx, ns, "argo-bad", v1.ResyncRunning)
	job, err := getJob(ctx, ns, "argo-bad")
	if err != nil {
		t.Fatal(err)
	}
	jobPod(t, ctx, job, corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
		Name: "replicator", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "not found"}},
	}}})
	wantHealth(ur, resync("argo-bad"), "Degraded", "ImagePullBackOff")

	// A resync waiting for a missing Secret is Degraded too (a person must act).
	if err := k8s.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cyrus-creds"}}); err != nil {
		t.Fatal(err)
	}
	waiting := &v1.UserResync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "argo-wait"},
		Spec: v1.UserResyncSpec{PairName: "argo", Users: []string{"alice"}, Mode: v1.ResyncSync}}
	if err := k8s.Create(ctx, waiting); err != nil {
		t.Fatal(err)
	}
	wantHealth(ur, resync("argo-wait"), "Degraded", "ReferenceMissing")
}
