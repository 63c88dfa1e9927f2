package mboxdb

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
	"github.com/cyrusrepl/cyrusrepl/internal/twoskip"
)

// goDump prints every live record of path as `cyr_dbtool … twoskip show` does:
// key TAB value LF, in key order.
func goDump(t *testing.T, path string) string {
	t.Helper()
	var b bytes.Buffer
	err := twoskip.ForEach(path, nil, b.Reset, func(k, v []byte) error {
		b.Write(k)
		b.WriteByte('\t')
		b.Write(v)
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatalf("go reader: %v", err)
	}
	return b.String()
}

func mailboxesDBPath(t *testing.T, m *cyruspair.Instance) string {
	t.Helper()
	r, err := NewReader("", m.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	return r.DB
}

func twoskipHeader(t *testing.T, path string) twoskip.Header {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := twoskip.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestCyrusTwoskipMatchesDBTool: on a master with many folders, renames (one to another
// user), delayed deletes, purged DELETED.* folders and users sharing a prefix, the Go
// reader lists exactly what `cyr_dbtool … twoskip show` prints, byte for byte, before
// and after a checkpoint (ctl_cyrusdb -c) rewrote the file; Get agrees on present and
// absent keys.
func TestCyrusTwoskipMatchesDBTool(t *testing.T) {
	p := cyruspair.Start(t, cyruspair.Options{DeleteMode: "delayed"})
	m := p.Master
	for _, u := range []string{"alice", "alice2", "bob"} {
		m.CreateUser(t, u)
	}
	admin, err := m.DialIMAP("", p.AdminUser, p.AdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	imap := func(format string, args ...any) {
		t.Helper()
		if _, err := admin.Cmd(format, args...); err != nil {
			t.Fatal(err)
		}
	}
	const folders = 1000
	for i := range folders {
		u := []string{"alice", "alice2", "bob"}[i%3]
		imap("CREATE %s", cyruspair.Quote(p.IMAPAdminName(u, fmt.Sprintf("F%04d", i))))
	}
	for i := 0; i < folders; i += 7 {
		u := []string{"alice", "alice2", "bob"}[i%3]
		imap("RENAME %s %s", cyruspair.Quote(p.IMAPAdminName(u, fmt.Sprintf("F%04d", i))), cyruspair.Quote(p.IMAPAdminName(u, fmt.Sprintf("R%04d", i))))
	}
	for i := 3; i < folders; i += 11 {
		if i%7 == 0 {
			continue // renamed
		}
		u := []string{"alice", "alice2", "bob"}[i%3]
		m.Delete(t, u, fmt.Sprintf("F%04d", i))
	}
	m.Tool(t, "cyr_expire", "-D", "0") // purge: orphan I records remain
	for i := 5; i < folders; i += 13 {
		if i%7 == 0 || i%11 == 3 {
			continue // renamed or already deleted
		}
		u := []string{"alice", "alice2", "bob"}[i%3]
		m.Delete(t, u, fmt.Sprintf("F%04d", i)) // delayed, kept
	}
	imap("RENAME %s %s", cyruspair.Quote(p.IMAPAdminName("alice", "F0006")), cyruspair.Quote(p.IMAPAdminName("bob", "FromAlice")))

	path := mailboxesDBPath(t, m)
	check := func(when string) {
		t.Helper()
		start := time.Now()
		want := m.MailboxesDB(t)
		toolTook := time.Since(start)
		start = time.Now()
		got := goDump(t, path)
		st, _ := os.Stat(path)
		t.Logf("%s: Go reader read %d records of %s (%d bytes) in %v (cyr_dbtool show: %v)", when, strings.Count(got, "\n"), filepath.Base(path), st.Size(), time.Since(start), toolTook)
		if got != want {
			t.Fatalf("%s: Go reader and cyr_dbtool show differ:\n%s", when, firstDiff(got, want))
		}
		if db := Parse([]byte(got)); len(db.Live) < folders/2 || len(db.Tombstones) == 0 || len(db.Bad) > 0 {
			t.Fatalf("%s: scenario not reached: %d live, %d tombstones, bad %v", when, len(db.Live), len(db.Tombstones), db.Bad)
		}
		for _, line := range strings.Split(strings.TrimSuffix(want, "\n"), "\n")[:50] {
			k, v, _ := strings.Cut(line, "\t")
			val, ok, err := twoskip.Get(path, []byte(k))
			if err != nil || !ok || string(val) != v {
				t.Fatalf("%s: Get %q = %q %v %v, want %q", when, k, val, ok, err, v)
			}
			if _, ok, err := twoskip.Get(path, []byte(k+"\x00")); ok || err != nil {
				t.Fatalf("%s: Get of absent %q: %v %v", when, k+"\x00", ok, err)
			}
		}
	}
	before := twoskipHeader(t, path)
	check("before checkpoint")
	m.Tool(t, "ctl_cyrusdb", "-c")
	m.Tool(t, "cyr_dbtool", path, "twoskip", "repack") // ctl_cyrusdb -c leaves a twoskip file be
	after := twoskipHeader(t, path)
	if after.Generation <= before.Generation {
		t.Fatalf("checkpoint did not rewrite %s: header %+v", path, after)
	}
	t.Logf("checkpoint: generation %d → %d, size %d → %d", before.Generation, after.Generation, before.CurrentSize, after.CurrentSize)
	check("after checkpoint")
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d (of %d / %d):\n go:         %q\n cyr_dbtool: %q", i+1, len(g), len(w), gl, wl)
		}
	}
	return "same"
}

// TestCyrusTwoskipWhileWriting: while an IMAP client creates and renames folders on the
// master (and repacks it now and then), the Go reader walks mailboxes.db again and again
// (every other time seeking its ranges through the skip list): every walk succeeds (or
// fails only with the documented "inconsistent every time" error), every record is
// well formed, and every folder whose rename was acknowledged before the walk began is
// there under its new name and not under its old one.
func TestCyrusTwoskipWhileWriting(t *testing.T) {
	p := cyruspair.Start(t, cyruspair.Options{DeleteMode: "delayed"})
	m := p.Master
	m.CreateUser(t, "alice")
	path := mailboxesDBPath(t, m)
	alice := m.IMAPAs(t, "alice")

	const rounds = 150
	var acked atomic.Int64 // renames 0..acked-1 are done
	var werr error
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range rounds {
			select {
			case <-stop:
				return
			default:
			}
			tmp, done := p.IMAPFolder(fmt.Sprintf("Tmp%04d", i)), p.IMAPFolder(fmt.Sprintf("Done%04d", i))
			if _, werr = alice.Cmd("CREATE %s", cyruspair.Quote(tmp)); werr != nil {
				return
			}
			if _, werr = alice.Cmd("RENAME %s %s", cyruspair.Quote(tmp), cyruspair.Quote(done)); werr != nil {
				return
			}
			if i%10 == 9 {
				if _, werr = alice.Cmd("DELETE %s", cyruspair.Quote(done)); werr != nil {
					return
				}
			}
			if i%25 == 24 { // a checkpoint writes a new file and renames it over the old one
				var out string
				if out, werr = m.RunTool("cyr_dbtool", path, "twoskip", "repack"); werr != nil {
					werr = fmt.Errorf("repack: %w: %s", werr, out)
					return
				}
			}
			acked.Store(int64(i + 1))
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	walks, retriedOut, restarts := 0, 0, 0
	for acked.Load() < rounds && werr == nil {
		before := int(acked.Load())
		keys := map[string]bool{} // live N records
		var prev string
		restart := func() { clear(keys); prev = ""; restarts++ }
		collect := func(k, v []byte) error {
			if string(k) <= prev && prev != "" {
				return fmt.Errorf("key %q after %q", k, prev)
			}
			prev = string(k)
			kv, err := parseKVList(string(v))
			if err != nil {
				return fmt.Errorf("record %q: garbled value %q: %v", k, v, err)
			}
			if !strings.ContainsRune(kv.str("T"), 'd') { // not a rename's tombstone
				keys[string(k)] = true
			}
			return nil
		}
		var err error
		if walks%2 == 0 {
			err = twoskip.ForEach(path, []byte("N"), restart, collect)
		} else { // every other read finds the two ranges through the skip list
			err = twoskip.Ranges(path, [][]byte{
				[]byte("N" + mboxname.InternalToDBName("user.alice.Tmp")),
				[]byte("N" + mboxname.InternalToDBName("user.alice.Done"))}, restart, collect)
		}
		walks++
		if errors.Is(err, twoskip.ErrInconsistent) && strings.Contains(err.Error(), "inconsistent every time") {
			retriedOut++
			continue
		}
		if err != nil {
			t.Fatalf("walk %d: %v", walks, err)
		}
		for i := range before {
			tmp := "N" + mboxname.InternalToDBName(fmt.Sprintf("user.alice.Tmp%04d", i))
			done := "N" + mboxname.InternalToDBName(fmt.Sprintf("user.alice.Done%04d", i))
			if keys[tmp] || (i%10 != 9 && !keys[done]) || (i%10 == 9 && keys[done]) {
				t.Fatalf("walk %d (after %d acknowledged rounds): round %d: Tmp there %v, Done there %v", walks, before, i, keys[tmp], keys[done])
			}
		}
	}
	if werr != nil {
		t.Fatalf("writer: %v", werr)
	}
	t.Logf("%d walks during %d create+rename rounds; %d restarts after an inconsistency; %d ran out of retries", walks, rounds, restarts, retriedOut)
	if walks < 10 || retriedOut > walks/2 {
		t.Fatalf("only %d walks, %d of them inconsistent every time", walks, retriedOut)
	}
}
