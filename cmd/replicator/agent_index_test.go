package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/agentclient"
	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/cyrusindex"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/agenttest"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// Tests in this file update folders from the master's index read by the agent
// (POST /v1/mailboxes/index), with --agent instead of --master-config.

// agentIndexUser is a user with a domain and a dot in the default namespace (the
// annotation owner token stands for it), a plain one in netnews.
func agentIndexUser(p *cyruspair.Pair) string {
	if p.Namespace == cyruspair.NamespaceDefault {
		return "john.doe@example.com"
	}
	return "fred"
}

// seedAgentIndexUser gives the user an INBOX and a folder with flagged mail.
func seedAgentIndexUser(t *testing.T, m *cyruspair.Instance, user string) {
	t.Helper()
	m.CreateUser(t, user)
	m.CreateFolder(t, user, "Work")
	for i := 0; i < 8; i++ {
		m.Deliver(t, user, cyruspair.Message(fmt.Sprintf("inbox %d", i), "body"))
		m.Append(t, user, "Work", cyruspair.Message(fmt.Sprintf("work %d", i), "body"), `\Seen`)
	}
	m.Store(t, user, "INBOX", "1:2", "+FLAGS", `\Flagged`, "$Label1")
}

// changeAgentIndexUser changes both folders: new mail, flags set and cleared, a
// per-message annotation (shared and the owner's), an expunge.
func changeAgentIndexUser(t *testing.T, m *cyruspair.Instance, user string, round int) {
	t.Helper()
	m.Deliver(t, user, cyruspair.Message(fmt.Sprintf("new %d", round), "body"))
	m.Append(t, user, "Work", cyruspair.Message(fmt.Sprintf("new work %d", round), "body"), "$Other")
	m.Store(t, user, "INBOX", "3", "+FLAGS", `\Answered`, fmt.Sprintf("Project-%d", round))
	m.Store(t, user, "Work", "1", "-FLAGS", `\Seen`)
	c := m.IMAPAs(t, user)
	for _, cmd := range []string{
		"SELECT INBOX",
		fmt.Sprintf(`STORE 4 ANNOTATION (/comment (value.shared "shared note %d" value.priv "mine %d"))`, round, round),
		`STORE 5 +FLAGS (\Deleted)`,
		"EXPUNGE",
	} {
		if _, err := c.Cmd("%s", cmd); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
	}
}

// runWith runs the replicator with exactly args (no common flags added).
func runWith(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	code := run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// masterFolder is the master's MAILBOX line of one of the user's folders.
func masterFolder(t *testing.T, p *cyruspair.Pair, user, folder string) csync.Mailbox {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := csync.DialMaster(ctx, p.Master.SyncAddr, csync.Options{Username: p.ReplUser, Password: p.ReplPassword, TLS: p.ClientTLS()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	name := cyruspair.InternalName(user, folder)
	ms, err := c.GetMailboxes(ctx, []string{name})
	if err != nil || len(ms) != 1 {
		t.Fatalf("GET MAILBOXES %s: %v %v", name, ms, err)
	}
	return ms[0]
}

// agentClient is a client of a, as the replicator builds it.
func agentClient(t *testing.T, a *agenttest.Agent) *agentclient.Client {
	t.Helper()
	c, err := agentclient.New(agentclient.Options{URL: a.URL, TokenFile: a.TokenFile, CAFile: a.CAFile, Consumer: "test", Owner: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCLIRollingIndexDeltasThroughAgent: with --agent, a folder's index read through
// the agent equals the local read of the same index field for field (every record, and
// the records changed since a modseq); a rolling pass after new mail, flag changes, a
// per-message annotation and an expunge updates both folders as deltas (csync-stats:
// master-index DELTA, no GET FULLMAILBOX on the master) and leaves the replica equal to
// the master; with --index-deltas=false the same pass reads GET FULLMAILBOX.
func TestCLIRollingIndexDeltasThroughAgent(t *testing.T) {
	c := newCLI(t, "delayed")
	p, m := c.p, c.p.Master
	a := agenttest.Start(t, m, p.Channel)
	base := withAgent(c, a, t.TempDir())
	user := agentIndexUser(p)
	seedAgentIndexUser(t, m, user)
	if code, out, errs := runWith(t, append([]string{"sync", "--user", user}, base...)...); code != exitOK {
		t.Fatalf("sync: exit %d\n%s\n%s", code, errs, out)
	}
	// What the seeding logged: already in step.
	if code, out, errs := runWith(t, append([]string{"rolling", "--once"}, base...)...); code != exitOK {
		t.Fatalf("rolling: exit %d\n%s\n%s", code, errs, out)
	}

	for round, tc := range []struct {
		flags     []string
		wantDelta bool
	}{{nil, true}, {[]string{"--index-deltas=false"}, false}, {nil, true}} {
		changeAgentIndexUser(t, m, user, round)
		args := append(append([]string{"rolling", "--once"}, base...), tc.flags...)
		code, out, errs := runWith(t, args...)
		if code != exitOK {
			t.Fatalf("round %d %v: exit %d\n%s\n%s", round, tc.flags, code, errs, out)
		}
		got := csyncCounts(t, out)
		if tc.wantDelta && (got["master-index DELTA"] != 2 || got["master GET FULLMAILBOX"] != 0) {
			t.Fatalf("round %d: want two deltas (INBOX, Work) and no GET FULLMAILBOX on the master, csync-stats %v", round, got)
		}
		if !tc.wantDelta && (got["master-index DELTA"] != 0 || got["master GET FULLMAILBOX"] != 2) {
			t.Fatalf("round %d %v: want GET FULLMAILBOX of both folders and no delta, csync-stats %v", round, tc.flags, got)
		}
		for _, f := range []string{"INBOX", "Work"} {
			if ms, rs := m.Status(t, user, f), p.Replica.Status(t, user, f); ms != rs {
				t.Fatalf("round %d %s: replica %+v, master %+v", round, f, rs, ms)
			}
		}
	}
	if code, out, errs := runWith(t, append([]string{"verify", "--user", user}, base...)...); code != exitOK {
		t.Fatalf("verify: exit %d\n%s\n%s", code, errs, out)
	}

	// --master-partition is the replicator's own mount: with --agent it is refused.
	if code, _, errs := runWith(t, append(append([]string{"rolling", "--once"}, base...), "--master-partition", "default=/srv")...); code != exitUsage || !strings.Contains(errs, "--master-partition needs --master-config") {
		t.Fatalf("--agent --master-partition: exit %d %q, want a usage error", code, errs)
	}

	// The agent's answer is the local reader's, field for field.
	local, err := cyrusindex.NewLocal(m.ConfigPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	remote := agentClient(t, a)
	for _, f := range []string{"INBOX", "Work"} {
		mb := masterFolder(t, p, user, f)
		folder := cyrusindex.Folder{Name: mb.Name, UniqueID: mb.UniqueID, Partition: mb.Partition, Owner: user}
		for _, w := range []cyrusindex.Want{{}, {SinceModSeq: mb.HighestModSeq / 2, AfterUID: mb.LastUID - 1}, {SinceModSeq: mb.HighestModSeq, AfterUID: mb.LastUID}} {
			want, err := local.ReadIndex(context.Background(), folder, w)
			if err != nil {
				t.Fatal(err)
			}
			got, err := remote.ReadIndex(context.Background(), folder, w)
			if err != nil {
				t.Fatalf("%s %+v through the agent: %v", f, w, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s %+v: through the agent\n%+v\nlocally\n%+v", f, w, got, want)
			}
			if w == (cyrusindex.Want{}) && (len(got.Records) == 0 || (f == "INBOX") != hasAnnotation(got, "/comment")) {
				t.Fatalf("%s: %d records, want all of them, with the /comment annotation on one in the INBOX", f, len(got.Records))
			}
		}
	}
}

func hasAnnotation(idx *cyrusindex.Index, entry string) bool {
	for _, r := range idx.Records {
		for _, a := range r.Annotations {
			if a.Entry == entry {
				return true
			}
		}
	}
	return false
}

// setPartition writes conf as a copy of the master's imapd.conf with partition name at
// dir (what an agent with conf as --master-config reads its indexes from).
func setPartition(t *testing.T, master, conf, name, dir string) {
	t.Helper()
	b, err := os.ReadFile(master)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	found := false
	for _, l := range strings.Split(string(b), "\n") {
		if k, _, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "partition-"+name {
			l, found = "partition-"+name+": "+dir, true
		}
		out = append(out, l)
	}
	if !found {
		t.Fatalf("%s names no partition %s", master, name)
	}
	if err := os.WriteFile(conf, []byte(strings.Join(out, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
}

// copyFolder copies a folder's directory (from the partition at from) to the same
// place under the partition directory to, and returns the copy's cyrus.index.
func copyFolder(t *testing.T, from, to string, mb csync.Mailbox) string {
	t.Helper()
	src, err := cyrusindex.Dir(from, mb.UniqueID)
	if err != nil {
		t.Fatal(err)
	}
	dst, _ := cyrusindex.Dir(to, mb.UniqueID)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return filepath.Join(dst, cyrusindex.IndexFile)
}

// TestCLIRollingIndexDoubtThroughAgent: when the agent's index read is in doubt, the
// update falls back to GET FULLMAILBOX, csync-stats counts the fallback with its reason
// as the reader gave it on the agent's side, and the replica ends equal to the master.
// The agent reads the INBOX's index from a partition set aside for the test (its own
// copy of imapd.conf): an old copy of the folder (index-behind), a copy whose index
// header is damaged (checksum), none (missing); the real partition again: a delta.
func TestCLIRollingIndexDoubtThroughAgent(t *testing.T) {
	c := newCLI(t, "delayed")
	p, m := c.p, c.p.Master
	user := agentIndexUser(p)
	seedAgentIndexUser(t, m, user)
	parts, err := cyrusindex.Partitions(m.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	inbox := masterFolder(t, p, user, "INBOX")
	spool := parts[inbox.Partition]
	conf := filepath.Join(t.TempDir(), "imapd.conf")
	setPartition(t, m.ConfigPath, conf, inbox.Partition, spool)
	a := agenttest.Start(t, m, p.Channel)
	a.Kill(syscall.SIGTERM)
	a.Config = conf
	a.Restart(t)
	base := withAgent(c, a, t.TempDir())
	for _, args := range [][]string{{"sync", "--user", user}, {"rolling", "--once"}} {
		if code, out, errs := runWith(t, append(args, base...)...); code != exitOK {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, errs, out)
		}
	}

	old := filepath.Join(t.TempDir(), "old")
	copyFolder(t, spool, old, inbox)
	damaged := filepath.Join(t.TempDir(), "damaged")
	for i, tc := range []struct {
		name, partition string
		prepare         func()
		want            string // the csync-stats command of master-index
	}{
		{"old copy", old, nil, "FALLBACK index-behind"},
		{"damaged header", damaged, func() {
			idx := copyFolder(t, spool, damaged, inbox)
			f, err := os.OpenFile(idx, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte{0xde, 0xad}, 24); err != nil { // last appenddate: the header CRC no longer matches
				t.Fatal(err)
			}
		}, "FALLBACK checksum"},
		{"no folder", t.TempDir(), nil, "FALLBACK missing"},
		{"the real partition", spool, nil, "DELTA"},
	} {
		if tc.prepare != nil {
			tc.prepare()
		}
		setPartition(t, m.ConfigPath, conf, inbox.Partition, tc.partition)
		m.Deliver(t, user, cyruspair.Message(fmt.Sprintf("doubt %d", i), "body"))
		code, out, errs := runWith(t, append([]string{"rolling", "--once"}, base...)...)
		if code != exitOK {
			t.Fatalf("%s: exit %d\n%s\n%s", tc.name, code, errs, out)
		}
		got := csyncCounts(t, out)
		wantFull := 1.0
		if tc.want == "DELTA" {
			wantFull = 0
		}
		if got["master-index "+tc.want] != 1 || got["master GET FULLMAILBOX"] != wantFull {
			t.Fatalf("%s: want master-index %s once and %v GET FULLMAILBOX, csync-stats %v", tc.name, tc.want, wantFull, got)
		}
		if ms, rs := m.Status(t, user, "INBOX"), p.Replica.Status(t, user, "INBOX"); ms != rs {
			t.Fatalf("%s: replica %+v, master %+v", tc.name, rs, ms)
		}
	}
	if code, out, errs := runWith(t, append([]string{"verify", "--user", user}, base...)...); code != exitOK {
		t.Fatalf("verify: exit %d\n%s\n%s", code, errs, out)
	}
}
