package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/integration/testenv"
)

// TestMultiSourceTLSVerifyFull: --source-tls verify-full holds for every
// server of a multi-host --source. Two MariaDB servers with certificates
// for "localhost" from the test's CA: given another CA, binarc stream
// connects to neither (each is refused as a certificate that does not
// verify, and nothing is archived); given the right CA, it streams, so the
// refusal is the certificate's. Before, the TLS flags were dropped for a
// multi-host source and each host fell back to preferred: it connected.
func TestMultiSourceTLSVerifyFull(t *testing.T) {
	ca := newTestCA(t, "binarc-test-ca")
	otherCA := newTestCA(t, "some-other-ca")
	startTLS := func(serverID uint32) *testenv.MariaDB {
		cert, key := ca.issue(t, "localhost")
		m := testenv.StartMariaDB(t, testenv.MariaDBOptions{ServerID: serverID, ExtraArgs: []string{
			"--ssl-ca=" + ca.certPEM, "--ssl-cert=" + cert, "--ssl-key=" + key,
		}})
		m.CreateReplicationUser(t, replUser, replPass)
		return m
	}
	a, b := startTLS(1), startTLS(2)
	s := testenv.StartS3(t)
	e := &env{t: t, primary: a, s3: s, store: s.StoreURL("archive"), cluster: "refused"}
	stream := func(source, caFile string) *proc {
		return e.start("stream", "--source", source, "--store", e.store, "--cluster", e.cluster,
			"--flush-interval", "200ms", "--source-tls", "verify-full", "--source-tls-ca", caFile)
	}

	// A certificate that does not verify is a permanent error: the stream
	// stops at the first server it refuses. Both orders of the hosts, so
	// each is shown to carry the TLS settings (a host that fell back to
	// "preferred" would be connected to instead).
	refused := map[int]bool{}
	for _, order := range [][2]int{{a.Port, b.Port}, {b.Port, a.Port}} {
		p := stream(fmt.Sprintf("mysql://%s@localhost:%d,localhost:%d", replUser, order[0], order[1]), otherCA.certPEM)
		out := waitRefused(t, p, time.Minute)
		for _, port := range order {
			if refusedForCertificate(out, fmt.Sprintf("localhost:%d", port)) {
				refused[port] = true
			}
		}
		p.kill()
	}
	for _, port := range []int{a.Port, b.Port} {
		if !refused[port] {
			t.Errorf("server localhost:%d was never refused for its certificate", port)
		}
	}
	tls, err := e.catalog().Describe(context.Background())
	if err != nil || len(tls) != 0 {
		t.Errorf("a refused stream archived %d timelines (%v)", len(tls), err)
	}

	e.cluster = "verified"
	p := stream(fmt.Sprintf("mysql://%s@localhost:%d,localhost:%d", replUser, a.Port, b.Port), ca.certPEM)
	p.waitLog(t, "streaming from the primary", time.Minute)
	p.stop(t)
}

// waitRefused waits until a multi-source binarc stream has said why no
// source can be archived: either it exits (an error) or it logs that it
// waits for one. It fails the test if binarc starts streaming.
func waitRefused(t *testing.T, p *proc, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := p.out.String()
		if len(logLines(out, "streaming from the primary")) > 0 || len(logLines(out, "archiving the writable server")) > 0 {
			t.Fatalf("binarc connected to a server whose certificate another CA signed:\n%s", tail(out, 4000))
		}
		if len(logLines(out, "no source is writable")) > 0 {
			return out
		}
		select {
		case <-p.done:
			if p.exitEr == nil {
				t.Fatalf("binarc exited 0:\n%s", tail(out, 4000))
			}
			return p.out.String()
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("binarc neither refused the sources nor exited within %s:\n%s", timeout, tail(out, 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// refusedForCertificate tells whether out has a log line naming addr with
// a certificate that does not verify.
func refusedForCertificate(out, addr string) bool {
	for _, line := range strings.Split(out, "\n") {
		for _, problem := range strings.Split(line, ";") {
			if strings.Contains(problem, addr) && strings.Contains(problem, "certificate does not verify") {
				return true
			}
		}
	}
	return false
}
