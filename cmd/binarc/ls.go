package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/restore"
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
			Joins     []*restore.Join          `json:"joins,omitempty"`
		}{c.Cluster, tls, lag, snaps, windows, joins})
	}
	printCatalog(os.Stdout, c.Cluster, tls, lag)
	printSnapshots(os.Stdout, snaps)
	printWindows(os.Stdout, tls, windows, joins)
	return nil
}

// printWindows says which times can be restored, and what breaks them.
func printWindows(w io.Writer, tls []*archive.TimelineState, windows []retention.Window, joins []*restore.Join) {
	fmt.Fprintln(w, "\nrestorable (any second in):")
	if len(windows) == 0 {
		fmt.Fprintln(w, "  nothing yet: a restore needs a complete snapshot whose coordinates are in the archive (binarc snapshot)")
	}
	for _, win := range windows {
		fmt.Fprintf(w, "  %s\n", win)
	}
	for i := 1; i < len(tls); i++ {
		if i < len(joins) && joins[i] != nil {
			fmt.Fprintf(w, "  %s\n", joins[i])
		} else if prev := tls[i].Info.Previous; prev != nil {
			fmt.Fprintf(w, "  break: timeline %s ends at %s:%d; timeline %s begins (%s)\n", prev.Timeline, prev.File, prev.Offset, tls[i].Name, tls[i].Info.Reason)
		}
	}
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

func printCatalog(w io.Writer, cluster string, tls []*archive.TimelineState, lag *archive.Lag) {
	fmt.Fprintf(w, "cluster %s\n", cluster)
	for i, ts := range tls {
		ended := i < len(tls)-1
		ti := ts.Info
		fmt.Fprintf(w, "\ntimeline %s  created %s  source %s server_id %d (%s)\n  reason: %s\n",
			ts.Name, fmtTime(ti.Created), ti.SourceAddr, ti.SourceServerID, ti.SourceVersion, ti.Reason)
		if ti.Previous != nil {
			fmt.Fprintf(w, "  follows timeline %s, which ends at %s:%d (joined by GTID: see below)\n", ti.Previous.Timeline, ti.Previous.File, ti.Previous.Offset)
		}
		if ti.StartGTIDState != nil {
			fmt.Fprintf(w, "  starts at GTID state %q\n", *ti.StartGTIDState)
		}
		if ti.Encryption != nil {
			fmt.Fprintf(w, "  encrypted (%s) to %s\n", ti.Encryption.Scheme, strings.Join(ti.Encryption.Recipients, ", "))
		}
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  FILE\tBYTES\tSEGMENTS\tFIRST EVENT\tLAST EVENT\tSTATE")
		for _, f := range ts.Files {
			state := "live"
			switch {
			case ended && !f.Complete && f.Gap == nil:
				state = "cut off: the timeline ended here"
			case f.Gap != nil:
				state = "GAP: " + f.Gap.Error()
			case f.Complete:
				state = "complete"
			}
			fmt.Fprintf(tw, "  %s\t[0, %d)\t%d\t%s\t%s\t%s\n", f.File, f.Size, len(f.Segments), fmtTime(f.FirstEventTime), fmtTime(f.LastEventTime), state)
		}
		tw.Flush()
	}
	if lag != nil {
		fmt.Fprintf(w, "\nprimary: %s\n", lag.Summary)
	}
}

// lsJoins works out the joins between timelines (recorded, or from the
// archived binlog); nil when there is one timeline or they cannot be read.
func lsJoins(ctx context.Context, log zerolog.Logger, cat archive.Catalog, tls []*archive.TimelineState) []*restore.Join {
	if len(tls) < 2 {
		return nil
	}
	joins, err := restore.Joins(ctx, cat, os.TempDir())
	if err != nil {
		log.Warn().Err(err).Msg("could not work out the joins between timelines; windows end at each timeline's end")
		return nil
	}
	return joins
}
