package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/retry"
	"github.com/binarc/binarc/replication"
	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

type logFlags struct {
	Format string `default:"auto" enum:"auto,json,console" env:"BINARC_LOG_FORMAT" help:"Log format: json, console, or auto (console on a terminal, JSON otherwise)."`
	Level  string `default:"info" enum:"debug,info,warn,error" env:"BINARC_LOG_LEVEL" help:"Log level."`
}

func (f logFlags) logger() (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(f.Level)
	if err != nil {
		return zerolog.Logger{}, fmt.Errorf("--log-level %q: %w", f.Level, err)
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	var log zerolog.Logger
	if f.Format == "console" || (f.Format == "auto" && isatty.IsTerminal(os.Stderr.Fd())) {
		log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05.000", NoColor: !isatty.IsTerminal(os.Stderr.Fd())})
	} else {
		log = zerolog.New(os.Stderr)
	}
	return log.Level(lvl).With().Timestamp().Logger(), nil
}

// storeURLFlags say where the archive is.
type storeURLFlags struct {
	Store string `required:"" env:"BINARC_STORE" placeholder:"URL" help:"Where the archive is: s3://BUCKET/PREFIX, file:///PATH or a directory."`
}

func (f storeURLFlags) open(ctx context.Context) (objstore.Store, error) {
	s, err := objstore.Open(ctx, f.Store)
	if err != nil {
		return nil, usageError{fmt.Errorf("--store: %w", err)}
	}
	return s, nil
}

// storeFlags name the archive: where it is and which cluster.
type storeFlags struct {
	storeURLFlags
	Cluster string `required:"" env:"BINARC_CLUSTER" help:"Cluster name: the archive's top folder in the store."`
}

func (f storeFlags) open(ctx context.Context) (objstore.Store, archive.Layout, error) {
	if err := archive.ValidateName("cluster", f.Cluster); err != nil {
		return nil, archive.Layout{}, usageError{fmt.Errorf("--cluster: %w", err)}
	}
	s, err := f.storeURLFlags.open(ctx)
	return s, archive.Layout{Cluster: f.Cluster}, err
}

// catalog opens the store and reads the cluster's archive through it.
func (f storeFlags) catalog(ctx context.Context) (archive.Catalog, error) {
	store, layout, err := f.open(ctx)
	return archive.Catalog{Store: store, Layout: layout}, err
}

// readingCatalog is the catalog of a command that reads the archive: the
// store, then the keys it trusts and the identity that opens it.
func readingCatalog(ctx context.Context, s storeFlags, t trustFlags, id identityFlags, log zerolog.Logger) (archive.Catalog, error) {
	cat, err := s.catalog(ctx)
	if err != nil {
		return cat, err
	}
	if cat.Trust, err = t.trust(); err != nil {
		return cat, err
	}
	cat.Opener, err = id.opener(log)
	return cat, err
}

// openRetrying opens the store like open, but waits out a store that cannot
// be reached (a network error: the S3 server is down or restarting), as
// long-running commands must. A missing bucket or bad credentials are still
// errors at once.
func (f storeFlags) openRetrying(ctx context.Context, log zerolog.Logger) (objstore.Store, error) {
	outage := &retry.Outage{Log: log, What: "object store", DownMsg: "object store unreachable; retrying with backoff (logged once per outage)"}
	notNetwork := func(err error) bool {
		var ne net.Error
		return !errors.As(err, &ne)
	}
	return retry.Do(ctx, retry.Backoff{}, outage, notNetwork, func() (objstore.Store, error) {
		s, _, err := f.open(ctx)
		return s, err
	})
}

// sourceFlags say how to reach the primary. The password is best given
// through a file or the environment, so it never shows in ps; the file wins
// over BINARC_SOURCE_PASSWORD, which wins over the URL.
type sourceFlags struct {
	Source             string `env:"BINARC_SOURCE" placeholder:"URL" help:"The primary: mysql://USER@HOST:PORT; binarc stream also takes several, mysql://USER@HOST1:PORT1,HOST2:PORT2, and archives the writable one (put the password in BINARC_SOURCE_PASSWORD or --source-password-file, not here)."`
	SourcePasswordFile string `env:"BINARC_SOURCE_PASSWORD_FILE" type:"path" placeholder:"FILE" help:"File holding the primary's password (first line); it wins over BINARC_SOURCE_PASSWORD, which wins over a password in the URL."`
	ServerID           uint32 `env:"BINARC_SERVER_ID" default:"4207" help:"server_id binarc registers with; unique in the cluster."`
	sourceTLSFlags
}

// sources is what the flags say about the source servers; the password
// is taken, in order of preference, from --source-password-file, then
// BINARC_SOURCE_PASSWORD, then the URL (replication.PasswordFrom).
func (f sourceFlags) sources(log zerolog.Logger) replication.Sources {
	env, envSet := os.LookupEnv("BINARC_SOURCE_PASSWORD")
	return replication.Sources{
		URL:      f.Source,
		Password: replication.PasswordFrom{File: f.SourcePasswordFile, FileFlag: "--source-password-file", Env: env, EnvSet: envSet},
		ServerID: f.ServerID,
		TLS:      f.sourceTLSFlags.options(),
		Log:      log,
	}
}

// config parses a source that names one server.
func (f sourceFlags) config(log zerolog.Logger) (replication.Config, error) {
	cfg, err := f.sources(log).ParseOne()
	if err != nil {
		return cfg, usageError{err}
	}
	return cfg, nil
}
