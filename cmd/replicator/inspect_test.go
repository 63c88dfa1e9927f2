package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestInspectUsage(t *testing.T) {
	t.Setenv("CYRUSREPL_PASSWORD", "x")
	for _, args := range [][]string{
		{"inspect"},
		{"inspect", "--user", "alice"},
		{"inspect", "--server", "127.0.0.1:1"},
		{"inspect", "--server", "127.0.0.1:1", "--user", "alice", "extra"},
		{"inspect", "--bogus-flag"},
		{"inspect", "--server", "127.0.0.1:1", "--user", "a", "--tls", "none", "--ca-file", "x"},
		{"inspect", "--server", "127.0.0.1:1", "--user", "a", "--tls", "starttls-please"},
		{"inspect", "--server", "127.0.0.1:1", "--user", "a", "--password-file", "/nonexistent"},
	} {
		if code, _, stderr := runCmd(t, args...); code != exitUsage || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
	os.Unsetenv("CYRUSREPL_PASSWORD")
	code, _, stderr := runCmd(t, "inspect", "--server", "127.0.0.1:1", "--user", "a")
	if code != exitUsage || !strings.Contains(stderr, "no password") {
		t.Errorf("no password: exit %d, %q", code, stderr)
	}
}

func TestInspectUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv("CYRUSREPL_PASSWORD", "x")
	code, stdout, stderr := runCmd(t, "inspect", "--server", addr, "--user", "alice")
	if code != exitUsage || stdout != "" || !strings.Contains(stderr, "cannot reach "+addr) || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("exit %d stdout %q stderr %q", code, stdout, stderr)
	}
}

func TestInspectRealServer(t *testing.T) {
	p := cyruspair.Start(t, cyruspair.Options{})
	in := p.Master
	in.CreateUser(t, "alice")
	in.Deliver(t, "alice", cyruspair.Message("one", "body one"))
	in.Deliver(t, "alice", cyruspair.Message("two", "body two"))
	in.CreateFolder(t, "alice", "Sent")
	in.Append(t, "alice", "Sent", cyruspair.Message("s", "sent"), `\Seen`)
	in.Subscribe(t, "alice", "Sent")
	in.SetQuota(t, "alice", 5000)
	in.Store(t, "alice", "INBOX", "1", "+FLAGS", `\Seen`) // gives alice seen state

	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(p.ReplPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd(t, append([]string{"inspect", "--server", in.SyncAddr, "--user", "alice",
		"--username", p.ReplUser, "--password-file", pwFile, "--timeout", "60s"}, inspectTLSFlags(p)...)...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	t.Logf("inspect output:\n%s", stdout)
	var out inspectOutput
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout)
	}

	// Compare with what the csync package reads directly.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := csync.DialMaster(ctx, in.SyncAddr, csync.Options{Username: p.ReplUser, Password: p.ReplPassword, TLS: p.ClientTLS()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	st, err := m.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Mailboxes) != len(st.Mailboxes) || len(st.Mailboxes) != 2 {
		t.Fatalf("inspect has %d mailboxes, GET USER %d", len(out.Mailboxes), len(st.Mailboxes))
	}
	for _, mb := range st.Mailboxes {
		got, ok := out.Mailboxes[mb.UniqueID]
		if !ok || got.Name != mb.Name || got.SyncCRC != mb.SyncCRC || got.SyncCRCAnnot != mb.SyncCRCAnnot ||
			got.LastUID != mb.LastUID || got.UIDValidity != mb.UIDValidity || got.HighestModSeq != mb.HighestModSeq {
			t.Errorf("mailbox %s: inspect %+v, GET USER %+v", mb.UniqueID, got, mb)
			continue
		}
		folder := strings.TrimPrefix(strings.TrimPrefix(mb.Name, "user.alice"), ".")
		if got.Records == nil || uint32(*got.Records) != in.Status(t, "alice", folder).Messages {
			t.Errorf("%s: records %v", mb.Name, got.Records)
		}
		if got.CRCVerified == nil || !*got.CRCVerified {
			t.Errorf("%s: CRC not verified", mb.Name)
		}
	}
	if len(out.Subscriptions) != 1 || out.Subscriptions[0] != "user.alice.Sent" {
		t.Errorf("subscriptions %v", out.Subscriptions)
	}
	if len(out.Quotas) != 1 || out.Quotas[0].Resources["STORAGE"] != 5000 {
		t.Errorf("quotas %+v", out.Quotas)
	}
	if out.User != "alice" || out.Server != in.SyncAddr || out.Seen == nil {
		t.Errorf("header %q %q seen %v", out.User, out.Server, out.Seen)
	}

	// Wrong password and a non-admin: exit 2 with one line naming the cause.
	for _, tc := range []struct{ user, pass, want string }{
		{p.ReplUser, "wrong", "wrong username or password"},
		{"alice", "alicepw", "not an admin"},
	} {
		t.Setenv("CYRUSREPL_PASSWORD", tc.pass)
		code, stdout, stderr := runCmd(t, append([]string{"inspect", "--server", in.SyncAddr, "--user", "alice", "--username", tc.user}, inspectTLSFlags(p)...)...)
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%s/%s: exit %d stdout %q stderr %q", tc.user, tc.pass, code, stdout, stderr)
		}
	}
}
