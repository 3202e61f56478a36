package integration

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/binarc/binarc/integration/testenv"
)

// startPlainServe runs binarc serve, built without the race detector (the
// tests that bound its memory), on a free loopback port.
func (e *env) startPlainServe(t *testing.T, extra ...string) (*proc, int) {
	t.Helper()
	port := testenv.FreePort(t)
	args := append([]string{"serve", "--store", e.store, "--cluster", e.cluster, "--listen", fmt.Sprintf("127.0.0.1:%d", port)}, extra...)
	p := e.startBinary(plainBinarcPath(t), []string{"BINARC_SERVE_PASSWORD=" + servePass, "BINARC_LOG_LEVEL=debug"}, args...)
	p.waitLog(t, "serving the archive to replicas", 30*time.Second)
	return p, port
}

// attacker is one client address that floods serve before logging in.
type attacker struct {
	addr, from string

	mu        sync.Mutex
	held      []net.Conn // idle connections serve greeted
	refused   int        // connections answered "Too many connections"
	bigClosed int        // 16 MiB packets after which serve closed the connection
	errs      []error
}

func (a *attacker) fail(err error) {
	a.mu.Lock()
	a.errs = append(a.errs, err)
	a.mu.Unlock()
}

func (a *attacker) dial() (net.Conn, []byte, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(a.from)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", a.addr)
	if err != nil {
		return nil, nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var h [4]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("no greeting: %w", err)
	}
	body := make([]byte, int(h[0])|int(h[1])<<8|int(h[2])<<16)
	if _, err := io.ReadFull(c, body); err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, body, nil
}

// bigPackets sends n packets of 16 MiB before logging in, each on a new
// connection, as a continuation series (header 0xffffff then its body):
// go-mysql alone would allocate and join them.
func (a *attacker) bigPackets(n int) {
	chunk := make([]byte, 1<<24-1)
	for i := 0; i < n; i++ {
		c, _, err := a.dial()
		if err != nil {
			a.fail(err)
			return
		}
		for seq := byte(1); seq <= 8; seq++ {
			if _, err := c.Write([]byte{0xff, 0xff, 0xff, seq}); err != nil {
				break
			}
			if _, err := c.Write(chunk); err != nil {
				break
			}
		}
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err = io.ReadAll(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			a.fail(fmt.Errorf("serve kept a connection that sent a 16 MiB packet before login"))
		} else {
			a.mu.Lock()
			a.bigClosed++
			a.mu.Unlock()
		}
		c.Close()
	}
}

// idle opens n connections and sends nothing on them.
func (a *attacker) idle(n int) {
	for i := 0; i < n; i++ {
		c, greet, err := a.dial()
		switch {
		case err != nil:
			a.fail(err)
			return
		case strings.Contains(string(greet), "Too many connections"):
			a.mu.Lock()
			a.refused++
			a.mu.Unlock()
			c.Close()
		case len(greet) > 0 && greet[0] == 10: // protocol 10: a handshake
			a.mu.Lock()
			a.held = append(a.held, c)
			a.mu.Unlock()
		default:
			a.fail(fmt.Errorf("unexpected greeting %q", greet))
			c.Close()
		}
	}
}

// TestServeUnderPreAuthFlood: three clients, from 127.0.0.2-4, each send
// 8 packets of 8×16 MiB before logging in, then open 1,000 idle
// connections between them; meanwhile a real MariaDB replica connects to
// the same serve and replicates everything, the archive growing while it
// does. serve's peak RSS stays under 64 MiB, every big packet's
// connection is closed, the idle connections beyond the per-address cap
// are answered "Too many connections", and those held are closed at the
// handshake deadline. (Before the limits: 690 MiB, and every idle
// connection held.)
func TestServeUnderPreAuthFlood(t *testing.T) {
	e, stream := newLoadedEnv(t, 40)
	ctx := context.Background()
	e.waitArchived(time.Minute)
	s, port := e.startPlainServe(t, "--follow")
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	var attackers []*attacker
	var wg sync.WaitGroup
	for i, from := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		a := &attacker{addr: addr, from: from}
		attackers = append(attackers, a)
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.bigPackets(8)
			a.idle(333 + i/2) // 333 + 333 + 334
		}()
	}
	// The replica connects while the flood goes on.
	r := newServeReplica(t, 50)
	r.Exec(t, "SET GLOBAL gtid_slave_pos = ''")
	replicateFrom(t, r, port, servePass, "MASTER_USE_GTID=slave_pos")
	wg.Wait()
	if err := writeLoad(ctx, e.primary, loadOptions{From: 40, To: 80, FlushAt: 25}); err != nil {
		t.Fatal(err)
	}
	final := takeCheckpoint(t, e.primary, "final")
	e.waitArchived(time.Minute)
	waitGTID(t, r, final.gtid, 90*time.Second)
	if got := tableChecksums(t, r); !reflect.DeepEqual(got, final.sums) {
		t.Errorf("replica served during the flood: checksums differ\n got %v\nwant %v", got, final.sums)
	}

	if hwm := vmHWM(t, s.cmd.Process.Pid); hwm >= 64 {
		t.Errorf("serve's peak RSS under the flood: %.1f MiB, want < 64", hwm)
	} else {
		t.Logf("serve's peak RSS: %.1f MiB", hwm)
	}
	total := 0
	deadline := time.Now().Add(60 * time.Second) // well past the handshake deadline (10s)
	for _, a := range attackers {
		if len(a.errs) > 0 {
			t.Errorf("%s: %v", a.from, errors.Join(a.errs...))
		}
		if a.bigClosed != 8 {
			t.Errorf("%s: serve closed %d of 8 connections that sent 16 MiB packets", a.from, a.bigClosed)
		}
		if len(a.held) > 8 {
			t.Errorf("%s: serve held %d idle connections, more than --max-connections-per-host 8", a.from, len(a.held))
		}
		total += len(a.held) + a.refused
		for _, c := range a.held {
			_ = c.SetReadDeadline(deadline)
			_, err := io.ReadAll(c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("%s: an idle connection outlived the handshake deadline", a.from)
			}
			c.Close()
		}
		t.Logf("%s: %d idle connections held, %d refused", a.from, len(a.held), a.refused)
	}
	if total != 1000 {
		t.Errorf("%d idle connections answered, want 1000", total)
	}
	st := r.SlaveStatus(t)
	if st["Slave_IO_Running"] != "Yes" || st["Slave_SQL_Running"] != "Yes" {
		t.Errorf("replica after the flood: IO %s %q, SQL %s %q", st["Slave_IO_Running"], st["Last_IO_Error"], st["Slave_SQL_Running"], st["Last_SQL_Error"])
	}
	stream.stop(t)
}

// issueFor127 makes a certificate from ca for 127.0.0.1 (the name MariaDB
// checks with MASTER_SSL_VERIFY_SERVER_CERT when MASTER_HOST is
// 127.0.0.1), for a server or a client.
func issueFor127(t *testing.T, ca *testCA, name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	return ca.issueFor(t, name, usage, &x509.Certificate{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
}

// TestServeTLSReplica: binarc serve with a certificate from a CA the test
// made, requiring client certificates from it. A real MariaDB replica
// with MASTER_SSL=1 and MASTER_SSL_VERIFY_SERVER_CERT=1 and its client
// certificate replicates everything, every table equal to the primary's.
// Refused, each with its error in Last_IO_Error: the same replica without
// MASTER_SSL, trusting another CA, and without a client certificate.
func TestServeTLSReplica(t *testing.T) {
	e, stream := newLoadedEnv(t, 40)
	final := takeCheckpoint(t, e.primary, "final")
	e.waitArchived(time.Minute)

	ca, otherCA := newTestCA(t, "serve-ca"), newTestCA(t, "other-ca")
	cert, key := issueFor127(t, ca, "serve", x509.ExtKeyUsageServerAuth)
	ccert, ckey := issueFor127(t, ca, "replica", x509.ExtKeyUsageClientAuth)
	s, port := e.startServe(t, "--tls-cert", cert, "--tls-key", key, "--tls-client-ca", ca.certPEM)

	r := newServeReplica(t, 60)
	verify := fmt.Sprintf("MASTER_SSL_VERIFY_SERVER_CERT=1, MASTER_SSL_CA='%s'", ca.certPEM)
	clientCert := fmt.Sprintf("MASTER_SSL_CERT='%s', MASTER_SSL_KEY='%s'", ccert, ckey)
	for _, c := range []struct{ name, how, want string }{
		{"without MASTER_SSL", "MASTER_SSL=0", "requires TLS"},
		{"another CA", fmt.Sprintf("MASTER_SSL=1, MASTER_SSL_VERIFY_SERVER_CERT=1, MASTER_SSL_CA='%s', %s", otherCA.certPEM, clientCert), "SSL connection error"},
		// RESET SLAVE ALL keeps the SSL settings: cleared here. serve's
		// TLS alert reaches the replica as a lost connection.
		{"no client certificate", "MASTER_SSL=1, MASTER_SSL_CERT='', MASTER_SSL_KEY='', " + verify, "reading authorization packet"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r.Exec(t, "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL gtid_slave_pos = ''")
			replicateFrom(t, r, port, servePass, "MASTER_USE_GTID=slave_pos, "+c.how)
			t.Logf("Last_IO_Error: %s", waitIOError(t, r, c.want))
		})
	}
	r.Exec(t, "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL gtid_slave_pos = ''")
	replicateFrom(t, r, port, servePass, "MASTER_USE_GTID=slave_pos, MASTER_SSL=1, "+verify+", "+clientCert)
	waitGTID(t, r, final.gtid, 60*time.Second)
	if got := tableChecksums(t, r); !reflect.DeepEqual(got, final.sums) {
		t.Errorf("replica over TLS: checksums differ\n got %v\nwant %v", got, final.sums)
	}
	if len(logLines(s.out.String(), "replica logged in")) == 0 || strings.Contains(s.out.String(), `"tls":false`) {
		t.Errorf("serve did not log the replica's login over TLS:\n%s", tail(s.out.String(), 3000))
	}
	stream.stop(t)
}

// TestServeRefusesInsecureListen: a --listen other hosts can reach is
// refused without TLS, at once and naming both ways out; half a TLS
// configuration is refused naming the missing flag.
func TestServeRefusesInsecureListen(t *testing.T) {
	store := "file://" + t.TempDir()
	run := func(args ...string) (string, int) {
		cmd := exec.Command(binarcPath, append([]string{"serve", "--store", store, "--cluster", "main"}, args...)...)
		cmd.Env = append(os.Environ(), "BINARC_SERVE_PASSWORD="+servePass)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	for _, listen := range []string{"0.0.0.0:3307", ":3307", "10.0.0.5:3307", "[::]:3307"} {
		out, code := run("--listen", listen)
		expectFailure(t, out, code, "--listen "+listen, "not a loopback address", "--tls-cert", "--insecure-listen")
	}
	out, code := run("--listen", "10.0.0.5:3307", "--tls-cert", "/nonexistent/cert.pem")
	expectFailure(t, out, code, "--tls-key")
}
