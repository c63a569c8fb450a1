package pgtest

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
)

// Proxy is a TCP proxy for tests: it listens on 127.0.0.1 and forwards every
// connection to a target address (a Node's Addr). Stall makes it hold all
// traffic, in both directions and on new connections, without closing
// anything, as a hung server or a black-holed network would; Resume lets the
// held traffic through again. Its methods are safe for concurrent use.
type Proxy struct {
	Host   string
	Port   int
	target string
	l      net.Listener

	mu      sync.Mutex
	stalled bool
	wake    chan struct{} // closed when the stall ends or the proxy closes
	closed  bool
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
	cut     *cutFault // armed by CutOn; nil when none is armed
}

// cutFault is a one-shot fault armed by CutOn.
type cutFault struct {
	pattern      []byte
	beforeServer bool
	fired        chan struct{}
}

// NewProxy starts a proxy on 127.0.0.1:0 forwarding to target ("host:port").
// The caller must Close it.
func NewProxy(target string) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("pgtest: proxy: %w", err)
	}
	a := l.Addr().(*net.TCPAddr)
	p := &Proxy{Host: "127.0.0.1", Port: a.Port, target: target, l: l, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's "host:port".
func (p *Proxy) Addr() string { return net.JoinHostPort(p.Host, strconv.Itoa(p.Port)) }

// Stall holds all traffic from now on: bytes already read are not delivered,
// nothing more is read, new connections are accepted but not forwarded.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stalled || p.closed {
		return
	}
	p.stalled = true
	p.wake = make(chan struct{})
}

// Resume ends a stall: held traffic flows again.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stalled {
		return
	}
	p.stalled = false
	close(p.wake)
}

// Close stops listening, closes every connection and waits for the proxy's
// goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	if p.stalled {
		p.stalled = false
		close(p.wake)
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	err := p.l.Close()
	p.wg.Wait()
	return err
}

// CutOn arms a one-shot fault: the first chunk any client sends that
// contains pattern ends that client's connection, either before the chunk
// reaches the server (beforeServer) or right after the server answered it,
// dropping the answer. Either way the client sees its connection die
// without an answer; in the second case the server did run what it sent.
// The returned channel is closed when the fault fired.
func (p *Proxy) CutOn(pattern []byte, beforeServer bool) (fired <-chan struct{}) {
	f := &cutFault{pattern: append([]byte(nil), pattern...), beforeServer: beforeServer, fired: make(chan struct{})}
	p.mu.Lock()
	p.cut = f
	p.mu.Unlock()
	return f.fired
}

// takeCut returns the armed fault when chunk matches it, disarming it.
func (p *Proxy) takeCut(chunk []byte) *cutFault {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut == nil || !bytes.Contains(chunk, p.cut.pattern) {
		return nil
	}
	f := p.cut
	p.cut = nil
	return f
}

// pass waits while the proxy is stalled; false once it is closed.
func (p *Proxy) pass() bool {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return false
		}
		if !p.stalled {
			p.mu.Unlock()
			return true
		}
		wake := p.wake
		p.mu.Unlock()
		<-wake
	}
}

// track registers an open connection; false (and the connection closed) when
// the proxy is closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.l.Accept()
		if err != nil {
			return
		}
		if !p.track(client) {
			continue
		}
		p.wg.Add(1)
		go p.serve(client)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	defer p.untrack(client)
	// A connection that arrives during a stall is held before it reaches
	// the target.
	if !p.pass() {
		return
	}
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	if !p.track(server) {
		return
	}
	defer p.untrack(server)
	done := make(chan struct{}, 2)
	// dropAnswer is set when a CutOn fault let a chunk through: the
	// server's next bytes end the pair instead of reaching the client.
	var dropAnswer atomic.Pointer[cutFault]
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		p.copy(server, client, func(chunk []byte) bool {
			f := p.takeCut(chunk)
			if f == nil {
				return true
			}
			if f.beforeServer {
				close(f.fired)
				return false
			}
			dropAnswer.Store(f)
			return true
		})
		done <- struct{}{}
	}()
	go func() {
		defer p.wg.Done()
		p.copy(client, server, func([]byte) bool {
			if f := dropAnswer.Load(); f != nil {
				close(f.fired)
				return false
			}
			return true
		})
		done <- struct{}{}
	}()
	// When one direction ends, end the other: closing both connections
	// unblocks its Read (deferred untrack).
	<-done
}

// copy forwards src to dst, holding the bytes while stalled; it stops
// (ending the pair) at the first chunk forward refuses.
func (p *Proxy) copy(dst, src net.Conn, forward func(chunk []byte) bool) {
	buf := make([]byte, 32<<10)
	for {
		if !p.pass() {
			return
		}
		n, err := src.Read(buf)
		if n > 0 {
			if !p.pass() || !forward(buf[:n]) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			// io.EOF included: the PostgreSQL protocol needs no
			// half-close, so the pair ends.
			return
		}
	}
}
