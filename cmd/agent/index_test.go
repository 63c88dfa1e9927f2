package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/agent/api"
	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/cyrusindex"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// TestAgentIndexRequests: POST /v1/mailboxes/index answers a real folder's index (a
// head line, then the records it announces); a uniqueid or partition that is not one
// Cyrus could have named gets 400 and nothing of any index — not even of a copy of the
// folder placed where the name points; a well-formed uniqueid of no folder gets 404 with
// the reason "missing"; no token gets 401.
func TestAgentIndexRequests(t *testing.T) {
	p, a := startPair(t)
	m := p.Master
	m.CreateUser(t, "alice")
	for i := 0; i < 3; i++ {
		m.Deliver(t, "alice", cyruspair.Message("hello", "body"))
	}
	mb := masterMailbox(t, p, cyruspair.InternalName("alice", "INBOX"))
	parts, err := cyrusindex.Partitions(m.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := cyrusindex.Dir(parts[mb.Partition], mb.UniqueID)
	if err != nil {
		t.Fatal(err)
	}
	// A copy of the folder outside the partition, where a traversal would lead.
	decoy := filepath.Join(m.ConfigDir, "decoy")
	if out, err := exec.Command("cp", "-a", dir, decoy).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	rel, err := filepath.Rel(filepath.Join(parts[mb.Partition], "uuid", "x", "y"), decoy)
	if err != nil {
		t.Fatal(err)
	}
	h := newHC(a, "r")
	body := func(r api.IndexRequest) []byte {
		b, _ := json.Marshal(r)
		return b
	}
	good := api.IndexRequest{Name: mb.Name, UniqueID: mb.UniqueID, Partition: mb.Partition, Owner: "alice"}

	code, out := h.do(t, http.MethodPost, api.PathIndex, body(good))
	if code != http.StatusOK {
		t.Fatalf("index: %d %s", code, out)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	var head api.IndexHead
	if !sc.Scan() || json.Unmarshal(sc.Bytes(), &head) != nil || head.Records != 3 || head.Mailbox.UniqueID != mb.UniqueID {
		t.Fatalf("head %+v of %q", head, out)
	}
	n := 0
	for sc.Scan() {
		n++
	}
	if n != head.Records {
		t.Fatalf("%d record lines, head says %d", n, head.Records)
	}

	with := func(f func(*api.IndexRequest)) []byte {
		r := good
		f(&r)
		return body(r)
	}
	for _, b := range [][]byte{
		with(func(r *api.IndexRequest) { r.UniqueID = rel }),
		with(func(r *api.IndexRequest) { r.UniqueID = "../../../../" + mb.UniqueID }),
		with(func(r *api.IndexRequest) { r.UniqueID = decoy }),
		with(func(r *api.IndexRequest) { r.UniqueID = mb.UniqueID + "/." }),
		with(func(r *api.IndexRequest) { r.UniqueID = "" }),
		with(func(r *api.IndexRequest) { r.Partition = "decoy" }),              // named in no imapd.conf
		with(func(r *api.IndexRequest) { r.Partition = "../" + mb.Partition }), // not a partition name
		with(func(r *api.IndexRequest) { r.Partition = "" }),
		[]byte(`{"name":"` + mb.Name + `","uniqueid":"` + mb.UniqueID + `","partition":"` + mb.Partition + `","dir":"` + decoy + `"}`),
	} {
		code, out := h.do(t, http.MethodPost, api.PathIndex, b)
		var e api.Error
		if code != http.StatusBadRequest || json.Unmarshal([]byte(out), &e) != nil || e.Error == "" || strings.Contains(out, `"header"`) {
			t.Errorf("%s: %d %q, want 400 and an error only", b, code, out)
		}
	}

	other := "zz" + mb.UniqueID[2:] // well-formed, no such folder
	if other == mb.UniqueID {
		other = "yy" + mb.UniqueID[2:]
	}
	missing := with(func(r *api.IndexRequest) { r.UniqueID = other })
	code, out = h.do(t, http.MethodPost, api.PathIndex, missing)
	var ie api.IndexError
	if code != http.StatusNotFound || json.Unmarshal([]byte(out), &ie) != nil || ie.Reason != "missing" {
		t.Errorf("missing folder: %d %q, want 404 with reason missing", code, out)
	}

	resp := h.req(t, http.MethodPost, api.PathIndex, "", body(good))
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d", resp.StatusCode)
	}
	if _, err := os.Stat(filepath.Join(decoy, cyrusindex.IndexFile)); err != nil {
		t.Fatal(err)
	}
}

// masterMailbox is the master's MAILBOX line of one folder.
func masterMailbox(t *testing.T, p *cyruspair.Pair, name string) csync.Mailbox {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := csync.DialMaster(ctx, p.Master.SyncAddr, csync.Options{Username: p.ReplUser, Password: p.ReplPassword, TLS: p.ClientTLS()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ms, err := c.GetMailboxes(ctx, []string{name})
	if err != nil || len(ms) != 1 {
		t.Fatalf("GET MAILBOXES %s: %v %v", name, ms, err)
	}
	return ms[0]
}
