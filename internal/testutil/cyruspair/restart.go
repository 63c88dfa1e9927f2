package cyruspair

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Restart stops this instance's Cyrus master (SIGTERM to the pid the pair started),
// replaces or adds the given "key: value" options in its imapd.conf, and starts it
// again, waiting until its IMAP and sync banners answer: a configuration change made
// the way an operator makes one, under a running replicator.
func (i *Instance) Restart(t testing.TB, settings ...string) {
	t.Helper()
	pidFile := filepath.Join(i.Dir, "run", "master.pid")
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("restart %s: %v", i.Name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatalf("restart %s: pid file: %v", i.Name, err)
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(20 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("restart %s: master %d did not stop", i.Name, pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := setOptions(i.ConfigPath, settings); err != nil {
		t.Fatalf("restart %s: %v", i.Name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(CyrusBin, "master"), "-C", i.ConfigPath,
		"-M", filepath.Join(i.Dir, "cyrus.conf"), "-p", pidFile, "-L", filepath.Join(i.Dir, "master.log"), "-d")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("restart %s: master: %v\n%s", i.Name, err, out)
	}
	for _, addr := range []string{i.IMAPAddr, i.SyncAddr} {
		for !bannerAnswers(addr) {
			if ctx.Err() != nil {
				t.Fatalf("restart %s: %s did not answer", i.Name, addr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// setOptions replaces (or appends) "key: value" lines of an imapd.conf, keeping its
// owner and mode.
func setOptions(path string, settings []string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	for _, kv := range settings {
		key, _, ok := strings.Cut(kv, ":")
		if !ok {
			return fmt.Errorf("setting %q: want key: value", kv)
		}
		kept := lines[:0]
		for _, l := range lines {
			if !strings.HasPrefix(l, key+":") {
				kept = append(kept, l)
			}
		}
		lines = append(kept, kv)
	}
	return os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// bannerAnswers reports whether a server on addr sends an "* OK" line.
func bannerAnswers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "* OK") {
			return true
		}
	}
	return false
}
