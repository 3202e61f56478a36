package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/snapshot"
)

// listSnapshots reads the cluster's snapshots for binarc ls.
func listSnapshots(ctx context.Context, store objstore.Store, cluster string, trust *archive.Trust) ([]snapshot.Entry, error) {
	return snapshot.List(ctx, store, archive.Layout{Cluster: cluster}, trust)
}

// printSnapshots adds the snapshots to binarc ls's table output.
func printSnapshots(w io.Writer, snaps []snapshot.Entry) {
	if len(snaps) == 0 {
		fmt.Fprintf(w, "\nno snapshots\n")
		return
	}
	fmt.Fprintf(w, "\nsnapshots\n")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ID\tMETHOD\tSTARTED\tTOOK\tSTORED\tRAW\tCOORDINATES\tSTATE")
	for _, s := range snaps {
		if !s.Complete {
			state := "incomplete (no manifest: failed or still running)"
			if s.Problem != "" {
				state = "incomplete: " + s.Problem
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t-\t%s\t-\t-\t%s\n", s.ID, s.Method, fmtTime(s.Time), humanBytes(s.Objects), state)
			continue
		}
		m := s.Manifest
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\tcomplete\n", s.ID, m.Method, fmtTime(m.Started),
			m.Finished.Sub(m.Started).Round(time.Second), humanBytes(m.StoredSize), humanBytes(m.RawSize), m.Coordinates)
	}
	tw.Flush()
}

// humanBytes is n in B, KiB, MiB or GiB with one decimal.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, suffix := float64(n), ""
	for _, s := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v /= unit
		suffix = s
		if v < unit {
			break
		}
	}
	return fmt.Sprintf("%.1f %s", v, suffix)
}
