package integration

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/binarc/binarc/integration/testenv"
)

// s3Counter is an HTTP proxy in front of the S3 server that counts the
// requests going through it by kind.
type s3Counter struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	counts map[string]int
}

func startS3Counter(t *testing.T, target string) *s3Counter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &s3Counter{ln: ln, target: target, counts: map[string]int{}}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go c.serve(conn)
		}
	}()
	return c
}

// serve forwards one connection and parses the requests on it.
func (c *s3Counter) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", c.target)
	if err != nil {
		return
	}
	defer server.Close()
	go func() { io.Copy(client, server); client.Close() }()
	// Forward the client's bytes untouched (they are signed), and parse a
	// copy of them.
	pr, pw := io.Pipe()
	go func() {
		br := bufio.NewReader(pr)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				io.Copy(io.Discard, pr)
				return
			}
			c.count(req)
			io.Copy(io.Discard, req.Body)
		}
	}()
	io.Copy(server, io.TeeReader(client, pw))
	pw.Close()
}

func (c *s3Counter) count(r *http.Request) {
	kind := r.Method
	if r.Method == http.MethodGet && r.URL.Query().Has("list-type") {
		kind = "LIST"
	}
	c.mu.Lock()
	c.counts[kind]++
	c.mu.Unlock()
}

func (c *s3Counter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// TestRequestCost: once running, the archiver makes no LIST at all, and
// while the primary is idle no request at all (heartbeats keep the
// primary connection alive; nothing reaches the bucket).
func TestRequestCost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{MaxBinlogSize: 64 << 10})
	counter := startS3Counter(t, strings.TrimPrefix(e.s3.Endpoint, "http://"))
	p := e.startEnv([]string{"AWS_ENDPOINT_URL_S3=http://" + counter.ln.Addr().String()}, e.streamArgs()...)
	e.primary.Exec(t, "CREATE DATABASE app", "CREATE TABLE app.t (x INT PRIMARY KEY, y TEXT)")
	e.waitArchived(time.Minute)
	p.waitLog(t, "streaming from the primary", time.Minute)
	startup := counter.snapshot()
	if startup["LIST"] == 0 || startup["PUT"] == 0 {
		t.Fatalf("the counting proxy saw no start-up traffic: %v", startup)
	}

	// Steady state with writes and rotations (so with compaction): PUTs,
	// GETs and DELETEs, never a LIST.
	for i := 0; i < 300; i++ {
		e.primary.Exec(t, "INSERT INTO app.t VALUES ("+strconv.Itoa(i)+", REPEAT('x', 500))")
	}
	e.waitArchived(time.Minute)
	e.waitCompacted(time.Minute)
	busy := counter.snapshot()
	if busy["LIST"] != startup["LIST"] {
		t.Errorf("LIST calls in steady state: %d at start-up, %d after writing", startup["LIST"], busy["LIST"])
	}
	if busy["PUT"] <= startup["PUT"] || busy["DELETE"] == 0 {
		t.Errorf("writes and compaction made no PUT or DELETE: %v -> %v", startup, busy)
	}

	// Idle: heartbeats only. No request reaches the bucket.
	time.Sleep(3 * time.Second)
	if idle := counter.snapshot(); !equalCounts(idle, busy) {
		t.Errorf("requests while the primary was idle: %v -> %v", busy, idle)
	}
	p.stop(t)
	e.compareWithPrimary()
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
