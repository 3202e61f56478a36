package serve

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
)

// TLSFiles name serve's certificate, its key, and optionally the CA that
// signs the replicas' client certificates.
type TLSFiles struct {
	Cert, Key string
	ClientCA  string
}

// IsZero tells whether no file is given (serve without TLS).
func (f TLSFiles) IsZero() bool { return f.Cert == "" && f.Key == "" && f.ClientCA == "" }

// Config loads the files: nil without any. With a client CA, a replica
// must present a certificate it signed (MASTER_SSL_CERT, MASTER_SSL_KEY).
func (f TLSFiles) Config() (*tls.Config, error) {
	if f.IsZero() {
		return nil, nil
	}
	if f.Cert == "" || f.Key == "" {
		return nil, errors.New("--tls-cert and --tls-key go together: give both (PEM files of serve's certificate and its key)")
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s, --tls-key %s: %w (PEM files of the certificate and of its private key)", f.Cert, f.Key, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if f.ClientCA != "" {
		b, err := os.ReadFile(f.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--tls-client-ca %s: no PEM certificate in it", f.ClientCA)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// CheckListen refuses to serve on an address other hosts can reach
// without TLS: the binlog (decrypted, with --identity) and the login
// would cross the network in clear. Only a loopback IP or "localhost"
// counts as local; any other name is taken as reachable (it is not
// resolved: what it resolves to can change).
func CheckListen(addr string, withTLS, insecure bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %w (use HOST:PORT, e.g. 127.0.0.1:3307)", addr, err)
	}
	if withTLS || insecure || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("--listen %s is not a loopback address and serve has no TLS: the binlog and the login would cross the network in clear; "+
		"give --tls-cert and --tls-key (replicas then connect with MASTER_SSL=1), or --insecure-listen on a network you trust", addr)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
