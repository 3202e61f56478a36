package serve

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// ErrPreAuthPacketTooLarge is the guard's error for a client that
// announces a packet larger than Limits.MaxPreAuthPacket before logging
// in.
var ErrPreAuthPacketTooLarge = errors.New("packet too large before authentication")

// ErrTLSRequired is the guard's error for a client that does not start
// TLS when serve has a certificate.
var ErrTLSRequired = errors.New("client did not ask for TLS")

// sslRequestLen is the payload length of a client's SSLRequest: the
// first 32 bytes of a handshake response (capabilities, max packet,
// charset, 23 reserved), sent alone before the TLS handshake.
const sslRequestLen = 32

// guardConn sits between the client's socket and go-mysql until the
// client has logged in. It reads the MySQL packet stream itself, header
// first, so that a packet announcing more than limit closes the
// connection before its body is read: go-mysql allocates the announced
// length at once and joins 16 MiB continuation packets without bound.
//
// With a TLS configuration it also does the TLS upgrade itself: go-mysql
// would wrap the socket in TLS beneath this guard, where packet headers
// are encrypted and cannot be checked. The guard consumes the client's
// SSLRequest (a client that sends none is refused: nothing, not even the
// login, goes in clear), runs the TLS handshake and hands go-mysql the
// decrypted packets; since go-mysql never saw the SSLRequest, sequence
// numbers are shifted by one in both directions until the login is done
// (go-mysql and the client both restart at 0 for the first command).
//
// After open, reads and writes pass straight through. A guardConn is
// used by one goroutine; Close may come from another (it closes the
// socket).
type guardConn struct {
	net.Conn // the transport: the socket, or TLS over it after the upgrade
	raw      net.Conn
	tls      *tls.Config
	limit    int

	opened  bool // logged in: no more checks
	secured bool // TLS is up
	shift   byte // sequence numbers the client is ahead of go-mysql

	pending []byte  // checked bytes go-mysql has not read yet
	hdr     [4]byte // backing of pending for a header
	left    int     // payload bytes of the current packet not read yet

	wlen  int // write side: the header being parsed, and payload left
	wpos  int
	wleft int
}

func newGuardConn(raw net.Conn, cfg *tls.Config, limit int) *guardConn {
	return &guardConn{Conn: raw, raw: raw, tls: cfg, limit: limit}
}

// open ends the checks: the client has logged in.
func (g *guardConn) open() { g.opened = true }

// Secured tells whether the client's connection is TLS.
func (g *guardConn) Secured() bool { return g.secured }

func (g *guardConn) Read(p []byte) (int, error) {
	for {
		switch {
		case len(g.pending) > 0:
			n := copy(p, g.pending)
			g.pending = g.pending[n:]
			return n, nil
		case g.left > 0:
			n, err := g.Conn.Read(p[:min(len(p), g.left)])
			g.left -= n
			return n, err
		case g.opened:
			return g.Conn.Read(p)
		}
		if err := g.nextPacket(); err != nil {
			return 0, err
		}
	}
}

// nextPacket reads the next packet's header, checks it, and queues it
// for go-mysql; the client's first packet, when TLS is required, must be
// an SSLRequest, which upgrades the connection.
func (g *guardConn) nextPacket() error {
	var h [4]byte
	if _, err := io.ReadFull(g.Conn, h[:]); err != nil {
		return err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	if n > g.limit {
		return fmt.Errorf("%w: %d bytes announced, the limit is %d", ErrPreAuthPacketTooLarge, n, g.limit)
	}
	if g.tls != nil && !g.secured {
		return g.startTLS(h, n)
	}
	g.hdr = h
	g.hdr[3] -= g.shift
	g.pending, g.left = g.hdr[:], n
	return nil
}

// startTLS reads the client's first packet (n bytes, within the limit):
// an SSLRequest starts TLS; anything else is answered with an error and
// refused.
func (g *guardConn) startTLS(h [4]byte, n int) error {
	body := make([]byte, n)
	if _, err := io.ReadFull(g.Conn, body); err != nil {
		return err
	}
	if n != sslRequestLen || binary.LittleEndian.Uint32(body)&mysql.CLIENT_SSL == 0 {
		_, _ = g.raw.Write(errPacket(h[3]+1, mysql.ER_ACCESS_DENIED_ERROR, "28000",
			"binarc serve requires TLS: connect with MASTER_SSL=1 (mariadb --ssl)"))
		return ErrTLSRequired
	}
	tc := tls.Server(g.raw, g.tls)
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	g.Conn, g.secured, g.shift = tc, true, 1
	return nil
}

func (g *guardConn) Write(p []byte) (int, error) {
	if g.opened || g.shift == 0 {
		return g.Conn.Write(p)
	}
	q := append([]byte(nil), p...)
	g.shiftSequences(q)
	if _, err := g.Conn.Write(q); err != nil {
		return 0, err
	}
	return len(p), nil
}

// shiftSequences adds the shift to the sequence number of every packet
// header in q, a piece of go-mysql's packet stream (go-mysql writes a
// packet in one call, but nothing here relies on it).
func (g *guardConn) shiftSequences(q []byte) {
	for i := 0; i < len(q); {
		if g.wleft > 0 {
			k := min(g.wleft, len(q)-i)
			i, g.wleft = i+k, g.wleft-k
			continue
		}
		if g.wpos < 3 {
			g.wlen |= int(q[i]) << (8 * g.wpos)
		} else {
			q[i] += g.shift
			g.wleft, g.wlen = g.wlen, 0
		}
		g.wpos = (g.wpos + 1) % 4
		i++
	}
}
