package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/binarc/binarc/restore"
)

// printChain shows the timelines a restore walks and the joins it
// crosses, with what was lost and what was errant at each.
func printChain(w io.Writer, p *restore.Plan) {
	if len(p.Steps) < 2 {
		return
	}
	fmt.Fprintln(w, "  chain:")
	for i, st := range p.Steps {
		fmt.Fprintf(w, "    timeline %s: %s to %s\n", st.Timeline, st.From, st.To)
		if i < len(p.Joins) {
			j := p.Joins[i]
			fmt.Fprintf(w, "    %s\n", j)
			if len(j.Lost) > 0 {
				fmt.Fprintf(w, "      lost at the switch (excluded): %s\n", strings.Join(j.Lost, ","))
			}
		}
	}
	for _, t := range p.Applied {
		fmt.Fprintf(w, "  already applied, left out: %s %s/%s:%d-%d\n", t.GTID, t.Timeline, t.File, t.Start, t.End)
	}
}

func printPlan(w io.Writer, rp *restore.RestorePlan) {
	p := rp.Binlog
	fmt.Fprintln(w, "restore plan")
	if m := rp.Snapshot; m != nil {
		fmt.Fprintf(w, "  snapshot:  %s (%s, taken %s, %d bytes stored) at %s\n", m.ID, m.Method, m.Started.Format(time.RFC3339), m.StoredSize, m.Coordinates)
	} else {
		fmt.Fprintln(w, "  snapshot:  none (--from: the target already stands there)")
	}
	fmt.Fprintf(w, "  timeline:  %s\n  from:      %s/%s\n  target:    %s\n  stop at:   %s/%s (replay ends before this position)\n",
		p.Timeline, p.FromTimeline, p.From, p.Target, p.Timeline, p.Stop)
	printChain(w, p)
	fmt.Fprintf(w, "  fetch:     %d files, %d bytes stored (checked)\n  replay:    %d bytes of binlog in %d ranges\n", len(p.Files), p.StoredBytes, p.ReplayBytes, len(p.Ranges))
	for _, r := range p.Ranges {
		fmt.Fprintf(w, "    %s/%s [%d, %d)\n", r.Timeline, r.File, r.Start, r.Stop)
	}
	for _, s := range p.Skipped {
		fmt.Fprintf(w, "  skipped:   %s %s %s:%d-%d %s\n", s.GTID, s.Time.Format(time.RFC3339), s.File, s.Start, s.End, shorten(s.Summary(), 120))
	}
	if p.Last != nil {
		fmt.Fprintf(w, "  last applied transaction: %s %s %s:%d-%d %s\n", p.Last.GTID, p.Last.Time.Format(time.RFC3339), p.Last.File, p.Last.Start, p.Last.End, shorten(p.Last.Summary(), 120))
	} else {
		fmt.Fprintln(w, "  no transaction to apply: the target already stands there")
	}
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
