package fault

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// garbler is a loopback relay in front of a real sync_server that, on the connections
// it is told to, rewrites the first data line ("* …") the server sends after the
// client's first GET command (so the session is set up and a real reply is hit). A
// rewrite returning nil closes the connection right after writing half of the line (a
// reply torn mid-line).
type garbler struct {
	Addr    string
	ln      net.Listener
	target  string
	rewrite func(line []byte) []byte
	which   func(n int64) bool // connection number (1-based) → garble it?
	after   string             // the client command after which to garble (default "GET ")
	conns   atomic.Int64
	garbled atomic.Int64
	wg      sync.WaitGroup
}

func startGarbler(t *testing.T, target string, which func(int64) bool, rewrite func([]byte) []byte) *garbler {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &garbler{Addr: ln.Addr().String(), ln: ln, target: target, rewrite: rewrite, which: which}
	g.wg.Add(1)
	go g.accept()
	t.Cleanup(func() { ln.Close(); g.wg.Wait() })
	return g
}

func (g *garbler) accept() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.DialTimeout("tcp", g.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		n := g.conns.Add(1)
		var sawGet atomic.Bool
		g.wg.Add(2)
		go func() { defer g.wg.Done(); watchCmd(s, c, g.after, &sawGet); s.Close(); c.Close() }()
		go func() { defer g.wg.Done(); g.relay(c, s, g.which(n), &sawGet); s.Close(); c.Close() }()
	}
}

// watchCmd copies client lines to the server and notes the first command starting with
// prefix.
func watchCmd(server, client net.Conn, prefix string, sawGet *atomic.Bool) {
	if prefix == "" {
		prefix = "GET "
	}
	r := bufio.NewReader(client)
	for {
		line, err := r.ReadBytes('\n')
		if bytes.HasPrefix(line, []byte(prefix)) {
			sawGet.Store(true)
		}
		if len(line) > 0 {
			if _, werr := server.Write(line); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// relay copies server lines to the client, rewriting one when garble is set.
func (g *garbler) relay(client, server net.Conn, garble bool, sawGet *atomic.Bool) {
	r := bufio.NewReader(server)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			if garble && sawGet.Load() && bytes.HasPrefix(line, []byte("* ")) {
				garble = false
				g.garbled.Add(1)
				out := g.rewrite(line)
				if out == nil {
					_, _ = client.Write(line[:len(line)/2])
					return
				}
				line = out
			}
			if _, werr := client.Write(line); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

var garbles = []struct {
	name    string
	rewrite func([]byte) []byte
	side    string // which server's replies are garbled
	after   string // garble the reply to this command (default: the first GET)
	extra   []string
}{
	{"dlist-noise", func([]byte) []byte { return []byte("* MAILBOX %(UNIQUEID ((((\x00\x01\x02 )))\"\r\n") }, "replica", "", nil},
	{"unknown-status", func([]byte) []byte { return []byte("XYZZY 42 not a status line\r\n") }, "replica", "", nil},
	{"huge-literal", func([]byte) []byte { return []byte("* MAILBOX %(UNIQUEID {99999999999}\r\n") }, "replica", "", nil},
	{"torn-line", func([]byte) []byte { return nil }, "replica", "", nil},
	// A small update from the master's index uploads its bodies without APPLY RESERVE:
	// these two take the full path, which reserves.
	{"reserve-reply-noise", func([]byte) []byte { return []byte("* MISSING (zz\x00 ((\r\n") }, "replica", "APPLY RESERVE", noDeltas},
	{"reserve-reply-torn", func([]byte) []byte { return nil }, "replica", "APPLY RESERVE", noDeltas},
	{"master-dlist-noise", func(l []byte) []byte { return bytes.Replace(l, []byte("%("), []byte("%((("), 1) }, "master", "", nil},
	{"master-torn-line", func([]byte) []byte { return nil }, "master", "", nil},
}

var noDeltas = []string{"--index-deltas=false"}

// TestGarbledServerReply hands the replicator garbled csync replies from the replica
// and from the master: dlist noise, an unknown status line, an absurd literal size,
// a reply torn mid-line. Each run must end in bounded time with exit 1 (never a panic
// or a hang), name the error in the failed user's JSON line, and leave nothing that a
// plain re-run against the real servers does not repair.
func TestGarbledServerReply(t *testing.T) {
	e := newEnv(t, "delayed")
	m := e.p.Master
	m.CreateUser(t, "alice")
	m.CreateFolder(t, "alice", "Sent")
	m.Deliver(t, "alice", cyruspair.Message("first", "x"))
	if r := e.run(t, time.Minute, "sync", "--user", "alice"); r.code != 0 {
		t.Fatalf("initial sync\n%s", r)
	}
	for i, gc := range garbles {
		t.Run(gc.name, func(t *testing.T) {
			m.Deliver(t, "alice", cyruspair.Message("garble "+gc.name, "y"))
			m.Append(t, "alice", "Sent", cyruspair.Message("garble "+gc.name, "z"))
			target := e.p.Replica.SyncAddr
			if gc.side == "master" {
				target = e.p.Master.SyncAddr
			}
			// Every connection: the start-up probe's (which sends no GET or APPLY, and
			// which the first attempt then works on) and the retry's.
			g := startGarbler(t, target, func(n int64) bool { return n >= 1 }, gc.rewrite)
			g.after = gc.after
			e.usePlain(g.Addr)
			if gc.side == "master" {
				e.Master = g.Addr
			} else {
				e.Replica = g.Addr
			}
			r := e.run(t, 2*time.Minute, "sync", append([]string{"--user", "alice", "--attempts", "2", "--io-timeout", "3s"}, gc.extra...)...)
			e.Master, e.Replica = e.p.Master.SyncAddr, e.p.Replica.SyncAddr
			if g.garbled.Load() == 0 {
				t.Fatalf("nothing was garbled: the test proved nothing\n%s", r)
			}
			if r.code != 1 || !failedWith(r.stdout, "alice", "") {
				t.Fatalf("want exit 1 and a failed user line\n%s", r)
			}
			u := failedLines(r.stdout)[0]
			retries := records(r.stdout, "retry")
			t.Logf("%d garbled replies; error: %v; retry lines: %d", g.garbled.Load(), u["error"], len(retries))
			if len(retries) != 1 || retries[0]["error"] == "" {
				t.Fatalf("want one retry line naming the error\n%s", r)
			}
			if r := e.run(t, time.Minute, "sync", "--user", "alice"); r.code != 0 {
				t.Fatalf("re-run against the real servers did not repair (case %d)\n%s", i, r)
			}
			e.assertEqual(t, "alice")
		})
	}
}

// TestGarbledReplyRollingRecovers garbles the replica's replies on two connections in a
// row while `replicator rolling` runs: it must fail, back off, reconnect and deliver
// the mail by itself.
func TestGarbledReplyRollingRecovers(t *testing.T) {
	e := newEnv(t, "delayed")
	m := e.p.Master
	m.CreateUser(t, "alice")
	m.Deliver(t, "alice", cyruspair.Message("first", "x"))
	if r := e.run(t, time.Minute, "sync", "--user", "alice"); r.code != 0 {
		t.Fatalf("initial sync\n%s", r)
	}
	// Connection 1 is the start-up probe's, which the first batch works on.
	g := startGarbler(t, e.p.Replica.SyncAddr, func(n int64) bool { return n == 1 || n == 2 },
		func([]byte) []byte { return []byte("* MAILBOX %(UNIQUEID ((((\r\n") })
	e.Replica = g.Addr
	e.usePlain(g.Addr)
	// --replica-cache=false: the update then reads the replica (a GET whose reply is
	// garbled) instead of planning from the ledger's record of it.
	roll := e.start(t, "rolling", "--sync-log", m.SyncLogDir(e.p.Channel), "--interval", "50ms",
		"--retry-base", "200ms", "--retry-max", "1s", "--io-timeout", "3s", "--replica-cache=false")
	m.Deliver(t, "alice", cyruspair.Message("second", "y"))
	waitMessages(t, e.p.Replica, "alice", "INBOX", 2, "after garbled replies", roll.output)
	out := roll.output()
	if g.garbled.Load() == 0 || !failedWith(out, "alice", "") {
		t.Fatalf("garbled %d replies, want a failed user line first\n%s", g.garbled.Load(), out)
	}
	if strings.Contains(out, "panic") {
		t.Fatalf("panic\n%s", out)
	}
	e.Replica = e.p.Replica.SyncAddr
	e.assertEqual(t, "alice")
	t.Logf("error reported: %v", failedLines(out)[0]["error"])
}
