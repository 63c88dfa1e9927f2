//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// repoRoot is two levels above this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// run executes a command with the repo as working directory; the output (stdout and
// stderr together) goes to the test log either way.
func run(t *testing.T, ctx context.Context, dir string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("$ %s %s (%.1fs)\n%s%s", name, strings.Join(args, " "), time.Since(start).Seconds(), stderr.String(), stdout.String())
	if err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return stdout.String(), nil
}

// cluster is a running hack/cluster.sh cluster.
type cluster struct {
	repo, dir, kubectl, kubeconfig string
}

func (c *cluster) kubectlOut(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.kubectl, append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func (c *cluster) apply(t *testing.T, ctx context.Context, manifest string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, c.kubectl, "--kubeconfig", c.kubeconfig, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s\nmanifest:\n%s", err, out, manifest)
	}
}

// getJSON reads one object into v.
func (c *cluster) getJSON(ctx context.Context, v any, args ...string) error {
	out, err := c.kubectlOut(ctx, append([]string{"get", "-o", "json"}, args...)...)
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(out), v)
}

// waitFor polls cond every half second until it reports done, returns an error, or the
// deadline passes; the deadline guards against a hang and is not a timing assertion.
func waitFor(t *testing.T, ctx context.Context, timeout time.Duration, what string, cond func(context.Context) (bool, string, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	last := ""
	for {
		done, state, err := cond(ctx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if done {
			t.Logf("%s (%.1fs)", what, time.Since(start).Seconds())
			return
		}
		last = state
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not reached within %s; last state: %s", what, timeout, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// recordedPIDs reads DIR/pids/*.pid ("PID STARTTIME") as written by hack/cluster.sh.
func recordedPIDs(t *testing.T, dir string) map[string][2]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "pids", "*.pid"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fields := strings.Fields(string(b))
		if len(fields) != 2 {
			t.Fatalf("%s: want \"PID STARTTIME\", got %q", f, b)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".pid")] = [2]string{fields[0], fields[1]}
	}
	return out
}

// procRunning reports whether the process pid with that start time still runs (a zombie
// waiting for PID 1 to reap it does not count).
func procRunning(pid, startTime string) bool {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndex(s, ") ")
	if i < 0 {
		return false
	}
	f := strings.Fields(s[i+2:])
	return len(f) > 19 && f[0] != "Z" && f[19] == startTime
}

// processesMentioning lists PIDs whose command line contains s.
func processesMentioning(s string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !bytes.Contains(b, []byte(s)) {
			continue
		}
		if st, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil {
			if i := bytes.LastIndex(st, []byte(") ")); i >= 0 && len(st) > i+2 && st[i+2] == 'Z' {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

// mountsUnder lists mount points below dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(strings.ReplaceAll(f[4], `\040`, " ")+"/", dir+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

// portFree reports whether nothing listens on 127.0.0.1:port.
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// tableCells splits one row of `kubectl get` output into its cells by the header's
// column offsets (kubectl aligns every cell under its header), so an empty cell is ""
// rather than shifting the ones after it.
func tableCells(header, row string) map[string]string {
	cells := map[string]string{}
	var starts []int
	for i := 0; i < len(header); i++ {
		if header[i] != ' ' && (i == 0 || header[i-1] == ' ') {
			starts = append(starts, i)
		}
	}
	for k, start := range starts {
		end := len(row)
		if k+1 < len(starts) && starts[k+1] < end {
			end = starts[k+1]
		}
		name := strings.Fields(header[start:])[0]
		if start < len(row) {
			cells[name] = strings.TrimSpace(row[start:end])
		} else {
			cells[name] = ""
		}
	}
	return cells
}

// httpGetLocal fetches a URL on this host and returns the body and status code.
func httpGetLocal(ctx context.Context, url string) (string, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode, err
}
