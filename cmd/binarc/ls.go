package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/drill"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/retention"
	"github.com/binarc/binarc/statuspage"
	"github.com/rs/zerolog"
)

type lsCmd struct {
	storeURLFlags
	Cluster string `env:"BINARC_CLUSTER" help:"Cluster to list (default: list the clusters in the store)."`
	// sourceFlags: an optional primary (--source, its password and TLS)
	// to show how far behind it the archive is.
	sourceFlags
	JSON bool   `help:"Print JSON instead of a table."`
	HTML string `placeholder:"FILE" help:"Also write the status page (one self-contained HTML file: the restorable window drawn across timelines and joins, snapshots, gaps, lag) to FILE."`
	trustFlags
}

func (c *lsCmd) Run(ctx context.Context, log zerolog.Logger) error {
	if c.Cluster == "" {
		store, err := c.storeURLFlags.open(ctx)
		if err != nil {
			return err
		}
		clusters, err := archive.Clusters(ctx, store)
		if err != nil {
			return err
		}
		printClusters(os.Stdout, clusters, store)
		return nil
	}
	cat, err := storeFlags{c.storeURLFlags, c.Cluster}.catalog(ctx)
	if err != nil {
		return err
	}
	if cat.Trust, err = c.trustFlags.trust(); err != nil {
		return err
	}
	var sources []replication.Config
	if c.Source != "" {
		if sources, err = c.sourceFlags.configs(log); err != nil {
			return err
		}
	}
	st, err := retention.ReadStatus(ctx, retention.StatusRequest{Catalog: cat, Sources: sources})
	if err != nil {
		return err
	}
	if st.JoinsProblem != nil {
		log.Warn().Err(st.JoinsProblem).Msg("could not work out the joins between timelines; windows end at each timeline's end")
	}
	// The newest drill, read once for the page and the table.
	var lastDrill *drill.Report
	var drillErr error
	if lastDrill, drillErr = drill.Last(ctx, cat.Store, cat.Layout); drillErr != nil {
		log.Warn().Err(drillErr).Msg("could not read the last drill record")
	}
	if c.HTML != "" {
		if err := writeStatusPage(c.HTML, st, drillSummary(lastDrill)); err != nil {
			return err
		}
		log.Info().Str("file", c.HTML).Msg("status page written")
	}
	if c.JSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(lsJSON{Status: st, Unprotected: readUnprotected(ctx, log, cat, st.Timelines), LastDrill: lastDrill})
	}
	printCatalog(os.Stdout, st.Cluster, st.Timelines, st.Lag)
	printSnapshots(os.Stdout, st.Snapshots)
	printWindows(os.Stdout, st.Timelines, st.Windows, st.Joins)
	printUnprotected(ctx, os.Stdout, cat.Store, cat.Layout, st.Timelines)
	if drillErr == nil {
		printLastDrill(os.Stdout, lastDrill)
	}
	return nil
}

// lsJSON is binarc ls --json: the status, and what the table prints from
// other records (semi-sync fallback ranges by timeline, the newest drill).
type lsJSON struct {
	*retention.Status
	Unprotected map[string][]*archive.Unprotected `json:"semi_sync_unprotected,omitempty"`
	LastDrill   *drill.Report                     `json:"last_drill,omitempty"`
}

// readUnprotected reads each timeline's semi-sync fallback records; a
// timeline whose records cannot be read is logged and left out.
func readUnprotected(ctx context.Context, log zerolog.Logger, cat archive.Catalog, tls []*archive.TimelineState) map[string][]*archive.Unprotected {
	out := map[string][]*archive.Unprotected{}
	for _, ts := range tls {
		us, err := archive.ReadUnprotected(ctx, cat.Store, cat.Layout, ts.Name)
		if err != nil {
			log.Warn().Err(err).Str("timeline", ts.Name).Msg("could not read the semi-sync fallback records")
			continue
		}
		if len(us) > 0 {
			out[ts.Name] = us
		}
	}
	return out
}

func printClusters(w io.Writer, clusters []string, store fmt.Stringer) {
	for _, c := range clusters {
		fmt.Fprintln(w, c)
	}
	if len(clusters) == 0 {
		fmt.Fprintf(w, "no clusters in %s\n", store)
	}
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// writeStatusPage renders the status page into file, atomically (a page
// open in a browser or served by another process never reads half of it).
func writeStatusPage(file string, st *retention.Status, lastDrill string) error {
	tmp := file + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("--html: %w", err)
	}
	err = statuspage.Render(f, statuspage.Page{Status: st, Now: time.Now(), LastDrill: lastDrill})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("--html %s: %w", file, err)
	}
	return nil
}
