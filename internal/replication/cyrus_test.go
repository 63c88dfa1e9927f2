package replication

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/executor"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/state"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// Tests in this file run against a real Cyrus 3.6 master and replica.

type env struct {
	p       *cyruspair.Pair
	x       *executor.Executor
	mu      sync.Mutex // executors of several workers emit at once
	records []any
}

func startEnv(t *testing.T, mode string, second bool) *env {
	t.Helper()
	p := cyruspair.Start(t, cyruspair.Options{DeleteMode: mode, SecondReplica: second})
	e := &env{p: p}
	e.x = e.executor(t, p.Replica)
	return e
}

func (e *env) executor(t *testing.T, target *cyruspair.Instance) *executor.Executor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opt := csync.Options{Username: e.p.ReplUser, Password: e.p.ReplPassword, TLS: e.p.ClientTLS()}
	m, err := csync.DialMaster(ctx, e.p.Master.SyncAddr, opt)
	if err != nil {
		t.Fatalf("dial master: %v", err)
	}
	r, err := csync.DialReplica(ctx, target.SyncAddr, opt)
	if err != nil {
		t.Fatalf("dial replica: %v", err)
	}
	t.Cleanup(func() { m.Close(); r.Close() })
	led, err := state.OpenLedger(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	db := masterMailboxesDB(t, e.p.Master, e.p.Channel)
	return &executor.Executor{Pair: "test", Master: m, Replica: r, Ledger: led, MailboxesDB: db.ForUsers,
		Emit: func(rec any) { e.mu.Lock(); e.records = append(e.records, rec); e.mu.Unlock() },
	}
}

func (e *env) sync(t *testing.T, users ...string) *executor.BatchResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := e.x.Sync(ctx, users, false)
	if err != nil {
		t.Fatalf("sync %v: %v", users, err)
	}
	return res
}

// state renders everything that must be equal between master and replica for a user:
// per folder uniqueid, name, uidvalidity, last_uid, highestmodseq, CRCs, ACL, records
// (uid, modseq, flags, guid, internaldate), plus quota, seen, subscriptions, sieve.
// Sieve scripts are read without SIEVE-MAILBOX, as SIEVE lines (name, GUID, active).
func userState(t *testing.T, addr string, p *cyruspair.Pair, user string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := csync.DialMaster(ctx, addr, csync.Options{Username: p.ReplUser, Password: p.ReplPassword, TLS: p.ClientTLS()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	u, err := c.GetUser(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, m := range u.Mailboxes {
		lines = append(lines, fmt.Sprintf("MAILBOX %s %s type=%q uv=%d last=%d hms=%d crc=%d/%d acl=%q opt=%q ann=%q",
			m.UniqueID, m.Name, m.Type, m.UIDValidity, m.LastUID, m.HighestModSeq, m.SyncCRC, m.SyncCRCAnnot, m.ACL, m.Options, executor.RenderAnnotations(m.Annotations)))
		if strings.ContainsAny(m.Type, "di") {
			continue
		}
		full, err := c.GetFullMailbox(ctx, m.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range full.Records {
			lines = append(lines, fmt.Sprintf("  RECORD %s %d ms=%d flags=%v guid=%s date=%d", m.Name, r.UID, r.ModSeq, r.Flags, r.GUID, r.InternalDate))
		}
	}
	for _, q := range u.Quotas {
		b, _ := json.Marshal(q.Resources)
		lines = append(lines, fmt.Sprintf("QUOTA %s %s", q.Root, b))
	}
	for _, s := range u.Seen {
		lines = append(lines, fmt.Sprintf("SEEN %+v", s))
	}
	subs := slices.Clone(u.Subscriptions)
	sort.Strings(subs)
	lines = append(lines, "LSUB "+strings.Join(subs, " "))
	for _, s := range u.Sieve {
		lines = append(lines, fmt.Sprintf("SIEVE %s %s active=%v", s.Filename, s.GUID, s.Active))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func assertEqual(t *testing.T, p *cyruspair.Pair, target *cyruspair.Instance, users ...string) {
	t.Helper()
	for _, u := range users {
		m, r := userState(t, p.Master.SyncAddr, p, u), userState(t, target.SyncAddr, p, u)
		if m != r {
			t.Fatalf("user %s differs\nmaster:\n%s\nreplica:\n%s", u, m, r)
		}
	}
}

func hasDecision(res *executor.BatchResult, a report.Action, ev report.Evidence, replicaName string) bool {
	for _, d := range res.Decisions {
		if d.Action == a && d.Evidence == ev && (replicaName == "" || d.ReplicaName == replicaName || d.MasterName == replicaName) {
			return true
		}
	}
	return false
}

func TestCyrusFullSyncAndIdempotence(t *testing.T) {
	e := startEnv(t, "delayed", false)
	cyruspair.SeedAlice(t, e.p.Master)
	res := e.sync(t, "alice")
	if !res.Equal || res.BodiesSent != 6 {
		t.Fatalf("first sync: equal=%v bodies=%d decisions=%+v", res.Equal, res.BodiesSent, res.Decisions)
	}
	assertEqual(t, e.p, e.p.Replica, "alice")
	// Idempotent: a second run changes nothing and uploads nothing.
	res = e.sync(t, "alice")
	if !res.Equal || res.BodiesSent != 0 || len(res.Decisions) != 0 {
		t.Fatalf("second sync not a no-op: %+v", res)
	}
	// Incremental: flags, expunge, new mail.
	e.p.Master.Store(t, "alice", "Work", "1", "-FLAGS", `\Flagged`)
	e.p.Master.Store(t, "alice", "INBOX", "2", "+FLAGS", `\Deleted`)
	e.p.Master.Expunge(t, "alice", "INBOX")
	e.p.Master.Deliver(t, "alice", cyruspair.Message("third", "third"))
	res = e.sync(t, "alice")
	if !res.Equal || res.BodiesSent != 1 {
		t.Fatalf("incremental: equal=%v bodies=%d", res.Equal, res.BodiesSent)
	}
	assertEqual(t, e.p, e.p.Replica, "alice")
}
