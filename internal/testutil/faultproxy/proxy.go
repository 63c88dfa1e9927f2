// Package faultproxy is a TCP proxy on 127.0.0.1 for fault-injection tests: it relays
// connections to a real server and can, on command, delay traffic, stall it, cut every
// live connection, or cut a connection after a number of bytes.
package faultproxy

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy relays connections from Addr to a target address.
type Proxy struct {
	Addr   string
	target string
	ln     net.Listener

	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	delay     time.Duration
	stalled   chan struct{} // closed when not stalled
	cutAfter  int64         // cut a connection after this many bytes server→client (0: never)
	refuse    bool
	rewrite   [2][]byte // server→client: replace rewrite[0] with rewrite[1] (nil: none)
	accepted  atomic.Int64
	forwarded atomic.Int64
	closed    bool
	wg        sync.WaitGroup
}

// Start listens on a free loopback port and relays to target.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy listen: %w", err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]struct{}{}, stalled: closedChan()}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// SetDelay delays every chunk relayed in either direction by d.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// Stall stops relaying (connections stay open, bytes wait) until Resume.
func (p *Proxy) Stall() {
	p.mu.Lock()
	select {
	case <-p.stalled:
		p.stalled = make(chan struct{})
	default:
	}
	p.mu.Unlock()
}

// Resume undoes Stall.
func (p *Proxy) Resume() {
	p.mu.Lock()
	select {
	case <-p.stalled:
	default:
		close(p.stalled)
	}
	p.mu.Unlock()
}

// CutAfter makes every new connection close after n bytes from the server (0: never).
func (p *Proxy) CutAfter(n int64) {
	p.mu.Lock()
	p.cutAfter = n
	p.mu.Unlock()
}

// RewriteServer makes the proxy replace old with new in what the server sends (e.g. a
// version in a banner), within each chunk read: meant for a banner, which arrives in
// one read; with new "" nothing is rewritten.
func (p *Proxy) RewriteServer(old, new string) {
	p.mu.Lock()
	p.rewrite = [2][]byte{[]byte(old), []byte(new)}
	if old == "" {
		p.rewrite = [2][]byte{}
	}
	p.mu.Unlock()
}

// Refuse makes the proxy close new connections at once (the server looks down).
func (p *Proxy) Refuse(on bool) {
	p.mu.Lock()
	p.refuse = on
	p.mu.Unlock()
}

// CutAll closes every live connection now.
func (p *Proxy) CutAll() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns)
	for c := range p.conns {
		_ = c.Close()
	}
	return n
}

// Accepted is the number of client connections accepted so far.
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

// Forwarded is the number of bytes relayed server→client so far.
func (p *Proxy) Forwarded() int64 { return p.forwarded.Load() }

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.CutAll()
	p.Resume()
	p.wg.Wait()
	return err
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		p.mu.Lock()
		refuse, closed, cut := p.refuse, p.closed, p.cutAfter
		p.mu.Unlock()
		if refuse || closed {
			_ = c.Close()
			continue
		}
		s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.track(c, s)
		p.wg.Add(2)
		go p.pipe(s, c, cut, true)
		go p.pipe(c, s, 0, false)
	}
}

func (p *Proxy) track(conns ...net.Conn) {
	p.mu.Lock()
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	p.mu.Unlock()
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// pipe copies src to dst, applying the current faults, and closes both at the end.
func (p *Proxy) pipe(src, dst net.Conn, cutAfter int64, serverToClient bool) {
	defer p.wg.Done()
	defer func() {
		_ = src.Close()
		_ = dst.Close()
		p.untrack(src)
		p.untrack(dst)
	}()
	buf := make([]byte, 16*1024)
	var sent int64
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			delay, stalled, rw := p.delay, p.stalled, p.rewrite
			p.mu.Unlock()
			<-stalled
			if delay > 0 {
				time.Sleep(delay)
			}
			chunk := buf[:n]
			if serverToClient && rw[0] != nil {
				chunk = bytes.ReplaceAll(chunk, rw[0], rw[1])
				n = len(chunk)
			}
			if cutAfter > 0 && sent+int64(n) >= cutAfter {
				chunk = chunk[:cutAfter-sent]
				_, _ = dst.Write(chunk)
				if serverToClient {
					p.forwarded.Add(int64(len(chunk)))
				}
				return
			}
			if _, werr := dst.Write(chunk); werr != nil {
				return
			}
			sent += int64(n)
			if serverToClient {
				p.forwarded.Add(int64(n))
			}
		}
		if err != nil { // EOF or a cut: either way this direction is done
			return
		}
	}
}
