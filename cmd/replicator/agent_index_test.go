package main

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
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
