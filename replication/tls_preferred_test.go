package replication

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"
	"github.com/rs/zerolog"
)

// switchingServer is a MySQL server (go-mysql's, the one binarc serve is
// built on) that offers TLS or not, as the test says, from one connection
// to the next, as a server restarted with other settings or a path that
// strips TLS from some connections would. It records whether each
// logged-in session was encrypted.
type switchingServer struct {
	ln       net.Listener
	offerTLS atomic.Bool
	plain    *server.Server
	withTLS  *server.Server
	mu       sync.Mutex
	sessions []bool // per logged-in session: encrypted
}

func startSwitchingServer(t *testing.T) *switchingServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := selfSigned(t, "localhost", false)
	s := &switchingServer{
		ln:      ln,
		plain:   server.NewServer("10.11.0-test", mysql.DEFAULT_COLLATION_ID, mysql.AUTH_NATIVE_PASSWORD, nil, nil),
		withTLS: server.NewServer("10.11.0-test", mysql.DEFAULT_COLLATION_ID, mysql.AUTH_NATIVE_PASSWORD, nil, &tls.Config{Certificates: []tls.Certificate{cert}}),
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.serve(nc)
			}()
		}
	}()
	return s
}

func (s *switchingServer) serve(nc net.Conn) {
	defer nc.Close()
	srv := s.plain
	if s.offerTLS.Load() {
		srv = s.withTLS
	}
	auth := server.NewInMemoryAuthenticationHandler(mysql.AUTH_NATIVE_PASSWORD)
	if err := auth.AddUser("u", "p"); err != nil {
		return
	}
	c, err := srv.NewCustomizedConn(nc, auth, server.EmptyHandler{})
	if err != nil {
		return // binarc's question (does it offer TLS?) ends here
	}
	_, encrypted := c.Conn.Conn.(*tls.Conn)
	s.mu.Lock()
	s.sessions = append(s.sessions, encrypted)
	s.mu.Unlock()
	for c.HandleCommand() == nil {
	}
}

func (s *switchingServer) lastSession(t *testing.T) (encrypted bool) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sessions) == 0 {
		t.Fatal("no session logged in")
	}
	return s.sessions[len(s.sessions)-1]
}

// TestPreferredTLSNeverRemembersNo: in preferred mode a server answering
// without TLS gets a plain connection and a warning, every time, and is
// asked again next time, so a server (or path) that offers TLS again gets
// TLS again; a server that offered TLS and stops is connected to in clear
// with a warning rather than refused.
func TestPreferredTLSNeverRemembersNo(t *testing.T) {
	s := startSwitchingServer(t)
	addr := s.ln.Addr().(*net.TCPAddr)
	var logged bytes.Buffer // Connect logs from this goroutine only
	cfg := Config{Host: "127.0.0.1", Port: uint16(addr.Port), User: "u", Password: "p", TLS: TLSOptions{Mode: TLSPreferred},
		Log: zerolog.New(&logged)}
	warnings := func() int { return strings.Count(logged.String(), "answered without TLS") }
	ctx := context.Background()
	connect := func(step string, wantTLS bool, wantWarnings int) {
		t.Helper()
		conn, err := cfg.Connect(ctx)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		defer conn.Close()
		if err := conn.Ping(); err != nil {
			t.Fatalf("%s: ping: %v", step, err)
		}
		if got := s.lastSession(t); got != wantTLS {
			t.Errorf("%s: encrypted %v, want %v", step, got, wantTLS)
		}
		if got := warnings(); got != wantWarnings {
			t.Errorf("%s: %d warnings about a server without TLS, want %d:\n%s", step, got, wantWarnings, logged.String())
		}
	}
	connect("no TLS offered", false, 1)
	connect("no TLS offered again", false, 2)
	s.offerTLS.Store(true)
	connect("TLS offered now", true, 2)
	connect("TLS offered, asked once", true, 2)
	s.offerTLS.Store(false)
	connect("TLS no longer offered", false, 3)
	s.offerTLS.Store(true)
	connect("TLS offered again", true, 3)
}
