package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/binarc/binarc/internal/redact"

	"github.com/binarc/binarc/drill"
)

// printDrill prints a drill's report: the tables, the time per phase, and
// what was replayed.
func printDrill(w io.Writer, r *drill.Report) {
	fmt.Fprintf(w, "drill of %s: %s (%s)\n", r.Cluster, strings.ToUpper(r.Outcome()), r.Mode)
	if r.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", r.Error)
	}
	fmt.Fprintf(w, "  snapshot %s, restored to %s (%s), GTID %s\n", orDash(r.Snapshot), r.Target, orDash(r.StoppedAt), orDash(r.GTID))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nTABLE\tSTATUS\tROWS\tCHUNKS\tNOTE")
	for _, t := range r.Tables {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", t.Table, t.Status, t.Rows, t.Chunks, t.Note)
	}
	fmt.Fprintln(tw, "\nPHASE\tSECONDS")
	for _, p := range r.Phases {
		fmt.Fprintf(tw, "%s\t%.1f\n", p.Name, p.Seconds)
	}
	fmt.Fprintf(tw, "restore (RTO)\t%.1f\n", r.RestoreSeconds)
	if r.Mode == "replica" {
		fmt.Fprintf(tw, "replica paused\t%.1f\n", r.ReplicaPauseSeconds)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nreplayed %d transactions, %d binlog bytes (%d bytes fetched)\n", r.Transactions, r.ReplayedBytes, r.FetchedBytes)
	names := make([]string, 0, len(r.Tools))
	for k := range r.Tools {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(w, "tool %s: %s\n", k, r.Tools[k])
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintf(w, "took %s\n", r.Finished.Sub(r.Started).Round(time.Second))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printLastDrill is binarc ls's line about the newest drill (nil: none).
func printLastDrill(w io.Writer, r *drill.Report) {
	if r == nil {
		fmt.Fprintln(w, "\nlast drill: none (binarc drill proves the archive restores)")
		return
	}
	fmt.Fprintf(w, "\n%s\n", redact.Control(r.Summary())) // read from the bucket
}

// drillSummary is the newest drill's one-line summary for the status page
// ("" when none ran).
func drillSummary(r *drill.Report) string {
	if r == nil {
		return ""
	}
	return r.Summary()
}
