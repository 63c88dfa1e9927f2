// Package kube publishes replicator reports to a Kubernetes ConfigMap.
//
// The replicator pod is the only writer of the ConfigMap's data; the manager is the only
// writer of the custom resources' status and folds the ConfigMap into it. The pod's Role
// allows get/update/patch of that one ConfigMap (by resourceNames) and create.
//
// Contract: namespace from POD_NAMESPACE (downward API), name from --report-configmap
// ("<pair>-report" or "<resync>-report"), data key "report.json" = report.Summary JSON.
//
// It speaks to the API server over plain HTTPS (three calls: get, create, merge-patch of
// one ConfigMap) rather than through client-go, which would add ~280 packages, 30 MB of
// binary and 14 MB of resident memory to every replicator pod for these three calls.
package kube

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// DataKey is the ConfigMap data key holding the summary.
const DataKey = "report.json"

// NamespaceEnv names the environment variable holding the pod's namespace.
const NamespaceEnv = "POD_NAMESPACE"

// fieldManager identifies the replicator's writes in managedFields.
const fieldManager = "cyrusrepl-replicator"

// requestTimeout bounds each API call when the caller's context has no deadline.
const requestTimeout = 15 * time.Second

// The pod's service-account files (Kubernetes mounts them in every pod that has a token).
const (
	serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"
	maxResponse       = 4 << 20 // a ConfigMap is at most 1 MiB; a Status is small
)

// ConfigMapSink writes summaries to one ConfigMap.
type ConfigMapSink struct {
	client    *http.Client
	base      string // https://host:port, no trailing slash
	namespace string
	name      string
}

var _ report.Sink = (*ConfigMapSink)(nil)

// NewConfigMapSink returns a sink writing to namespace/name through client (which
// authenticates) at the API server host ("https://10.0.0.1:443").
func NewConfigMapSink(client *http.Client, host, namespace, name string) *ConfigMapSink {
	return &ConfigMapSink{client: client, base: strings.TrimSuffix(host, "/"), namespace: namespace, name: name}
}

// NewInClusterSink builds a sink from the pod's service account and POD_NAMESPACE.
func NewInClusterSink(name string) (report.Sink, error) {
	ns := os.Getenv(NamespaceEnv)
	if ns == "" {
		return nil, fmt.Errorf("report sink: %s is not set (downward API metadata.namespace)", NamespaceEnv)
	}
	if name == "" {
		return nil, errors.New("report sink: empty ConfigMap name")
	}
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("report sink: not in a cluster (KUBERNETES_SERVICE_HOST/PORT unset)")
	}
	ca, err := os.ReadFile(serviceAccountDir + "/ca.crt")
	if err != nil {
		return nil, fmt.Errorf("report sink: service-account CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("report sink: service-account ca.crt holds no PEM certificate")
	}
	tokenFile := serviceAccountDir + "/token"
	if _, err := os.Stat(tokenFile); err != nil {
		return nil, fmt.Errorf("report sink: service-account token: %w", err)
	}
	transport := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
	}
	client := &http.Client{Transport: bearerFromFile{file: tokenFile, next: transport}}
	return NewConfigMapSink(client, "https://"+net.JoinHostPort(host, port), ns, name), nil
}

// bearerFromFile adds the service-account token, read again for every request: the
// kubelet rotates projected tokens.
type bearerFromFile struct {
	file string
	next http.RoundTripper
}

func (b bearerFromFile) RoundTrip(r *http.Request) (*http.Response, error) {
	tok, err := os.ReadFile(b.file)
	if err != nil {
		return nil, fmt.Errorf("service-account token: %w", err)
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	return b.next.RoundTrip(r)
}

// Publish writes s to the ConfigMap, creating it when missing. It skips the write when
// the stored summary equals s apart from the Updated timestamp, so an idle replicator
// that republishes causes no API write and no status churn downstream.
func (k *ConfigMapSink) Publish(ctx context.Context, s *report.Summary) error {
	if s == nil {
		return errors.New("report sink: nil summary")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, requestTimeout)
		defer cancel()
	}
	if s.Kind == "" {
		cp := *s
		cp.Kind = report.SummaryKind
		s = &cp
	}
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("report sink: encode: %w", err)
	}
	where := k.namespace + "/" + k.name
	var cm configMap
	status, err := k.call(ctx, http.MethodGet, k.path(true), "", nil, &cm)
	switch {
	case err == nil:
		if sameContent(cm.Data[DataKey], s) {
			return nil
		}
	case status == http.StatusNotFound:
		body, err := json.Marshal(configMap{APIVersion: "v1", Kind: "ConfigMap",
			Metadata: objectMeta{Name: k.name, Namespace: k.namespace}, Data: map[string]string{DataKey: string(data)}})
		if err != nil {
			return fmt.Errorf("report sink: encode configmap: %w", err)
		}
		status, err = k.call(ctx, http.MethodPost, k.path(false), "application/json", body, nil)
		if err == nil {
			return nil
		}
		if status != http.StatusConflict {
			return fmt.Errorf("report sink: create configmap %s: %w", where, err)
		}
		// Created meanwhile (by the manager): fall through to the patch.
	default:
		return fmt.Errorf("report sink: get configmap %s: %w", where, err)
	}
	// A merge patch of the one data key: no read-modify-write race with the manager,
	// which only touches the ConfigMap's metadata (labels, owner reference).
	patch, err := json.Marshal(map[string]any{"data": map[string]string{DataKey: string(data)}})
	if err != nil {
		return fmt.Errorf("report sink: encode patch: %w", err)
	}
	if _, err := k.call(ctx, http.MethodPatch, k.path(true), "application/merge-patch+json", patch, nil); err != nil {
		return fmt.Errorf("report sink: patch configmap %s: %w", where, err)
	}
	return nil
}

// path is the ConfigMap's URL path (named) or its collection's.
func (k *ConfigMapSink) path(named bool) string {
	p := "/api/v1/namespaces/" + url.PathEscape(k.namespace) + "/configmaps"
	if named {
		p += "/" + url.PathEscape(k.name)
	}
	return p
}

// call sends one request and decodes a 2xx reply into out (when non-nil). A non-2xx
// reply is an error carrying the API server's message; its status code is returned.
func (k *ConfigMapSink) call(ctx context.Context, method, path, contentType string, body []byte, out any) (int, error) {
	u := k.base + path
	if method != http.MethodGet {
		u += "?fieldManager=" + fieldManager
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: read reply: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var st struct {
			Message string `json:"message"`
			Reason  string `json:"reason"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &st) == nil && st.Message != "" {
			msg = st.Message
		}
		return resp.StatusCode, fmt.Errorf("%s (HTTP %d): %s", method, resp.StatusCode, msg)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode reply: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// configMap is the part of a v1 ConfigMap the sink reads and writes.
type configMap struct {
	APIVersion string            `json:"apiVersion,omitempty"`
	Kind       string            `json:"kind,omitempty"`
	Metadata   objectMeta        `json:"metadata"`
	Data       map[string]string `json:"data,omitempty"`
}

type objectMeta struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// sameContent compares a stored summary with s, ignoring Updated.
func sameContent(stored string, s *report.Summary) bool {
	if stored == "" {
		return false
	}
	var old report.Summary
	if err := json.Unmarshal([]byte(stored), &old); err != nil {
		return false
	}
	a, b := old, *s
	a.Updated, b.Updated = time.Time{}, time.Time{}
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}
