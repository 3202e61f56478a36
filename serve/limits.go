package serve

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/rs/zerolog"
)

// Limits bound what one client can hold of serve, so that whoever can
// reach the port cannot exhaust it before logging in. A zero field takes
// its default (DefaultLimits): binarc serve and restore's private serve
// both get them without asking.
type Limits struct {
	// HandshakeTimeout is how long a client has, from the accept, to
	// finish TLS and log in.
	HandshakeTimeout time.Duration
	// IdleTimeout is how long a logged-in client may send nothing between
	// commands. A dump is not idle: it is not timed.
	IdleTimeout time.Duration
	// MaxPreAuthPacket is the largest packet a client may announce before
	// it has logged in; a larger header closes the connection before a
	// byte of its body is read (go-mysql would otherwise allocate the
	// announced size and join 16 MiB continuation packets without bound).
	MaxPreAuthPacket int
	// MaxConnections is how many connections are held at once; one more
	// is answered "Too many connections" and closed.
	MaxConnections int
	// MaxConnectionsPerHost is the same for one client address (an IPv6
	// client's /64, which one host is usually given whole).
	MaxConnectionsPerHost int
}

// DefaultLimits are the limits a zero Limits field takes.
var DefaultLimits = Limits{
	HandshakeTimeout:      10 * time.Second,
	IdleTimeout:           5 * time.Minute,
	MaxPreAuthPacket:      64 << 10,
	MaxConnections:        64,
	MaxConnectionsPerHost: 8,
}

// Check refuses negative limits, naming binarc serve's flag.
func (l Limits) Check() error {
	_, err := l.withDefaults()
	return err
}

// withDefaults fills zero fields from DefaultLimits and refuses negative
// ones, naming binarc serve's flag.
func (l Limits) withDefaults() (Limits, error) {
	d := DefaultLimits
	for _, f := range []struct {
		v    int64
		flag string
	}{
		{int64(l.HandshakeTimeout), "--handshake-timeout"}, {int64(l.IdleTimeout), "--idle-timeout"},
		{int64(l.MaxPreAuthPacket), "max pre-authentication packet"},
		{int64(l.MaxConnections), "--max-connections"}, {int64(l.MaxConnectionsPerHost), "--max-connections-per-host"},
	} {
		if f.v < 0 {
			return l, fmt.Errorf("%s %d: must be positive (or 0 for the default)", f.flag, f.v)
		}
	}
	if l.HandshakeTimeout == 0 {
		l.HandshakeTimeout = d.HandshakeTimeout
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = d.IdleTimeout
	}
	if l.MaxPreAuthPacket == 0 {
		l.MaxPreAuthPacket = d.MaxPreAuthPacket
	}
	if l.MaxConnections == 0 {
		l.MaxConnections = d.MaxConnections
	}
	if l.MaxConnectionsPerHost == 0 {
		l.MaxConnectionsPerHost = d.MaxConnectionsPerHost
	}
	return l, nil
}

// connTable holds the open connections, counted in all and per client
// address, and refuses new ones beyond the limits or once closed.
type connTable struct {
	mu      sync.Mutex
	lim     Limits
	conns   map[net.Conn]string // the connection's host key
	perHost map[string]int
	closed  bool
}

func newConnTable(lim Limits) *connTable {
	return &connTable{lim: lim, conns: map[net.Conn]string{}, perHost: map[string]int{}}
}

// errShuttingDown is admit's answer for a connection accepted after
// close: it is closed unserved.
var errShuttingDown = errors.New("serve is shutting down")

// admit registers nc, or says why it is refused.
func (t *connTable) admit(nc net.Conn) error {
	host := hostKey(nc.RemoteAddr())
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return errShuttingDown
	case len(t.conns) >= t.lim.MaxConnections:
		return fmt.Errorf("too many connections: %d held (--max-connections)", len(t.conns))
	case t.perHost[host] >= t.lim.MaxConnectionsPerHost:
		return fmt.Errorf("too many connections from %s: %d held (--max-connections-per-host)", host, t.perHost[host])
	}
	t.conns[nc] = host
	t.perHost[host]++
	return nil
}

// release forgets nc.
func (t *connTable) release(nc net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	host, ok := t.conns[nc]
	if !ok {
		return
	}
	delete(t.conns, nc)
	if t.perHost[host]--; t.perHost[host] == 0 {
		delete(t.perHost, host)
	}
}

// closeAll closes every connection and refuses any later one.
func (t *connTable) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for c := range t.conns {
		c.Close()
	}
}

// hostKey is what MaxConnectionsPerHost counts by: the IPv4 address, or
// the IPv6 /64.
func hostKey(a net.Addr) string {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return a.String()
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// refuse answers a connection that is not served with a MySQL error
// packet in place of the greeting (as MariaDB does at max_connections:
// a replica shows it in Last_IO_Error and retries) and closes it.
func refuse(nc net.Conn, code uint16, state, msg string) {
	_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = nc.Write(errPacket(0, code, state, msg))
	nc.Close()
}

// errPacket is a MySQL ERR packet with sequence number seq.
func errPacket(seq byte, code uint16, state, msg string) []byte {
	n := 1 + 2 + 1 + len(state) + len(msg)
	p := make([]byte, 4, 4+n)
	p[0], p[1], p[2], p[3] = byte(n), byte(n>>8), byte(n>>16), seq
	p = append(p, mysql.ERR_HEADER)
	p = binary.LittleEndian.AppendUint16(p, code)
	p = append(p, '#')
	p = append(p, state...)
	return append(p, msg...)
}

// logLimiter logs at most one line per interval, with the count of lines
// left out since: a flood of refused or failed connections must not
// flood the log too.
type logLimiter struct {
	mu      sync.Mutex
	every   time.Duration
	last    time.Time
	dropped int
}

// event returns the logger's event if one may be logged now (with the
// number left out since the last one), or nil.
func (l *logLimiter) event(log *zerolog.Logger, level zerolog.Level) *zerolog.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.dropped++
		return nil
	}
	e := log.WithLevel(level)
	if l.dropped > 0 {
		e = e.Int("similar_not_logged", l.dropped)
	}
	l.last, l.dropped = now, 0
	return e
}
