package replication

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestControlQueriesTimeOut: a server (or a link) that accepts and then
// says nothing must not hold binarc's control queries (the binlog list,
// the preflight, the semi-sync poll): they fail after ReadTimeout. The
// fault campaign froze binarc's link to a new primary during SHOW BINARY
// LOGS and binarc waited over a minute.
func TestControlQueriesTimeOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var held []net.Conn
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // open, silent
			mu.Unlock()
		}
	}()
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	p, _ := strconv.Atoi(port)
	cfg := Config{Host: host, Port: uint16(p), User: "binarc", ReadTimeout: 500 * time.Millisecond, TLS: TLSOptions{Mode: TLSDisable}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name, call := range map[string]func() error{
		"BinaryLogs": func() error { _, err := cfg.BinaryLogs(ctx); return err },
		"Preflight":  func() error { _, err := cfg.Preflight(ctx); return err },
	} {
		start := time.Now()
		err := call()
		if took := time.Since(start); err == nil || took > 10*time.Second {
			t.Errorf("%s against a silent server: %v after %s; want an error within a few read timeouts", name, err, took)
		}
	}
}
