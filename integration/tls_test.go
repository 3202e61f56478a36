package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/integration/testenv"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM string // file
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, certPEM: filepath.Join(t.TempDir(), name+".pem")}
	writePEM(t, ca.certPEM, "CERTIFICATE", der)
	return ca
}

// issue makes a server certificate for dnsNames; it returns the cert and
// key files.
func (ca *testCA) issue(t *testing.T, dnsNames ...string) (certFile, keyFile string) {
	t.Helper()
	return ca.issueFor(t, dnsNames[0], x509.ExtKeyUsageServerAuth, &x509.Certificate{DNSNames: dnsNames})
}

// issueFor makes a certificate for name with usage from ca, its names and
// addresses from names (DNSNames, IPAddresses); it returns the cert and
// key files.
func (ca *testCA) issueFor(t *testing.T, name string, usage x509.ExtKeyUsage, names *x509.Certificate) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     names.DNSNames,
		IPAddresses:  names.IPAddresses,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyFile, "PRIVATE KEY", kder)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSourceTLS: a primary with a certificate from a CA the test made, and
// a replication user that REQUIRE SSL (so a plain connection is refused by
// the server itself). verify-full streams with the right CA and the host
// name the certificate names, and the archive rebuilds byte for byte; a
// logical snapshot (mariadb-dump) goes over TLS too. verify-full is
// refused with another CA and with a host name the certificate does not
// name; required is refused by a server without TLS. restore --target
// replays over TLS into a target whose user REQUIRE SSL, and is refused
// when another CA signed the target's certificate.
func TestSourceTLS(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "binarc-test-ca")
	otherCA := newTestCA(t, "some-other-ca")
	cert, key := ca.issue(t, "localhost")
	p := testenv.StartMariaDB(t, testenv.MariaDBOptions{ExtraArgs: []string{
		"--ssl-ca=" + ca.certPEM, "--ssl-cert=" + cert, "--ssl-key=" + key,
	}})
	p.CreateReplicationUser(t, replUser, replPass)
	p.Exec(t,
		"ALTER USER '"+replUser+"'@'127.0.0.1' REQUIRE SSL",
		"ALTER USER '"+replUser+"'@'localhost' REQUIRE SSL",
		"CREATE USER 'dumper'@'127.0.0.1' IDENTIFIED BY '"+replPass+"' REQUIRE SSL",
		"GRANT RELOAD, PROCESS, BINLOG MONITOR, SELECT, SHOW VIEW, TRIGGER, EVENT, SLAVE MONITOR ON *.* TO 'dumper'@'127.0.0.1'")
	s := testenv.StartS3(t)
	e := &env{t: t, primary: p, s3: s, store: s.StoreURL("archive"), cluster: "tls"}
	byName := "mysql://" + replUser + "@localhost:" + strconv.Itoa(p.Port)
	tlsArgs := func(source, mode, caFile string) []string {
		return []string{"stream", "--source", source, "--store", e.store, "--cluster", e.cluster,
			"--flush-interval", "200ms", "--source-tls", mode, "--source-tls-ca", caFile}
	}

	// Refusals: each exits on its own, naming the problem.
	refused := func(what string, args []string, want ...string) {
		t.Helper()
		out, code := e.run(args...)
		if code == 0 {
			t.Fatalf("%s: binarc stream ran:\n%s", what, out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: the error does not say %q:\n%s", what, w, tail(out, 2000))
			}
		}
	}
	refused("another CA", tlsArgs(byName, "verify-full", otherCA.certPEM), "certificate does not verify", "--source-tls-ca")
	refused("wrong host name", tlsArgs(p.SourceURL(replUser, ""), "verify-full", ca.certPEM), "not for the host name", "127.0.0.1")
	refused("TLS disabled on a REQUIRE SSL user", []string{"stream", "--source", byName, "--store", e.store, "--cluster", e.cluster, "--source-tls", "disable"}, "access denied")
	plain := testenv.StartMariaDB(t, testenv.MariaDBOptions{ServerID: 5})
	plain.CreateReplicationUser(t, replUser, replPass)
	refused("required, server without TLS", []string{"stream", "--source", plain.SourceURL(replUser, ""), "--store", e.store, "--cluster", "plain", "--source-tls", "required"},
		"does not offer TLS", "--source-tls")

	// verify-full with the right CA and name: it streams.
	proc := e.start(tlsArgs(byName, "verify-full", ca.certPEM)...)
	if err := writeLoad(context.Background(), p, loadOptions{From: 0, To: 40, FlushAt: 15}); err != nil {
		t.Fatal(err)
	}
	e.waitArchived(time.Minute)
	proc.stop(t)
	if n := e.compareWithPrimary(); n < 2 {
		t.Fatalf("compared %d files", n)
	}
	want := tableChecksums(t, p)

	// restore --target over TLS: the mariadb client gets the settings.
	tcert, tkey := ca.issue(t, "localhost")
	target := testenv.StartMariaDB(t, testenv.MariaDBOptions{ServerID: 99, NoLogBin: true, ExtraArgs: []string{
		"--ssl-ca=" + ca.certPEM, "--ssl-cert=" + tcert, "--ssl-key=" + tkey,
	}})
	target.Exec(t,
		"CREATE USER 'restorer'@'127.0.0.1' IDENTIFIED BY '"+replPass+"' REQUIRE SSL",
		"GRANT ALL PRIVILEGES ON *.* TO 'restorer'@'127.0.0.1' WITH GRANT OPTION")
	first := p.Query(t, "SHOW BINARY LOGS")[0][0]
	restore := func(caFile string) (string, int) {
		return e.runEnv([]string{"BINARC_TARGET_PASSWORD=" + replPass}, "restore", "--store", e.store, "--cluster", e.cluster,
			"--from", first+":4", "--to", "latest", "--target", "mysql://restorer@localhost:"+strconv.Itoa(target.Port),
			"--target-tls", "verify-full", "--target-tls-ca", caFile)
	}
	if out, code := restore(otherCA.certPEM); code == 0 {
		t.Errorf("restore to a target whose certificate another CA signed succeeded:\n%s", tail(out, 2000))
	}
	if out, code := restore(ca.certPEM); code != 0 {
		t.Fatalf("restore over TLS (%d):\n%s", code, tail(out, 3000))
	}
	compareChecksums(t, "restore over TLS", tableChecksums(t, target), want)

	// verify-ca checks the chain, not the name: 127.0.0.1 is fine.
	proc = e.start(tlsArgs(p.SourceURL(replUser, ""), "verify-ca", ca.certPEM)...)
	proc.waitLog(t, "streaming from the primary", time.Minute)
	proc.stop(t)

	// The snapshot tool gets the same TLS settings.
	out, code := e.run("snapshot", "--method", "logical", "--allow-primary", "--source", "mysql://dumper@localhost:"+strconv.Itoa(p.Port),
		"--store", e.store, "--cluster", e.cluster, "--source-tls", "verify-full", "--source-tls-ca", ca.certPEM)
	if code != 0 {
		t.Fatalf("logical snapshot over TLS (%d):\n%s", code, tail(out, 3000))
	}
	out, code = e.run("snapshot", "--method", "logical", "--allow-primary", "--source", "mysql://dumper@localhost:"+strconv.Itoa(p.Port),
		"--store", e.store, "--cluster", "tls2", "--source-tls", "verify-full", "--source-tls-ca", otherCA.certPEM)
	if code == 0 || !strings.Contains(out, "certificate does not verify") {
		t.Errorf("snapshot with another CA (%d):\n%s", code, tail(out, 3000))
	}
}
