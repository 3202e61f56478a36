package serve

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/rs/zerolog"
)

// testPKI is a CA made for one test and the files it issued.
type testPKI struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	dir  string
	CA   string // PEM file of the CA
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "serve test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := &testPKI{cert: cert, key: key, dir: t.TempDir()}
	p.CA = p.write(t, "ca.pem", "CERTIFICATE", der)
	return p
}

func (p *testPKI) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	f := filepath.Join(p.dir, name)
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// issue makes a certificate for 127.0.0.1 (server or client use) and
// returns its certificate and key files.
func (p *testPKI) issue(t *testing.T, name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return p.write(t, name+".pem", "CERTIFICATE", der), p.write(t, name+"-key.pem", "PRIVATE KEY", kder)
}

// clientTLS is a go-mysql client option trusting ca, with a client
// certificate when certFile is set.
func clientTLS(t *testing.T, ca, certFile, keyFile string) client.Option {
	t.Helper()
	b, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	if certFile != "" {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return func(c *client.Conn) error { c.SetTLSConfig(cfg); return nil }
}

// TestServeTLS: with a certificate, go-mysql's client logs in over TLS
// and is served; a client that does not ask for TLS is refused before it
// sends its login; one that trusts another CA refuses serve; with a
// client CA, a client without a certificate it signed is refused.
func TestServeTLS(t *testing.T) {
	pki, other := newTestPKI(t), newTestPKI(t)
	cert, key := pki.issue(t, "server", x509.ExtKeyUsageServerAuth)
	ccert, ckey := pki.issue(t, "replica", x509.ExtKeyUsageClientAuth)
	ocert, okey := other.issue(t, "stranger", x509.ExtKeyUsageClientAuth)
	for _, withCA := range []bool{false, true} {
		files := TLSFiles{Cert: cert, Key: key}
		if withCA {
			files.ClientCA = pki.CA
		}
		cfg, err := files.Config()
		if err != nil {
			t.Fatal(err)
		}
		addr := startServer(t, Config{Source: &DirSource{Dir: t.TempDir()}, User: "u", Password: "p", ServerID: 9, Log: zerolog.Nop(), TLS: cfg})
		connect := func(opts ...client.Option) error {
			c, err := client.Connect(addr, "u", "p", "", opts...)
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Execute("SELECT UNIX_TIMESTAMP()")
			return err
		}
		if err := connect(clientTLS(t, pki.CA, ccert, ckey)); err != nil {
			t.Errorf("client CA %v: over TLS with a certificate: %v", withCA, err)
		}
		if err := connect(); err == nil || !strings.Contains(err.Error(), "requires TLS") {
			t.Errorf("client CA %v: without TLS: %v, want a refusal naming TLS", withCA, err)
		}
		if err := connect(clientTLS(t, other.CA, "", "")); err == nil {
			t.Errorf("client CA %v: a client trusting another CA logged in", withCA)
		}
		err = connect(clientTLS(t, pki.CA, "", ""))
		if withCA && err == nil {
			t.Error("client CA: a client without a certificate logged in")
		} else if !withCA && err != nil {
			t.Errorf("over TLS without a client certificate: %v", err)
		}
		if err := connect(clientTLS(t, pki.CA, ocert, okey)); withCA && err == nil {
			t.Error("client CA: a certificate from another CA logged in")
		}
	}
}

func TestTLSFiles(t *testing.T) {
	pki := newTestPKI(t)
	cert, key := pki.issue(t, "server", x509.ExtKeyUsageServerAuth)
	for _, c := range []struct {
		files TLSFiles
		want  string
	}{
		{TLSFiles{Cert: cert}, "--tls-key"},
		{TLSFiles{Key: key}, "--tls-cert"},
		{TLSFiles{ClientCA: pki.CA}, "--tls-cert and --tls-key"},
		{TLSFiles{Cert: cert, Key: cert}, "--tls-key"},
		{TLSFiles{Cert: cert, Key: key, ClientCA: key}, "no PEM certificate"},
		{TLSFiles{Cert: cert, Key: key, ClientCA: filepath.Join(t.TempDir(), "none")}, "--tls-client-ca"},
	} {
		if _, err := c.files.Config(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error naming %q", c.files, err, c.want)
		}
	}
	if cfg, err := (TLSFiles{}).Config(); cfg != nil || err != nil {
		t.Errorf("no files: %v, %v", cfg, err)
	}
}

func TestCheckListen(t *testing.T) {
	for _, c := range []struct {
		addr          string
		tls, insecure bool
		ok            bool
	}{
		{"127.0.0.1:3307", false, false, true},
		{"127.9.9.9:3307", false, false, true},
		{"[::1]:3307", false, false, true},
		{"localhost:3307", false, false, true},
		{"10.0.0.5:3307", false, false, false},
		{":3307", false, false, false},
		{"0.0.0.0:3307", false, false, false},
		{"[::]:3307", false, false, false},
		{"db.example.com:3307", false, false, false},
		{"10.0.0.5:3307", true, false, true},
		{"10.0.0.5:3307", false, true, true},
		{"no-port", true, true, false},
	} {
		err := CheckListen(c.addr, c.tls, c.insecure)
		if (err == nil) != c.ok {
			t.Errorf("%s tls=%v insecure=%v: %v", c.addr, c.tls, c.insecure, err)
		}
		if err != nil && c.addr != "no-port" && (!strings.Contains(err.Error(), "--tls-cert") || !strings.Contains(err.Error(), "--insecure-listen")) {
			t.Errorf("%s: the error names neither fix: %v", c.addr, err)
		}
	}
}

// TestLargePacketOverTLSCloses: the packet limit holds above TLS too: a
// client that completes TLS and then announces 16 MiB is closed without
// serve reading it.
func TestLargePacketOverTLSCloses(t *testing.T) {
	pki := newTestPKI(t)
	cert, key := pki.issue(t, "server", x509.ExtKeyUsageServerAuth)
	cfg, err := TLSFiles{Cert: cert, Key: key}.Config()
	if err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, Config{Source: &DirSource{Dir: t.TempDir()}, User: "u", Password: "p", ServerID: 9, Log: zerolog.Nop(), TLS: cfg})
	c := dialFrom(t, addr, "127.0.0.1")
	greeting(t, c)
	req := make([]byte, sslRequestLen)
	binary.LittleEndian.PutUint32(req, mysql.CLIENT_PROTOCOL_41|mysql.CLIENT_SECURE_CONNECTION|mysql.CLIENT_SSL)
	if _, err := c.Write(append(header(sslRequestLen, 1), req...)); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(pki.CA)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	tc := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS: %v", err)
	}
	if _, err := tc.Write(header(1<<24-1, 2)); err != nil {
		t.Fatal(err)
	}
	if got := waitClosedByServe(t, tc, "16 MiB announced over TLS"); !strings.Contains(string(got), "too large") {
		t.Errorf("serve's answer to a 16 MiB packet over TLS: %q", got)
	}
}
