package bench

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
)

// countingProxy relays TCP connections on 127.0.0.1 to target and counts the bytes in
// each direction, so that "bytes moved" is measured on the wire the same way for the
// replicator and for stock sync_client.
type countingProxy struct {
	ln       net.Listener
	target   string
	toTarget atomic.Int64 // client → server
	toClient atomic.Int64 // server → client
	wg       sync.WaitGroup
}

func startProxy(b *testing.B, target string) *countingProxy {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatalf("proxy listen: %v", err)
	}
	p := &countingProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	b.Cleanup(func() {
		_ = ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *countingProxy) Addr() string { return p.ln.Addr().String() }

// Total is the bytes relayed so far in both directions.
func (p *countingProxy) Total() int64 { return p.toTarget.Load() + p.toClient.Load() }

func (p *countingProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.wg.Add(2)
		go p.pipe(s, c, &p.toTarget)
		go p.pipe(c, s, &p.toClient)
	}
}

// pipe copies until EOF, then closes the write half so the other side sees the end.
func (p *countingProxy) pipe(dst, src net.Conn, n *atomic.Int64) {
	defer p.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		k, err := src.Read(buf)
		if k > 0 {
			n.Add(int64(k))
			if _, werr := dst.Write(buf[:k]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	} else {
		_ = dst.Close()
	}
	if tc, ok := src.(*net.TCPConn); ok {
		_ = tc.CloseRead()
	}
}

// stockConfig writes a copy of the master's imapd.conf whose "stock" channel points at
// addr (a counting proxy in front of Replica2). Everything else (configdirectory, spool,
// sync-log directory) stays the master's.
func stockConfig(b *testing.B, masterConf, addr string) string {
	b.Helper()
	data, err := os.ReadFile(masterConf)
	if err != nil {
		b.Fatal(err)
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		b.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^stock_sync_port:.*$`)
	if !re.Match(data) {
		b.Fatalf("%s has no stock_sync_port", masterConf)
	}
	data = re.ReplaceAll(data, []byte("stock_sync_port: "+port))
	out := filepath.Join(b.TempDir(), "imapd-stock-proxied.conf")
	if err := os.WriteFile(out, data, 0o600); err != nil {
		b.Fatal(err)
	}
	return out
}
