// Command smoke is the tiny workload of the cluster's end-to-end test. It prints one line
// that names the pod (from the downward API env POD_NAME) and the user it runs as, and
// with -apiserver it proves in-cluster API access the way an operator pod does it: the
// projected service-account token, the cluster CA, and KUBERNETES_SERVICE_HOST/PORT.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

func main() {
	apiserver := flag.Bool("apiserver", false, "also GET /version from the API server with the pod's service account")
	exitCode := flag.Int("exit", 0, "exit code to end with")
	sleep := flag.Duration("sleep", 0, "sleep this long before exiting")
	flag.Parse()
	host, _ := os.Hostname()
	fmt.Printf("cyrusrepl smoke: hello from pod=%s host=%s uid=%d gid=%d pid=%d\n",
		os.Getenv("POD_NAME"), host, os.Getuid(), os.Getgid(), os.Getpid())
	if *apiserver {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		v, err := apiVersion(ctx)
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "cyrusrepl smoke: apiserver:", err)
			os.Exit(3)
		}
		fmt.Printf("cyrusrepl smoke: in-cluster apiserver version=%s\n", v)
	}
	time.Sleep(*sleep)
	os.Exit(*exitCode)
}

// apiVersion GETs /version over the in-cluster connection, verifying the server against
// the service account's CA bundle.
func apiVersion(ctx context.Context) (string, error) {
	h, p := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if h == "" || p == "" {
		return "", fmt.Errorf("KUBERNETES_SERVICE_HOST/PORT not set")
	}
	token, err := os.ReadFile(saDir + "/token")
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	caPEM, err := os.ReadFile(saDir + "/ca.crt")
	if err != nil {
		return "", fmt.Errorf("ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return "", fmt.Errorf("ca.crt holds no certificate")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+net.JoinHostPort(h, p)+"/version", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /version: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "", fmt.Errorf("decode /version: %w", err)
	}
	return v.GitVersion, nil
}
