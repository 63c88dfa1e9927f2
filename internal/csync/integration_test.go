package csync_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/faultproxy"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func opts(p *cyruspair.Pair) csync.Options {
	return csync.Options{Username: p.ReplUser, Password: p.ReplPassword, Timeout: 30 * time.Second}
}

func dialMaster(t testing.TB, p *cyruspair.Pair, o csync.Options) *csync.MasterConn {
	t.Helper()
	m, err := csync.DialMaster(ctxT(t), p.Master.SyncAddr, o)
	if err != nil {
		t.Fatalf("dial master: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func dialReplica(t testing.TB, p *cyruspair.Pair, o csync.Options) *csync.ReplicaConn {
	t.Helper()
	r, err := csync.DialReplica(ctxT(t), p.Replica.SyncAddr, o)
	if err != nil {
		t.Fatalf("dial replica: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// seedAlice gives alice an INBOX with 3 delivered messages, a Sent folder with flags,
// a keyword and an expunged message, a nested folder, a subscription, a quota and a
// mailbox annotation. It is richer than cyruspair.SeedAlice on purpose: the CRC and
// copy tests need an expunged record and a keyword in Sent.
func seedAlice(t *testing.T, in *cyruspair.Instance) {
	t.Helper()
	in.CreateUser(t, "alice")
	for i := 1; i <= 3; i++ {
		in.Deliver(t, "alice", cyruspair.Message(fmt.Sprintf("inbox %d", i), strings.Repeat("line\r\n", i*10)))
	}
	in.CreateFolder(t, "alice", "Sent")
	in.CreateFolder(t, "alice", "Work")
	in.CreateFolder(t, "alice", "Work.Old")
	in.Append(t, "alice", "Sent", cyruspair.Message("sent 1", "hello"), `\Seen`)
	in.Append(t, "alice", "Sent", cyruspair.Message("sent 2", "world"), `\Seen`, `\Flagged`, "$Label1")
	in.Append(t, "alice", "Sent", cyruspair.Message("sent 3", "gone"))
	in.Append(t, "alice", "Sent", cyruspair.Message("sent 4", "kept"), `\Answered`)
	in.Store(t, "alice", "Sent", "3", "+FLAGS", `\Deleted`)
	in.Expunge(t, "alice", "Sent")
	in.Append(t, "alice", "Work.Old", cyruspair.Message("old", "stuff"))
	in.Subscribe(t, "alice", "Sent")
	in.SetQuota(t, "alice", 100000)
	in.SetAnnotation(t, "alice", "Sent", "/comment", "my sent mail")
}

// TestGetUserMatchesIMAP: GET USER on both ends agrees with IMAP LIST/STATUS.
func TestGetUserMatchesIMAP(t *testing.T) {
	p := cyruspair.Start(t, cyruspair.Options{})
	seedAlice(t, p.Master)
	if out, err := p.StockSyncClient(t, p.Replica, "-u", "alice"); err != nil {
		t.Fatalf("stock sync_client: %v\n%s", err, out)
	}
	ctx := ctxT(t)
	m := dialMaster(t, p, opts(p))
	r := dialReplica(t, p, opts(p))

	var states [2]*csync.UserState
	for i, end := range []struct {
		get  func(context.Context, string) (*csync.UserState, error)
		inst *cyruspair.Instance
	}{{m.GetUser, p.Master}, {r.GetUser, p.Replica}} {
		st, err := end.get(ctx, "alice")
		if err != nil {
			t.Fatalf("%s: GET USER: %v", end.inst.Name, err)
		}
		states[i] = st
		byName := map[string]csync.Mailbox{}
		for _, mb := range st.Mailboxes {
			byName[mb.Name] = mb
		}
		folders := end.inst.List(t, "alice")
		if len(folders) != len(byName) {
			t.Errorf("%s: IMAP LIST %v vs GET USER %d mailboxes", end.inst.Name, folders, len(byName))
		}
		for _, f := range folders {
			name := cyruspair.InternalName("alice", f)
			mb, ok := byName[name]
			if !ok {
				t.Errorf("%s: %s listed by IMAP, missing from GET USER", end.inst.Name, name)
				continue
			}
			st := end.inst.Status(t, "alice", f)
			if mb.UIDValidity != st.UIDValidity || mb.LastUID != st.UIDNext-1 || mb.HighestModSeq != st.HighestModSeq {
				t.Errorf("%s %s: csync uidvalidity=%d last_uid=%d modseq=%d; IMAP uidvalidity=%d uidnext=%d modseq=%d",
					end.inst.Name, name, mb.UIDValidity, mb.LastUID, mb.HighestModSeq, st.UIDValidity, st.UIDNext, st.HighestModSeq)
			}
		}
		if len(st.Subscriptions) != 1 || st.Subscriptions[0] != "user.alice.Sent" {
			t.Errorf("%s: subscriptions %v", end.inst.Name, st.Subscriptions)
		}
		if len(st.Quotas) != 1 || st.Quotas[0].Root != "user.alice" || st.Quotas[0].Resources["STORAGE"] != 100000 {
			t.Errorf("%s: quotas %+v", end.inst.Name, st.Quotas)
		}
		if sent := byName["user.alice.Sent"]; len(sent.Annotations) != 1 || sent.Annotations[0].Value != "my sent mail" {
			t.Errorf("%s: Sent annotations %+v", end.inst.Name, sent.Annotations)
		}
	}
	// After the stock sync both ends agree mailbox by mailbox, matched by uniqueid.
	rep := map[string]csync.Mailbox{}
	for _, mb := range states[1].Mailboxes {
		rep[mb.UniqueID] = mb
	}
	for _, mb := range states[0].Mailboxes {
		rb, ok := rep[mb.UniqueID]
		if !ok || rb.Name != mb.Name || rb.SyncCRC != mb.SyncCRC || rb.SyncCRCAnnot != mb.SyncCRCAnnot || rb.LastUID != mb.LastUID {
			t.Errorf("master %+v\nreplica %+v", mb, rb)
		}
	}
}

// TestFetchMatchesGUID: every message fetched from a seeded folder hashes to its GUID.
func TestFetchMatchesGUID(t *testing.T) {
	p := cyruspair.Start(t, cyruspair.Options{})
	seedAlice(t, p.Master)
	ctx := ctxT(t)
	m := dialMaster(t, p, opts(p))
	for _, name := range []string{"user.alice", "user.alice.Sent"} {
		mb, err := m.GetFullMailbox(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		live := 0
		for _, rec := range mb.Records {
			if rec.Expunged() {
				continue
			}
			live++
			var buf bytes.Buffer
			f, err := m.FetchTo(ctx, csync.FetchRequest{MboxName: mb.Name, Partition: mb.Partition,
				UniqueID: mb.UniqueID, GUID: rec.GUID, UID: rec.UID}, &buf)
			if err != nil {
				t.Fatalf("%s UID %d: %v", name, rec.UID, err)
			}
			sum := sha1.Sum(buf.Bytes())
			if got := hex.EncodeToString(sum[:]); got != rec.GUID || f.GUID != rec.GUID || buf.Len() != int(rec.Size) {
				t.Errorf("%s UID %d: sha1 %s size %d, record GUID %s size %d", name, rec.UID, got, buf.Len(), rec.GUID, rec.Size)
			}
		}
		if want := p.Master.Status(t, "alice", strings.TrimPrefix(strings.TrimPrefix(name, "user.alice"), ".")).Messages; uint32(live) != want {
			t.Errorf("%s: %d live records, IMAP says %d messages", name, live, want)
		}
	}
	// A UID that does not exist.
	mb, _ := m.GetFullMailbox(ctx, "user.alice")
	_, err := m.FetchTo(ctx, csync.FetchRequest{MboxName: mb.Name, Partition: mb.Partition, UniqueID: mb.UniqueID,
		GUID: mb.Records[0].GUID, UID: 999}, io.Discard)
	if !errors.Is(err, csync.ErrMailboxNonexistent) {
		t.Fatalf("missing UID: %v", err)
	}
	if err := m.Noop(ctx); err != nil {
		t.Fatalf("conn unusable after NO: %v", err)
	}
}

// relay yields the bodies of the given records, fetched one at a time from the master:
// at most one message is open at once.
func relay(ctx context.Context, m *csync.MasterConn, mb *csync.Mailbox, recs []csync.Record) iter.Seq2[csync.Message, error] {
	return func(yield func(csync.Message, error) bool) {
		for _, rec := range recs {
			body, err := m.Fetch(ctx, csync.FetchRequest{MboxName: mb.Name, Partition: mb.Partition,
				UniqueID: mb.UniqueID, GUID: rec.GUID, UID: rec.UID})
			if err != nil {
				yield(csync.Message{}, err)
				return
			}
			ok := yield(csync.Message{Partition: mb.Partition, GUID: body.GUID, Size: int64(body.Size), Body: body}, nil)
			if err := body.Close(); err != nil {
				if ok {
					yield(csync.Message{}, err)
				}
				return
			}
			if !ok {
				return
			}
		}
	}
}

// copyMailbox copies one mailbox master → replica with RESERVE, MESSAGE and MAILBOX.
func copyMailbox(t *testing.T, ctx context.Context, m *csync.MasterConn, r *csync.ReplicaConn, name string, raw bool) *csync.Mailbox {
	t.Helper()
	mb, err := m.GetFullMailbox(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	var guids []string
	byGUID := map[string]csync.Record{}
	for _, rec := range mb.Records {
		if !rec.Expunged() {
			guids = append(guids, rec.GUID)
			byGUID[rec.GUID] = rec
		}
	}
	missing, err := r.ApplyReserve(ctx, mb.Partition, []string{name}, guids)
	if err != nil {
		t.Fatalf("APPLY RESERVE: %v", err)
	}
	var send []csync.Record
	for _, g := range missing {
		send = append(send, byGUID[g])
	}
	if n, err := r.ApplyMessage(ctx, relay(ctx, m, mb, send)); err != nil || n != len(send) {
		t.Fatalf("APPLY MESSAGE: sent %d of %d: %v", n, len(send), err)
	}
	if raw {
		err = r.ApplyMailboxRaw(ctx, mb.Raw, false)
	} else {
		err = r.ApplyMailbox(ctx, mb)
	}
	if err != nil {
		t.Fatalf("APPLY MAILBOX %s: %v", name, err)
	}
	return mb
}

// TestCopyFolderToReplica: a folder copied with this client alone ends with the same
// SYNC_CRC as the master's (by our own CRC code) and is visible over IMAP.
func TestCopyFolderToReplica(t *testing.T) {
	p := cyruspair.Start(t, cyruspair.Options{})
	seedAlice(t, p.Master)
	ctx := ctxT(t)
	o := opts(p)
	o.Compress = true // exercise DEFLATE against the real server on the write path
	m := dialMaster(t, p, opts(p))
	r := dialReplica(t, p, o)
	if !r.Compressed() {
		t.Fatal("COMPRESS DEFLATE not active")
	}
	if st, err := r.GetUser(ctx, "alice"); err != nil || len(st.Mailboxes) != 0 {
		t.Fatalf("replica not empty before the copy: %+v %v", st, err)
	}
	for _, tc := range []struct {
		name   string
		folder string
		raw    bool
	}{{"user.alice", "INBOX", false}, {"user.alice.Sent", "Sent", true}} {
		master := copyMailbox(t, ctx, m, r, tc.name, tc.raw)
		got, err := r.GetFullMailbox(ctx, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		mc, ma := csync.SyncCRC(master.Records), csync.SyncCRCAnnot(master.Records)
		t.Logf("%s: %d records, SYNC_CRC %d SYNC_CRC_ANNOT %d", tc.name, len(master.Records), mc, ma)
		if tc.folder == "Sent" && !hasExpungedAndKeyword(master.Records) {
			t.Errorf("seed lacks an expunged record or a keyword: %+v", master.Records)
		}
		rc, ra := csync.SyncCRC(got.Records), csync.SyncCRCAnnot(got.Records)
		if mc != master.SyncCRC || ma != master.SyncCRCAnnot {
			t.Errorf("%s: our CRC of master records %d/%d, master reports %d/%d", tc.name, mc, ma, master.SyncCRC, master.SyncCRCAnnot)
		}
		if rc != mc || ra != ma {
			t.Errorf("%s: replica CRC %d/%d != master %d/%d", tc.name, rc, ra, mc, ma)
		}
		if got.SyncCRC != rc || got.SyncCRCAnnot != ra {
			t.Errorf("%s: replica reports %d/%d, computed %d/%d", tc.name, got.SyncCRC, got.SyncCRCAnnot, rc, ra)
		}
		if got.UniqueID != master.UniqueID || got.LastUID != master.LastUID || len(got.Records) != len(master.Records) {
			t.Errorf("%s: replica %s last_uid %d records %d; master %s %d %d", tc.name, got.UniqueID, got.LastUID,
				len(got.Records), master.UniqueID, master.LastUID, len(master.Records))
		}
		ms, rs := p.Master.Status(t, "alice", tc.folder), p.Replica.Status(t, "alice", tc.folder)
		if ms.Messages != rs.Messages || ms.UIDValidity != rs.UIDValidity || ms.UIDNext != rs.UIDNext || rs.Messages == 0 {
			t.Errorf("%s: IMAP master %+v replica %+v", tc.name, ms, rs)
		}
	}
	if err := r.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// APPLY EXPUNGE of the first Sent message on the replica: silently expunged there
	// (no modseq bump), so the replica's CRC now differs from the master's.
	before := p.Replica.Status(t, "alice", "Sent").Messages
	sent, err := r.GetFullMailbox(ctx, "user.alice.Sent")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.ApplyExpunge(ctx, sent.Name, sent.UniqueID, []uint32{sent.Records[0].UID}); err != nil {
		t.Fatalf("APPLY EXPUNGE: %v", err)
	}
	after, err := r.GetFullMailbox(ctx, "user.alice.Sent")
	if err != nil {
		t.Fatal(err)
	}
	if !after.Records[0].Expunged() || csync.SyncCRC(after.Records) == csync.SyncCRC(sent.Records) ||
		csync.SyncCRC(after.Records) != after.SyncCRC || p.Replica.Status(t, "alice", "Sent").Messages != before-1 {
		t.Errorf("after APPLY EXPUNGE: record %+v crc %d (server %d, before %d)", after.Records[0],
			csync.SyncCRC(after.Records), after.SyncCRC, csync.SyncCRC(sent.Records))
	}
	// SINCE_MODSEQ that does not match the replica → IMAP_SYNC_CHANGED.
	mb, err := m.GetFullMailbox(ctx, "user.alice")
	if err != nil {
		t.Fatal(err)
	}
	mb.Since = &csync.Since{ModSeq: mb.HighestModSeq + 100}
	if err := r.ApplyMailbox(ctx, mb); !errors.Is(err, csync.ErrSyncChanged) {
		t.Fatalf("stale SINCE_MODSEQ: %v", err)
	}
	// A MAILBOX without required fields → IMAP_PROTOCOL_BAD_PARAMETERS; conn still usable.
	if _, err := r.ApplyRaw(ctx, "MAILBOX", csync.KV(csync.F("UNIQUEID", csync.Str("x")))); !errors.Is(err, csync.ErrBadParameters) {
		t.Fatalf("bad MAILBOX: %v", err)
	}
	if err := r.Noop(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRealServerErrors: wrong password, non-admin and unknown commands against Cyrus.
func TestRealServerErrors(t *testing.T) {
	p := cyruspair.Start(t, cyruspair.Options{})
	ctx := ctxT(t)
	o := opts(p)
	o.Password = "wrong-password"
	if _, err := csync.DialMaster(ctx, p.Master.SyncAddr, o); !errors.Is(err, csync.ErrAuthFailed) {
		t.Fatalf("wrong password: %v", err)
	}
	o = csync.Options{Username: "alice", Password: "alicepw"}
	if _, err := csync.DialMaster(ctx, p.Master.SyncAddr, o); !errors.Is(err, csync.ErrPermissionDenied) {
		t.Fatalf("non-admin: %v", err)
	}
	m := dialMaster(t, p, opts(p))
	// An unknown GET key: NO IMAP_PROTOCOL_ERROR, and the session is not reused.
	if _, err := m.GetRaw(ctx, "BOGUS", csync.Str("x")); !errors.Is(err, csync.ErrProtocol) {
		t.Fatalf("GET BOGUS: %v", err)
	}
	if err := m.Noop(ctx); !errors.Is(err, csync.ErrBroken) || !errors.Is(err, csync.ErrProtocol) {
		t.Fatalf("reuse after a protocol error: %v", err)
	}
	m = dialMaster(t, p, opts(p))
	if _, err := m.GetFullMailbox(ctx, "user.nobody"); !errors.Is(err, csync.ErrMailboxNonexistent) {
		t.Fatalf("GET FULLMAILBOX of nothing: %v", err)
	}
	st, err := m.GetUser(ctx, "nobody")
	if err != nil || len(st.Mailboxes) != 0 {
		t.Fatalf("GET USER nobody: %+v %v", st, err)
	}
	if err := m.Exit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Noop(ctx); !errors.Is(err, csync.ErrBroken) {
		t.Fatalf("after EXIT: %v", err)
	}
}

func hasExpungedAndKeyword(recs []csync.Record) (ok bool) {
	var exp, kw bool
	for _, r := range recs {
		exp = exp || r.Expunged()
		for _, f := range r.Flags {
			kw = kw || f == "$Label1"
		}
	}
	return exp && kw
}

// TestRealServerCutMidMessage: the real master's reply is cut inside the GET FETCH file
// literal (through a loopback fault proxy); the client reports an unexpected EOF and
// the session refuses reuse.
func TestRealServerCutMidMessage(t *testing.T) {
	p := cyruspair.Start(t, cyruspair.Options{})
	p.Master.CreateUser(t, "alice")
	p.Master.Deliver(t, "alice", cyruspair.Message("big", strings.Repeat("0123456789\r\n", 2000)))
	proxy, err := faultproxy.Start(p.Master.SyncAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ctx := ctxT(t)

	m, err := csync.DialMaster(ctx, proxy.Addr, opts(p))
	if err != nil {
		t.Fatal(err)
	}
	preamble := proxy.Forwarded() // banner and replies to AUTHENTICATE and NOOP
	mb, err := m.GetFullMailbox(ctx, "user.alice")
	if err != nil || len(mb.Records) != 1 {
		t.Fatalf("GET FULLMAILBOX: %v", err)
	}
	m.Close()
	rec := mb.Records[0]
	req := csync.FetchRequest{MboxName: mb.Name, Partition: mb.Partition, UniqueID: mb.UniqueID, GUID: rec.GUID, UID: rec.UID}
	header := int64(len(fmt.Sprintf("* MESSAGE %%{%s %s %d}\r\n", mb.Partition, rec.GUID, rec.Size)))
	proxy.CutAfter(preamble + header + int64(rec.Size)/2)

	m, err = csync.DialMaster(ctx, proxy.Addr, opts(p))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var buf bytes.Buffer
	_, err = m.FetchTo(ctx, req, &buf)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut fetch: %v (got %d bytes)", err, buf.Len())
	}
	if buf.Len() == 0 || buf.Len() >= int(rec.Size) {
		t.Fatalf("the cut was not inside the literal: %d of %d bytes", buf.Len(), rec.Size)
	}
	if err := m.Noop(ctx); !errors.Is(err, csync.ErrBroken) {
		t.Fatalf("reuse after the cut: %v", err)
	}
}
