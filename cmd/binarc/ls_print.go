package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/retention"
)

// printWindows says which times can be restored, and what breaks them.
func printWindows(w io.Writer, tls []*archive.TimelineState, windows []retention.Window, joins []*archive.Join) {
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

func printCatalog(w io.Writer, cluster string, tls []*archive.TimelineState, lag *retention.Lag) {
	fmt.Fprintf(w, "cluster %s\n", cluster)
	for i, ts := range tls {
		ended := i < len(tls)-1
		ti := ts.Info
		fmt.Fprintf(w, "\ntimeline %s  created %s  source %s server_id %d (%s)\n  reason: %s\n",
			ts.Name, fmtTime(ti.Created), ti.SourceAddr, ti.SourceServerID, ti.SourceVersion, ti.Reason)
		if ti.Previous != nil {
			if ti.Previous.File == "" {
				fmt.Fprintf(w, "  follows timeline %s, which archived no binlog (joined by GTID: see below)\n", ti.Previous.Timeline)
			} else {
				fmt.Fprintf(w, "  follows timeline %s, which ends at %s:%d (joined by GTID: see below)\n", ti.Previous.Timeline, ti.Previous.File, ti.Previous.Offset)
			}
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
