package integration

import (
	"net"
	"sync"
	"testing"
)

// tcpProxy forwards a loopback port to a target, and can cut or freeze the
// connections going through it: a cut closes them (the primary's host
// rebooted), a freeze stops forwarding while keeping them open (a network
// partition, which only a read timeout notices).
type tcpProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	conns  []net.Conn
	frozen []chan struct{}
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		u, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		freeze := make(chan struct{})
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.frozen = append(p.frozen, freeze)
		p.mu.Unlock()
		go pipe(c, u, freeze)
		go pipe(u, c, freeze)
	}
}

// pipe copies until either side fails, or stops copying (without closing)
// once freeze is closed.
func pipe(dst, src net.Conn, freeze chan struct{}) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-freeze:
			<-make(chan struct{}) // hold the sockets open, forward nothing
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// retarget sends new connections to another server (a VIP or DNS name
// moved); current ones stay as they are.
func (p *tcpProxy) retarget(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = addr
}

// cut closes every connection through the proxy.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// freeze stops forwarding on every current connection; new ones work.
func (p *tcpProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.frozen {
		close(f)
	}
	p.frozen = nil
}
