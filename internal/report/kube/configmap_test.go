package kube

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// Unit tests of the publish logic against a minimal in-memory stand-in for the API
// server's ConfigMap endpoints; the same sink runs against a real API server, as the
// replicator's ServiceAccount, in controllers/ (report_test.go, userresync tests), and
// in-cluster in the e2e test.
type fakeAPI struct {
	mu     sync.Mutex
	cms    map[string]map[string]any // path → object
	writes int
	fail   int // status to answer every request with (0: behave)
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != 0 {
		w.WriteHeader(f.fail)
		_, _ = io.WriteString(w, `{"kind":"Status","message":"configmaps \"x\" is forbidden: no","reason":"Forbidden"}`)
		return
	}
	body, _ := io.ReadAll(r.Body)
	switch r.Method {
	case http.MethodGet:
		cm, ok := f.cms[r.URL.Path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"kind":"Status","message":"not found","reason":"NotFound"}`)
			return
		}
		_ = json.NewEncoder(w).Encode(cm)
	case http.MethodPost:
		f.writes++
		var cm map[string]any
		_ = json.Unmarshal(body, &cm)
		name := cm["metadata"].(map[string]any)["name"].(string)
		path := r.URL.Path + "/" + name
		if _, ok := f.cms[path]; ok {
			w.WriteHeader(http.StatusConflict)
			return
		}
		if r.URL.Query().Get("fieldManager") != fieldManager || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		f.cms[path] = cm
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(cm)
	case http.MethodPatch:
		f.writes++
		cm, ok := f.cms[r.URL.Path]
		if !ok || r.Header.Get("Content-Type") != "application/merge-patch+json" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var p struct {
			Data map[string]string `json:"data"`
		}
		_ = json.Unmarshal(body, &p)
		data, _ := cm["data"].(map[string]any)
		if data == nil {
			data = map[string]any{}
		}
		for k, v := range p.Data {
			data[k] = v
		}
		cm["data"] = data
		_ = json.NewEncoder(w).Encode(cm)
	}
}

func (f *fakeAPI) stored(t *testing.T, path string) report.Summary {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	data, _ := f.cms[path]["data"].(map[string]any)
	var s report.Summary
	if err := json.Unmarshal([]byte(data[DataKey].(string)), &s); err != nil {
		t.Fatalf("stored report: %v", err)
	}
	return s
}

func newFake(t *testing.T) (*fakeAPI, *httptest.Server) {
	f := &fakeAPI{cms: map[string]map[string]any{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

const reportPath = "/api/v1/namespaces/ns/configmaps/mail-report"

func TestPublishCreateSkipPatch(t *testing.T) {
	ctx := context.Background()
	f, srv := newFake(t)
	sink := NewConfigMapSink(srv.Client(), srv.URL, "ns", "mail-report")
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	s := &report.Summary{Mode: "rolling", Pair: "mail", Started: t0, Updated: t0, UsersTotal: 3}

	if err := sink.Publish(ctx, s); err != nil {
		t.Fatal(err)
	}
	if got := f.stored(t, reportPath); got.Kind != report.SummaryKind || got.UsersTotal != 3 {
		t.Fatalf("stored %+v", got)
	}
	if s.Kind != "" {
		t.Fatalf("Publish modified the caller's summary")
	}
	if f.writes != 1 {
		t.Fatalf("%d writes after first publish, want 1", f.writes)
	}

	// Only Updated moved: no write.
	s2 := *s
	s2.Updated = t0.Add(time.Minute)
	if err := sink.Publish(ctx, &s2); err != nil {
		t.Fatal(err)
	}
	if f.writes != 1 {
		t.Fatalf("%d writes after an unchanged publish, want 1", f.writes)
	}

	// Content changed: one patch.
	s2.UsersTotal = 4
	if err := sink.Publish(ctx, &s2); err != nil {
		t.Fatal(err)
	}
	if f.writes != 2 {
		t.Fatalf("%d writes after a changed publish, want 2", f.writes)
	}
	if got := f.stored(t, reportPath); got.UsersTotal != 4 {
		t.Fatalf("after patch: %+v", got)
	}
}

func TestPublishKeepsManagerMetadata(t *testing.T) {
	// The manager pre-creates the ConfigMap with labels and an owner; the sink must only
	// touch data.
	f, srv := newFake(t)
	f.cms[reportPath] = map[string]any{"metadata": map[string]any{"name": "mail-report", "namespace": "ns",
		"labels": map[string]any{"app.kubernetes.io/managed-by": "cyrusrepl-operator"}}}
	if err := NewConfigMapSink(srv.Client(), srv.URL, "ns", "mail-report").Publish(context.Background(), &report.Summary{Mode: "sync"}); err != nil {
		t.Fatal(err)
	}
	labels, _ := f.cms[reportPath]["metadata"].(map[string]any)["labels"].(map[string]any)
	if labels["app.kubernetes.io/managed-by"] != "cyrusrepl-operator" || f.stored(t, reportPath).Mode != "sync" {
		t.Fatalf("configmap after publish: %+v", f.cms[reportPath])
	}
}

func TestPublishErrors(t *testing.T) {
	f, srv := newFake(t)
	sink := NewConfigMapSink(srv.Client(), srv.URL, "ns", "x")
	if err := sink.Publish(context.Background(), nil); err == nil {
		t.Fatal("nil summary accepted")
	}
	f.fail = http.StatusForbidden
	err := sink.Publish(context.Background(), &report.Summary{Mode: "sync"})
	if err == nil || !strings.Contains(err.Error(), "HTTP 403") || !strings.Contains(err.Error(), "is forbidden") {
		t.Fatalf("forbidden: %v", err)
	}
	t.Setenv(NamespaceEnv, "")
	if _, err := NewInClusterSink("x"); err == nil {
		t.Fatal("NewInClusterSink without POD_NAMESPACE succeeded")
	}
	t.Setenv(NamespaceEnv, "ns")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	if _, err := NewInClusterSink("x"); err == nil || !strings.Contains(err.Error(), "not in a cluster") {
		t.Fatalf("NewInClusterSink outside a cluster: %v", err)
	}
}
