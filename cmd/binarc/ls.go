package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/retention"
	"github.com/binarc/binarc/snapshot"
	"github.com/rs/zerolog"
)

type lsCmd struct {
	Store              string `required:"" env:"BINARC_STORE" placeholder:"URL" help:"Where the archive is: s3://BUCKET/PREFIX, file:///PATH or a directory."`
	Cluster            string `env:"BINARC_CLUSTER" help:"Cluster to list (default: list the clusters in the store)."`
	Source             string `env:"BINARC_SOURCE" placeholder:"URL" help:"Optional primary (mysql://USER@HOST:PORT) to show how far behind it the archive is."`
	SourcePasswordFile string `env:"BINARC_SOURCE_PASSWORD_FILE" type:"path" placeholder:"FILE" help:"File holding the primary's password."`
	JSON               bool   `help:"Print JSON instead of a table."`
}

func (c *lsCmd) Run(ctx context.Context, log zerolog.Logger) error {
	store, err := objstore.Open(ctx, c.Store)
	if err != nil {
		return usageError{fmt.Errorf("--store: %w", err)}
	}
	if c.Cluster == "" {
		return listClusters(ctx, store, os.Stdout)
	}
	if err := archive.ValidateName("cluster", c.Cluster); err != nil {
		return usageError{fmt.Errorf("--cluster: %w", err)}
	}
	cat := archive.Catalog{Store: store, Layout: archive.Layout{Cluster: c.Cluster}}
	tls, err := cat.Describe(ctx)
	if err != nil {
		return err
	}
	snaps, err := listSnapshots(ctx, store, c.Cluster)
	if err != nil {
		return err
	}
	if len(tls) == 0 && len(snaps) == 0 {
		return fmt.Errorf("cluster %q has no archive in %s: check --store and --cluster (binarc ls --store %s lists clusters)", c.Cluster, store, c.Store)
	}
	var lag *archive.Lag
	if c.Source != "" && len(tls) > 0 {
		sf := sourceFlags{Source: c.Source, SourcePasswordFile: c.SourcePasswordFile, ServerID: replication.DefaultServerID}
		cfgs, err := sf.configs(log)
		if err != nil {
			return err
		}
		cfg := cfgs[0]
		for _, c := range cfgs { // several servers: the one archived now
			if ti := tls[len(tls)-1].Info; ti != nil && c.Addr() == ti.SourceAddr {
				cfg = c
			}
		}
		lag = archive.MeasureLag(ctx, cfg, tls[len(tls)-1])
	}
	joins := lsJoins(ctx, log, cat, tls)
	windows := retention.WindowsAcross(tls, snaps, joins)
	if c.JSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Cluster   string                   `json:"cluster"`
			Timelines []*archive.TimelineState `json:"timelines"`
			Lag       *archive.Lag             `json:"lag,omitempty"`
			Snapshots []snapshot.Entry         `json:"snapshots"`
			Windows   []retention.Window       `json:"restorable"`
			Joins     []*archive.Join          `json:"joins,omitempty"`
		}{c.Cluster, tls, lag, snaps, windows, joins})
	}
	printCatalog(os.Stdout, c.Cluster, tls, lag)
	printSnapshots(os.Stdout, snaps)
	printWindows(os.Stdout, tls, windows, joins)
	printUnprotected(ctx, os.Stdout, store, cat.Layout, tls)
	return nil
}

func listClusters(ctx context.Context, store objstore.Store, w io.Writer) error {
	entries, err := store.List(ctx, "")
	if err != nil {
		return err
	}
	n := 0
	for _, e := range entries {
		if e.Dir {
			fmt.Fprintln(w, strings.TrimSuffix(e.Key, "/"))
			n++
		}
	}
	if n == 0 {
		fmt.Fprintf(w, "no clusters in %s\n", store)
	}
	return nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// lsJoins works out the joins between timelines (recorded, or from the
// archived binlog); nil when there is one timeline or they cannot be read.
func lsJoins(ctx context.Context, log zerolog.Logger, cat archive.Catalog, tls []*archive.TimelineState) []*archive.Join {
	if len(tls) < 2 {
		return nil
	}
	joins, err := archive.Joins(ctx, cat, os.TempDir())
	if err != nil {
		log.Warn().Err(err).Msg("could not work out the joins between timelines; windows end at each timeline's end")
		return nil
	}
	return joins
}
