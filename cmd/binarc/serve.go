package main

import (
	"context"
	"fmt"
	"os"
	"strings"

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
	identityFlags
	trustFlags
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
	store, layout, err := c.storeFlags.open(ctx)
	if err != nil {
		return err
	}
	cat := archive.Catalog{Store: store, Layout: layout}
	if cat.Trust, err = c.trustFlags.trust(); err != nil {
		return err
	}
	if cat.Opener, err = c.identityFlags.opener(log); err != nil {
		return err
	}
	return serve.ServeArchive(ctx, serve.ArchiveOptions{
		Catalog: cat,
		Listen:  c.Listen,
		Joins:   func(ctx context.Context) ([]*serve.Join, error) { return serveJoins(ctx, cat) },
		Config: serve.Config{User: c.User, Password: password, ServerID: c.ServerID, Stop: stop, Skip: c.SkipGTID,
			Follow: c.Follow, Log: log},
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
		out = append(out, &serve.Join{Timeline: j.Timeline, Previous: j.Previous, Meet: j.Meet, Broken: j.Broken, Final: j.Final,
			PreviousEnd: replication.Position{File: j.PreviousEnd.File, Offset: j.PreviousEnd.Offset},
			At:          replication.Position{File: j.At.File, Offset: j.At.Offset}})
	}
	return out, nil
}
