package replication

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
)

// TLSMode is how binarc protects its connections to a server, with the
// meanings of the MySQL client's --ssl-mode.
type TLSMode string

// The TLS modes.
const (
	// TLSDisable never uses TLS.
	TLSDisable TLSMode = "disable"
	// TLSPreferred uses TLS when the server offers it, without checking
	// its certificate; plain otherwise. The default.
	TLSPreferred TLSMode = "preferred"
	// TLSRequired refuses a server without TLS; the certificate is not
	// checked (it protects against eavesdropping, not impersonation).
	TLSRequired TLSMode = "required"
	// TLSVerifyCA also checks that the certificate is signed by the CA.
	TLSVerifyCA TLSMode = "verify-ca"
	// TLSVerifyFull also checks that it names the host connected to.
	TLSVerifyFull TLSMode = "verify-full"
)

// TLSOptions configure TLS to one server. CA, Cert and Key are PEM files.
type TLSOptions struct {
	Mode TLSMode
	// CA verifies the server's certificate (verify-ca, verify-full); the
	// system's roots when empty.
	CA string
	// Cert and Key are a client certificate, for servers that require one
	// (REQUIRE X509).
	Cert, Key string
	// Flag names the flag prefix in messages ("--source-tls").
	Flag string
}

// Validate checks the options and that their files can be read.
func (o TLSOptions) Validate() error {
	flag := o.flag()
	switch o.Mode {
	case "", TLSDisable, TLSPreferred, TLSRequired, TLSVerifyCA, TLSVerifyFull:
	default:
		return fmt.Errorf("%s %q: use disable, preferred, required, verify-ca or verify-full", flag, o.Mode)
	}
	if (o.Cert == "") != (o.Key == "") {
		return fmt.Errorf("%s-cert and %s-key go together: give both or neither", flag, flag)
	}
	if o.Mode == TLSDisable && (o.CA != "" || o.Cert != "") {
		return fmt.Errorf("%s disable: %s-ca, -cert and -key would not be used", flag, flag)
	}
	_, err := o.config("")
	return err
}

func (o TLSOptions) flag() string {
	if o.Flag == "" {
		return "--source-tls"
	}
	return o.Flag
}

func (o TLSOptions) mode() TLSMode {
	if o.Mode == "" {
		return TLSPreferred
	}
	return o.Mode
}

// config builds the tls.Config for host; nil for disable.
func (o TLSOptions) config(host string) (*tls.Config, error) {
	flag := o.flag()
	mode := o.mode()
	if mode == TLSDisable {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if o.Cert != "" {
		pair, err := tls.LoadX509KeyPair(o.Cert, o.Key)
		if err != nil {
			return nil, fmt.Errorf("%s-cert %s / %s-key %s: %w", flag, o.Cert, flag, o.Key, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	var roots *x509.CertPool
	if o.CA != "" {
		pem, err := os.ReadFile(o.CA)
		if err != nil {
			return nil, fmt.Errorf("%s-ca: %w", flag, err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s-ca %s holds no PEM certificate", flag, o.CA)
		}
	}
	switch mode {
	case TLSPreferred, TLSRequired:
		cfg.InsecureSkipVerify = true
	case TLSVerifyCA:
		// Chain to the CA, any host name: Go checks both or neither, so
		// the chain is checked here.
		cfg.InsecureSkipVerify = true
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyChain(raw, roots)
		}
	case TLSVerifyFull:
		cfg.RootCAs = roots
	}
	return cfg, nil
}

func verifyChain(raw [][]byte, roots *x509.CertPool) error {
	if len(raw) == 0 {
		return errors.New("the server sent no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return err
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
	return err
}

// TLSConfig is the tls.Config for a connection to c; nil means plain. In
// preferred mode it asks the server first whether it offers TLS, each
// time until the server has said yes once: a "no" is never remembered, so
// a path that stripped TLS from one answer does not keep every later
// connection in clear, and each "no" is logged as a warning.
func (c Config) TLSConfig(ctx context.Context) (*tls.Config, error) {
	cfg, err := c.TLS.config(c.Host)
	if err != nil || cfg == nil || c.TLS.mode() != TLSPreferred {
		return cfg, err
	}
	if _, yes := tlsOffered.Load(c.Addr()); yes {
		return cfg, nil
	}
	offers, err := offersTLS(ctx, c.Addr())
	if err != nil {
		return nil, fmt.Errorf("primary %s: %w", c.Addr(), err)
	}
	if !offers {
		c.Log.Warn().Str("server", c.Addr()).Msgf("the server answered without TLS: this connection is in clear (%s preferred); enable TLS on the server, use %s required or verify-full to refuse a server without TLS, or %s disable to connect in clear without this warning", c.TLS.flag(), c.TLS.flag(), c.TLS.flag())
		return nil, nil
	}
	tlsOffered.Store(c.Addr(), true)
	return cfg, nil
}

// tlsOffered holds the addresses of servers that offered TLS: asked once
// per process, since the question is a connection the server counts as
// aborted (a successful one after it clears the count). Only a yes is
// kept; a server that no longer offers TLS is forgotten (classifyTLS).
var tlsOffered sync.Map

// errTLSGone says a preferred-mode server that offered TLS before no
// longer does; the next connection asks it afresh.
var errTLSGone = errors.New("no longer offers TLS")

// offersTLS reads a server's greeting and tells whether it offers TLS
// (CLIENT_SSL in its capability flags).
func offersTLS(ctx context.Context, addr string) (bool, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false, err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(nc)
	head := make([]byte, 4)
	if _, err := io.ReadFull(r, head); err != nil {
		return false, fmt.Errorf("read the server's greeting: %w", err)
	}
	n := int(head[0]) | int(head[1])<<8 | int(head[2])<<16
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return false, fmt.Errorf("read the server's greeting: %w", err)
	}
	// protocol version, server version\0, thread id (4), auth data (8),
	// filler (1), capability flags (lower 2 bytes).
	if len(body) < 1 || body[0] != 10 {
		return false, errors.New("the server's greeting is not protocol 10 (an error packet: too many connections, or a blocked host?)")
	}
	end := strings.IndexByte(string(body[1:]), 0)
	if end < 0 || len(body) < 1+end+1+4+8+1+2 {
		return false, errors.New("the server's greeting is truncated")
	}
	caps := binary.LittleEndian.Uint16(body[1+end+1+4+8+1:])
	const clientSSL = 0x0800
	return caps&clientSSL != 0, nil
}

// Connect opens a client session to c with its TLS options. A
// preferred-mode server that offered TLS before and no longer does is
// asked afresh once (it is then connected in clear, with a warning).
// Its reads and writes have no deadline: drill's checksums and a
// snapshot's waits may run long.
func (c Config) Connect(ctx context.Context) (*client.Conn, error) {
	return c.connect(ctx, 0)
}

// connect is Connect with a deadline on each read and write of the
// session (none when timeout is 0), the handshake included.
func (c Config) connect(ctx context.Context, timeout time.Duration) (*client.Conn, error) {
	conn, err := c.connectOnce(ctx, timeout)
	if errors.Is(err, errTLSGone) {
		conn, err = c.connectOnce(ctx, timeout)
	}
	return conn, err
}

func (c Config) connectOnce(ctx context.Context, timeout time.Duration) (*client.Conn, error) {
	tc, err := c.TLSConfig(ctx)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := client.ConnectWithDialer(ctx, "tcp", c.Addr(), c.User, c.Password, "", d.DialContext, func(conn *client.Conn) error {
		if tc != nil {
			conn.SetTLSConfig(tc)
		}
		conn.ReadTimeout, conn.WriteTimeout = timeout, timeout
		return nil
	})
	if err != nil {
		return nil, c.classifyTLS(err)
	}
	return conn, nil
}

// classifyTLS turns TLS failures, which no retry fixes, into a
// ConfigError; other errors are returned as they are.
func (c Config) classifyTLS(err error) error {
	flag := c.TLS.flag()
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr *tls.CertificateVerificationError
	switch {
	case err == nil:
		return nil
	case strings.Contains(err.Error(), "does not support TLS") && c.TLS.mode() == TLSPreferred:
		tlsOffered.Delete(c.Addr())
		return fmt.Errorf("server %s: %w (%v)", c.Addr(), errTLSGone, err)
	case strings.Contains(err.Error(), "does not support TLS"):
		return &ConfigError{
			Problem: fmt.Sprintf("server %s does not offer TLS, and %s is %s", c.Addr(), flag, c.TLS.mode()),
			Hint:    "enable TLS on the server (ssl_cert, ssl_key), or use " + flag + " preferred",
		}
	case errors.As(err, &hostErr):
		return &ConfigError{
			Problem: fmt.Sprintf("server %s: its certificate is not for the host name %q: %v", c.Addr(), c.Host, hostErr),
			Hint:    "connect with a host name the certificate names, or use " + flag + " verify-ca",
		}
	case errors.As(err, &unknownCA) || errors.As(err, &certErr) || strings.Contains(err.Error(), "x509:"):
		return &ConfigError{
			Problem: fmt.Sprintf("server %s: its certificate does not verify: %v", c.Addr(), rootCause(err)),
			Hint:    "give the CA that signed it with " + flag + "-ca",
		}
	case strings.Contains(err.Error(), "tls:"):
		return &ConfigError{
			Problem: fmt.Sprintf("server %s: TLS handshake failed: %v", c.Addr(), rootCause(err)),
			Hint:    "check " + flag + "-cert and " + flag + "-key, and the server's TLS settings",
		}
	}
	return err
}

func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// OptionFileLines are the [client] option-file lines that give a MariaDB
// or MySQL command-line tool (mariabackup, mariadb-dump, mariadb) the same
// TLS settings. The tools have no verify-ca: they check the host name
// with the chain or nothing, so verify-ca checks the chain only in
// binarc's own connections and the tools get ssl-ca without host checking.
func (o TLSOptions) OptionFileLines() string {
	var b strings.Builder
	switch o.mode() {
	case TLSDisable:
		b.WriteString("skip-ssl\n")
		return b.String()
	case TLSPreferred:
		if o.CA == "" && o.Cert == "" {
			return ""
		}
	default:
		b.WriteString("ssl\n")
	}
	if o.CA != "" {
		fmt.Fprintf(&b, "ssl-ca=%s\n", quoteOption(o.CA))
	}
	if o.Cert != "" {
		fmt.Fprintf(&b, "ssl-cert=%s\nssl-key=%s\n", quoteOption(o.Cert), quoteOption(o.Key))
	}
	if o.mode() == TLSVerifyFull {
		b.WriteString("ssl-verify-server-cert\n")
	}
	return b.String()
}

// quoteOption quotes a value for a MySQL option file.
func quoteOption(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
