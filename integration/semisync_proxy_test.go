package integration

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// latencyProxy forwards a loopback port to a target (the S3 server),
// delaying every chunk of every request (a slow store), or refusing
// everything while down (an unreachable store).
type latencyProxy struct {
	ln     net.Listener
	target string
	delay  atomic.Int64 // nanoseconds added before forwarding a chunk to the target
	down   atomic.Bool

	mu    sync.Mutex
	conns []net.Conn
}

func startLatencyProxy(t *testing.T, target string) *latencyProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &latencyProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.closeAll() })
	return p
}

// URL is the proxy's http:// endpoint.
func (p *latencyProxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *latencyProxy) setDelay(d time.Duration) { p.delay.Store(int64(d)) }

// setDown cuts every connection and refuses new ones, or serves again.
func (p *latencyProxy) setDown(down bool) {
	p.down.Store(down)
	if down {
		p.closeAll()
	}
}

func (p *latencyProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *latencyProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go p.pipe(u, c, true)
		go p.pipe(c, u, false)
	}
}

func (p *latencyProxy) pipe(dst, src net.Conn, delayed bool) {
	defer dst.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if d := time.Duration(p.delay.Load()); delayed && d > 0 {
				time.Sleep(d)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
