package main

import (
	"context"
	"fmt"
	"io"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
)

// printUnprotected lists, per timeline, the ranges the primary did not
// wait for binarc (--semi-sync fell back, or was off): the parts of the
// window that are not zero-loss protected. Nothing is printed for a
// timeline without any (never archived with --semi-sync, or never
// falling back). A record that cannot be read is reported, not fatal:
// ls still shows the rest.
func printUnprotected(ctx context.Context, w io.Writer, store objstore.Store, l archive.Layout, tls []*archive.TimelineState) {
	header := false
	for _, ts := range tls {
		us, err := archive.ReadUnprotected(ctx, store, l, ts.Name)
		if err == nil && len(us) == 0 {
			continue
		}
		if !header {
			fmt.Fprintln(w, "\nnot zero-loss protected (--semi-sync: the primary did not wait for binarc; outside these ranges it did):")
			header = true
		}
		if err != nil {
			fmt.Fprintf(w, "  timeline %s: cannot read the semi-sync fallback records: %v\n", ts.Name, err)
			continue
		}
		for _, u := range us {
			to := "open (binarc stopped or the primary still does not wait)"
			if !u.Open() {
				to = fmt.Sprintf("%s:%d at %s", u.ToFile, u.ToOffset, fmtTime(u.ToTime))
			}
			fmt.Fprintf(w, "  timeline %s: after %s:%d at %s until %s: %s\n", ts.Name, u.FromFile, u.FromOffset, fmtTime(u.FromTime), to, u.Reason)
		}
	}
}
