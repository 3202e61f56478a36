package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/restore"
	"github.com/binarc/binarc/serve"
	"github.com/rs/zerolog"
)

type serveCmd struct {
	storeFlags
	Listen       string   `env:"BINARC_SERVE_LISTEN" default:"127.0.0.1:3307" help:"Address replicas connect to (CHANGE MASTER TO MASTER_HOST, MASTER_PORT)."`
	User         string   `env:"BINARC_SERVE_USER" default:"binarc" help:"User replicas authenticate as (MASTER_USER)."`
	PasswordFile string   `env:"BINARC_SERVE_PASSWORD_FILE" type:"path" placeholder:"FILE" help:"File holding the replicas' password (first line); or set BINARC_SERVE_PASSWORD."`
	ServerID     uint32   `env:"BINARC_SERVE_SERVER_ID" help:"server_id replicas see (default: the archived primary's)."`
	To           string   `placeholder:"TARGET" help:"Stop every stream here, at a transaction boundary: a time with its zone, a binlog position, a GTID (inclusive), or latest (the default without --follow)."`
	SkipGTID     []string `name:"skip-gtid" placeholder:"GTID" help:"Leave out this transaction (repeatable)."`
	Follow       bool     `help:"Keep streaming new segments as the archive grows (a replica catching up before it is switched to the primary)."`
	serveNetFlags
	identityFlags
	trustFlags
}

// serveNetFlags secure and bound serve's listener.
type serveNetFlags struct {
	TLSCert               string        `name:"tls-cert" env:"BINARC_SERVE_TLS_CERT" type:"path" placeholder:"FILE" help:"Serve's certificate (PEM): every replica must then use TLS (MASTER_SSL=1; MASTER_SSL_CA and MASTER_SSL_VERIFY_SERVER_CERT=1 to check it)."`
	TLSKey                string        `name:"tls-key" env:"BINARC_SERVE_TLS_KEY" type:"path" placeholder:"FILE" help:"Its private key (PEM)."`
	TLSClientCA           string        `name:"tls-client-ca" env:"BINARC_SERVE_TLS_CLIENT_CA" type:"path" placeholder:"FILE" help:"CA (PEM) that signs replicas' client certificates: a replica without one it signed is refused (MASTER_SSL_CERT, MASTER_SSL_KEY)."`
	InsecureListen        bool          `name:"insecure-listen" env:"BINARC_SERVE_INSECURE_LISTEN" help:"Allow a non-loopback --listen without TLS: the binlog and the login then cross the network in clear. Only on a network you trust."`
	MaxConnections        int           `name:"max-connections" env:"BINARC_SERVE_MAX_CONNECTIONS" placeholder:"N" help:"Connections held at once; more are answered \"Too many connections\" (default 64)."`
	MaxConnectionsPerHost int           `name:"max-connections-per-host" env:"BINARC_SERVE_MAX_CONNECTIONS_PER_HOST" placeholder:"N" help:"The same per client address, an IPv6 client's /64 (default 8)."`
	HandshakeTimeout      time.Duration `name:"handshake-timeout" env:"BINARC_SERVE_HANDSHAKE_TIMEOUT" placeholder:"DURATION" help:"Time a client has to finish TLS and log in (default 10s)."`
	IdleTimeout           time.Duration `name:"idle-timeout" env:"BINARC_SERVE_IDLE_TIMEOUT" placeholder:"DURATION" help:"Time a logged-in client may send nothing outside a dump (default 5m)."`
}

// config checks the listener's flags and loads the certificate.
func (f serveNetFlags) config(listen string) (*tls.Config, serve.Limits, error) {
	lim := serve.Limits{HandshakeTimeout: f.HandshakeTimeout, IdleTimeout: f.IdleTimeout,
		MaxConnections: f.MaxConnections, MaxConnectionsPerHost: f.MaxConnectionsPerHost}
	if err := lim.Check(); err != nil {
		return nil, lim, usageError{err}
	}
	files := serve.TLSFiles{Cert: f.TLSCert, Key: f.TLSKey, ClientCA: f.TLSClientCA}
	if err := serve.CheckListen(listen, !files.IsZero(), f.InsecureListen); err != nil {
		return nil, lim, usageError{err}
	}
	cfg, err := files.Config()
	if err != nil {
		return nil, lim, usageError{err}
	}
	return cfg, lim, nil
}

func (c *serveCmd) Run(ctx context.Context, log zerolog.Logger) error {
	var stop serve.Stop
	if c.To != "" {
		t, err := restore.ParseTarget(c.To)
		if err != nil {
			return usageError{err}
		}
		if c.Follow && t.Kind != restore.TargetLatest {
			return usageError{fmt.Errorf("--follow streams without end: give it or --to, not both")}
		}
		stop = serve.Stop{Time: t.Time, Position: t.Position, GTID: t.GTID}
	}
	for _, g := range c.SkipGTID {
		if !restore.IsGTID(g) {
			return usageError{fmt.Errorf("--skip-gtid %q is not a GTID (0-1-2345)", g)}
		}
	}
	tlsConfig, limits, err := c.serveNetFlags.config(c.Listen)
	if err != nil {
		return err
	}
	password, ok := os.LookupEnv("BINARC_SERVE_PASSWORD")
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return usageError{fmt.Errorf("--password-file: %w", err)}
		}
		password, ok = strings.TrimRight(strings.SplitN(string(b), "\n", 2)[0], "\r"), true
	}
	if !ok || password == "" {
		return usageError{fmt.Errorf("no password for replicas: set BINARC_SERVE_PASSWORD or give --password-file FILE (never on the command line)")}
	}
	cat, err := readingCatalog(ctx, c.storeFlags, c.trustFlags, c.identityFlags, log)
	if err != nil {
		return err
	}
	return serve.ServeArchive(ctx, serve.ArchiveOptions{
		Catalog:        cat,
		Listen:         c.Listen,
		InsecureListen: c.InsecureListen,
		Joins:          func(ctx context.Context) ([]*serve.Join, error) { return serveJoins(ctx, cat) },
		Config: serve.Config{User: c.User, Password: password, ServerID: c.ServerID, Stop: stop, Skip: c.SkipGTID,
			Follow: c.Follow, Log: log, TLS: tlsConfig, Limits: limits},
	})
}

// serveJoins is the joins between the archive's timelines, for serve to
// stream across failovers and flips.
func serveJoins(ctx context.Context, cat archive.Catalog) ([]*serve.Join, error) {
	js, err := archive.Joins(ctx, cat, os.TempDir())
	if err != nil {
		return nil, err
	}
	var out []*serve.Join
	for _, j := range js {
		if j == nil {
			continue
		}
		out = append(out, &serve.Join{Timeline: j.Timeline, Previous: j.From(), Meet: j.Meet, Broken: j.Broken, Final: j.Final,
			PreviousEnd: replication.Position{File: j.PreviousEnd.File, Offset: j.PreviousEnd.Offset},
			At:          replication.Position{File: j.At.File, Offset: j.At.Offset}})
	}
	return out, nil
}
