package serve

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/rs/zerolog"
)

// tcpPair is the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (clientEnd, serverEnd net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

func header(n int, seq byte) []byte { return []byte{byte(n), byte(n >> 8), byte(n >> 16), seq} }

// TestGuardPacketLimit: before login a packet within the limit reaches
// go-mysql whole; a header announcing more is refused and not one byte
// of its body is read; after login the limit is off.
func TestGuardPacketLimit(t *testing.T) {
	c, s := tcpPair(t)
	g := newGuardConn(s, nil, 16)
	small := append(header(5, 1), "hello"...)
	big := append(header(1<<24-1, 2), "body"...)
	if _, err := c.Write(append(small, big...)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(small))
	if _, err := io.ReadFull(g, got); err != nil || !bytes.Equal(got, small) {
		t.Fatalf("small packet: %q, %v", got, err)
	}
	if _, err := g.Read(make([]byte, 64)); !errors.Is(err, ErrPreAuthPacketTooLarge) {
		t.Fatalf("large packet: %v, want ErrPreAuthPacketTooLarge", err)
	}
	rest := make([]byte, 4)
	if _, err := io.ReadFull(s, rest); err != nil || string(rest) != "body" {
		t.Fatalf("the large packet's body was read by the guard: left %q, %v", rest, err)
	}
	g.open()
	if _, err := c.Write(big[:8]); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(g, got[:8]); err != nil || !bytes.Equal(got[:8], big[:8]) {
		t.Fatalf("after login: %q, %v", got[:8], err)
	}
}

// TestGuardShiftsSequences: after a TLS upgrade go-mysql is one packet
// behind the client; every header written gets the shift, wherever the
// writes split the stream.
func TestGuardShiftsSequences(t *testing.T) {
	stream := append(append(append(header(3, 2), "abc"...), header(0, 3)...), append(header(2, 4), "de"...)...)
	want := append([]byte(nil), stream...)
	want[3], want[10], want[14] = 3, 4, 5
	for cut := 0; cut <= len(stream); cut++ {
		g := &guardConn{shift: 1}
		a, b := append([]byte(nil), stream[:cut]...), append([]byte(nil), stream[cut:]...)
		g.shiftSequences(a)
		g.shiftSequences(b)
		if got := append(a, b...); !bytes.Equal(got, want) {
			t.Errorf("cut at %d: % x\nwant % x", cut, got, want)
		}
	}
}

// greeting reads serve's first packet: the handshake, or an error.
func greeting(t *testing.T, c net.Conn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	h := make([]byte, 4)
	if _, err := io.ReadFull(c, h); err != nil {
		t.Fatalf("no greeting: %v", err)
	}
	body := make([]byte, int(h[0])|int(h[1])<<8|int(h[2])<<16)
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatal(err)
	}
	return body
}

// waitClosedByServe waits until serve closes c and returns what it sent
// before.
func waitClosedByServe(t *testing.T, c net.Conn, what string) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: serve kept the connection open", what)
	}
	return got
}

func dialFrom(t *testing.T, addr, local string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testServer(t *testing.T, lim Limits) string {
	t.Helper()
	return startServer(t, Config{Source: &DirSource{Dir: t.TempDir()}, User: "u", Password: "p", ServerID: 9, Log: zerolog.Nop(), Limits: lim})
}

// emptyServer is a server of an empty folder, with the tests' credentials,
// for the tests that drive Serve with a listener of their own.
func emptyServer(t *testing.T) *Server {
	t.Helper()
	srv, err := New(Config{Source: &DirSource{Dir: t.TempDir()}, User: "u", Password: "p", ServerID: 9, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// TestConnectionCaps: a client address past its cap, and anyone past the
// total, is answered "Too many connections" instead of a greeting; a
// released slot is given again.
func TestConnectionCaps(t *testing.T) {
	addr := testServer(t, Limits{MaxConnections: 3, MaxConnectionsPerHost: 2})
	tooMany := func(c net.Conn) bool { return strings.Contains(string(greeting(t, c)), "Too many connections") }
	a1, a2 := dialFrom(t, addr, "127.0.0.1"), dialFrom(t, addr, "127.0.0.1")
	if tooMany(a1) || tooMany(a2) {
		t.Fatal("refused within the caps")
	}
	if !tooMany(dialFrom(t, addr, "127.0.0.1")) {
		t.Error("a third connection from one address was served (per-host cap 2)")
	}
	if tooMany(dialFrom(t, addr, "127.0.0.2")) {
		t.Fatal("another address was refused within the total")
	}
	if !tooMany(dialFrom(t, addr, "127.0.0.3")) {
		t.Error("a fourth connection was served (total cap 3)")
	}
	a1.Close()
	for deadline := time.Now().Add(10 * time.Second); tooMany(dialFrom(t, addr, "127.0.0.3")); {
		if time.Now().After(deadline) {
			t.Fatal("a released connection's slot is not given again")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHandshakeAndIdleDeadlines: a client that does not log in is closed
// at the handshake deadline; a logged-in one that sends nothing, at the
// idle deadline.
func TestHandshakeAndIdleDeadlines(t *testing.T) {
	addr := testServer(t, Limits{HandshakeTimeout: 200 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	c := dialFrom(t, addr, "127.0.0.1")
	greeting(t, c)
	if got := waitClosedByServe(t, c, "idle before login"); len(got) > 0 {
		t.Errorf("after the greeting serve sent %q", got)
	}

	cc, err := client.Connect(addr, "u", "p", "")
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if _, err := cc.Execute("SELECT UNIX_TIMESTAMP()"); err != nil {
		t.Fatal(err)
	}
	waitClosedByServe(t, cc.Conn.Conn, "idle after login")
}

// TestLargePreAuthPacketCloses: a client that announces a 16 MiB packet
// before logging in is closed without serve reading it.
func TestLargePreAuthPacketCloses(t *testing.T) {
	addr := testServer(t, Limits{})
	c := dialFrom(t, addr, "127.0.0.1")
	greeting(t, c)
	if _, err := c.Write(header(1<<24-1, 1)); err != nil {
		t.Fatal(err)
	}
	if got := waitClosedByServe(t, c, "16 MiB announced"); !strings.Contains(string(got), "too large") {
		t.Errorf("serve's answer to a 16 MiB packet: %q", got)
	}
}

// blockingListener hands out one connection only after Close: a
// connection accepted while serve shuts down.
type blockingListener struct {
	net.Listener
	closed chan struct{}
	conn   net.Conn
	once   bool
}

func (l *blockingListener) Accept() (net.Conn, error) {
	if l.once {
		return nil, net.ErrClosed
	}
	<-l.closed
	l.once = true
	return l.conn, nil
}

func (l *blockingListener) Close() error { close(l.closed); return nil }

// TestConnectionAcceptedDuringShutdown: it is closed unserved, and Serve
// returns.
func TestConnectionAcceptedDuringShutdown(t *testing.T) {
	c, s := tcpPair(t)
	srv := emptyServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, &blockingListener{closed: make(chan struct{}), conn: s}) }()
	cancel()
	if got := waitClosedByServe(t, c, "accepted during shutdown"); len(got) > 0 {
		t.Errorf("a connection accepted during shutdown was served: %q", got)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

func TestLimitsDefaults(t *testing.T) {
	got, err := Limits{MaxConnections: 5}.withDefaults()
	if err != nil || got.MaxConnections != 5 || got.MaxConnectionsPerHost != DefaultLimits.MaxConnectionsPerHost ||
		got.HandshakeTimeout != DefaultLimits.HandshakeTimeout || got.MaxPreAuthPacket != DefaultLimits.MaxPreAuthPacket {
		t.Errorf("defaults: %+v, %v", got, err)
	}
	if _, err := (Limits{MaxConnectionsPerHost: -1}).withDefaults(); err == nil || !strings.Contains(err.Error(), "--max-connections-per-host") {
		t.Errorf("negative: %v", err)
	}
}

func TestHostKey(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:5":             "127.0.0.1",
		"[::ffff:10.0.0.1]:5":     "10.0.0.1",
		"[2001:db8:1:2:3::9]:5":   "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::]:5": "2001:db8:1:2::/64",
	} {
		a, _ := net.ResolveTCPAddr("tcp", addr)
		if got := hostKey(a); got != want {
			t.Errorf("%s: %s, want %s", addr, got, want)
		}
	}
}

// scriptedListener returns its errors, then its connection, then
// blocks until closed.
type scriptedListener struct {
	net.Listener
	errs   []error
	conn   net.Conn
	closed chan struct{}
}

func (l *scriptedListener) Accept() (net.Conn, error) {
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		return nil, err
	}
	if c := l.conn; c != nil {
		l.conn = nil
		return c, nil
	}
	<-l.closed
	return nil, net.ErrClosed
}

func (l *scriptedListener) Close() error { close(l.closed); return nil }

// TestAcceptOutOfDescriptors: running out of file descriptors, or a
// connection aborted before Accept, does not end serve: the next client
// is served. Another Accept error does end it.
func TestAcceptOutOfDescriptors(t *testing.T) {
	c, s := tcpPair(t)
	srv := emptyServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln := &scriptedListener{errs: []error{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED}, conn: s, closed: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	if g := greeting(t, c); len(g) == 0 || g[0] != 10 {
		t.Fatalf("after EMFILE, ENFILE and ECONNABORTED: %q, want a handshake", g)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}

	boom := errors.New("boom")
	srv = emptyServer(t)
	if err := srv.Serve(context.Background(), &scriptedListener{errs: []error{boom}, closed: make(chan struct{})}); !errors.Is(err, boom) {
		t.Errorf("Serve after another Accept error: %v", err)
	}
}
