package testenv

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// echoServer answers each line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, r *bufio.Reader, line string) (string, error) {
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	got, err := r.ReadString('\n')
	return strings.TrimSuffix(got, "\n"), err
}

// TestProxyFaults: the proxy forwards, counts one request per client turn
// and delays each by its latency, refuses while down, cuts, freezes (the
// connection stays open, nothing arrives) and retargets new connections.
func TestProxyFaults(t *testing.T) {
	p, err := StartProxy(echoServer(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	p.SetLatency(50*time.Millisecond, 0)
	start := time.Now()
	for _, l := range []string{"a", "b", "c"} {
		if got, err := roundTrip(c, r, l); err != nil || got != l {
			t.Fatalf("echo %q: %q %v", l, got, err)
		}
	}
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Errorf("three requests at 50 ms each took %s", took)
	}
	if n := p.Requests(); n != 3 {
		t.Errorf("%d requests counted, want 3", n)
	}
	p.SetLatency(0, 0)

	p.Freeze()
	if _, err := roundTrip(c, r, "frozen"); err == nil {
		t.Error("a frozen connection forwarded")
	}
	c.Close()
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	r2 := bufio.NewReader(c2)
	if got, err := roundTrip(c2, r2, "after"); err != nil || got != "after" {
		t.Fatalf("a new connection after a freeze: %q %v", got, err)
	}
	p.Cut()
	if _, err := roundTrip(c2, r2, "cut"); err == nil {
		t.Error("a cut connection still answers")
	}

	p.SetDown(true)
	if c3, err := net.Dial("tcp", p.Addr()); err == nil {
		if _, err := roundTrip(c3, bufio.NewReader(c3), "down"); err == nil {
			t.Error("a proxy that is down forwarded")
		}
		c3.Close()
	}
	p.SetDown(false)

	p.Retarget(echoServer(t))
	c4, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	if got, err := roundTrip(c4, bufio.NewReader(c4), "moved"); err != nil || got != "moved" {
		t.Fatalf("after a retarget: %q %v", got, err)
	}

	p.SetDropRate(1)
	if c5, err := net.Dial("tcp", p.Addr()); err == nil {
		if _, err := roundTrip(c5, bufio.NewReader(c5), "dropped"); err == nil {
			t.Error("a dropped connection forwarded")
		}
		c5.Close()
	}
}
