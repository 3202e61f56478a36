package testenv

import (
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards a loopback port to a target server (a primary, the S3
// server) and injects the faults of a network between them: latency
// added to every request (fixed plus jitter), connections cut, frozen
// (kept open, nothing forwarded: a partition only a timeout notices) or
// refused, new connections dropped at random, and a target that moves (a
// VIP or DNS name pointed at another server). The tests and the bench
// share it: one proxy, one model of a slow or broken network.
//
// Latency is added once per request, not per packet: before forwarding
// the first bytes a client sends after it last received something (a new
// request on a kept-alive connection, or a new connection's first). A
// 16 MiB PUT then costs one delay, as a real store's round trip does.
type Proxy struct {
	ln net.Listener

	latency  atomic.Int64 // ns added per request
	jitter   atomic.Int64 // ns, uniform in [0, jitter) on top
	down     atomic.Bool
	requests atomic.Int64

	mu     sync.Mutex
	target string
	conns  []net.Conn
	frozen []chan struct{}
	rng    *rand.Rand
	drop   float64 // probability that a new connection is dropped
}

// StartProxy listens on a free loopback port and forwards to target.
// seed makes its random choices (jitter, drops) reproducible.
func StartProxy(target string, seed uint64) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	go p.serve()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is the proxy's http:// endpoint (for an S3 server behind it).
func (p *Proxy) URL() string { return "http://" + p.Addr() }

// Close stops listening and closes every connection.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Cut()
}

// SetLatency adds fixed plus a uniform [0, jitter) delay to every request.
func (p *Proxy) SetLatency(fixed, jitter time.Duration) {
	p.latency.Store(int64(fixed))
	p.jitter.Store(int64(jitter))
}

// SetDown cuts every connection and refuses new ones (an unreachable
// server), or serves again.
func (p *Proxy) SetDown(down bool) {
	p.down.Store(down)
	if down {
		p.Cut()
	}
}

// SetDropRate drops each new connection with probability rate (0..1).
func (p *Proxy) SetDropRate(rate float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drop = rate
}

// Retarget sends new connections to another server; current ones stay.
func (p *Proxy) Retarget(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = addr
}

// Cut closes every connection through the proxy; new ones work.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.frozen = nil
}

// Freeze stops forwarding on every current connection, keeping it open;
// new connections work.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.frozen {
		close(f)
	}
	p.frozen = nil
}

// Requests is how many requests (client turns) the proxy forwarded.
func (p *Proxy) Requests() int64 { return p.requests.Load() }

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target := p.target
		drop := p.drop > 0 && p.rng.Float64() < p.drop
		p.mu.Unlock()
		if p.down.Load() || drop {
			c.Close()
			continue
		}
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
		var turn atomic.Bool // the client's next bytes start a request
		turn.Store(true)
		go p.pipe(u, c, freeze, &turn, true)
		go p.pipe(c, u, freeze, &turn, false)
	}
}

// pipe copies src to dst until either fails, or stops copying (without
// closing) once freeze is closed. toTarget is the client's direction,
// where each request's latency is added.
func (p *Proxy) pipe(dst, src net.Conn, freeze chan struct{}, turn *atomic.Bool, toTarget bool) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-freeze:
			<-make(chan struct{}) // hold the sockets open, forward nothing
		default:
		}
		if n > 0 {
			if toTarget && turn.Swap(false) {
				p.requests.Add(1)
				if d := p.delay(); d > 0 {
					time.Sleep(d)
				}
			} else if !toTarget {
				turn.Store(true)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

func (p *Proxy) delay() time.Duration {
	d := time.Duration(p.latency.Load())
	if j := p.jitter.Load(); j > 0 {
		p.mu.Lock()
		d += time.Duration(p.rng.Int64N(j))
		p.mu.Unlock()
	}
	return d
}
