package stream

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/replication"
	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"
	"github.com/rs/zerolog"
)

// refusingServer is a MySQL server (go-mysql's, speaking the real
// protocol) that refuses every login with error 1045, as a server does to
// a wrong password.
func refusingServer(t *testing.T) replication.Config {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	srv := server.NewServer("10.11.0-MariaDB-fake", mysql.DEFAULT_COLLATION_ID, mysql.AUTH_NATIVE_PASSWORD, nil, nil)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				auth := server.NewInMemoryAuthenticationHandler(mysql.AUTH_NATIVE_PASSWORD)
				_ = auth.AddUser("binarc", "the-right-one")
				_, _ = srv.NewCustomizedConn(nc, auth, server.EmptyHandler{})
			}()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	return replication.Config{Host: "127.0.0.1", Port: uint16(port), User: "binarc", Password: "wrong"}
}

// downServer is an address where nothing listens.
func downServer(t *testing.T) replication.Config {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return replication.Config{Host: "127.0.0.1", Port: uint16(port), User: "binarc", Password: "wrong"}
}

// TestSeveralSourcesWrongPassword: with several sources, one that refuses
// the login is a problem the operator must fix, as it is with one source:
// the stream fails at once naming that server, rather than waiting for a
// writable one that can never come. A source that is down is still waited
// for (TestSeveralSourcesDown).
func TestSeveralSourcesWrongPassword(t *testing.T) {
	down, refusing := downServer(t), refusingServer(t)
	a := &Archiver{cfg: ArchiverConfig{Sources: []replication.Config{down, refusing}, MaxBackoff: time.Second}, log: zerolog.Nop()}
	a.src = a.cfg.Sources[0]
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // a guard against waiting forever
	defer cancel()
	_, err := a.primaryInfo(ctx)
	if !replication.IsConfigError(err) || !strings.Contains(err.Error(), refusing.Addr()) || !strings.Contains(err.Error(), "access denied") {
		t.Fatalf("several sources, one refusing the login: %v; want a ConfigError naming %s", err, refusing.Addr())
	}
}

// TestSeveralSourcesDown: sources that are down are waited for, until
// the stream is stopped.
func TestSeveralSourcesDown(t *testing.T) {
	a := &Archiver{cfg: ArchiverConfig{Sources: []replication.Config{downServer(t), downServer(t)}, MaxBackoff: time.Second}, log: zerolog.Nop()}
	a.src = a.cfg.Sources[0]
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(2*time.Second, cancel)
	if _, err := a.primaryInfo(ctx); err != context.Canceled {
		t.Fatalf("sources down: %v; want to wait until cancelled", err)
	}
}
