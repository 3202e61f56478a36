package retention

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/binarc/binarc/archive/objstore"
)

// WriteReport writes what a prune keeps and deletes, and why.
func WriteReport(w io.Writer, cluster string, res *PruneResult, dryRun bool) {
	p := res.Plan
	fmt.Fprintf(w, "cluster %s: keep %s; now %s, so the window starts %s\n", cluster, FormatKeep(p.Keep),
		p.Now.Format(time.RFC3339), p.Cutoff.Format(time.RFC3339))
	if p.KeepAll != "" {
		fmt.Fprintf(w, "nothing to delete: %s\n", p.KeepAll)
		return
	}
	fmt.Fprintf(w, "base snapshot: %s (taken %s, at %s, timeline %s)\n", p.Base.ID, p.Base.Started.UTC().Format(time.RFC3339), p.Base.Coordinates, p.BaseTimeline)
	fmt.Fprintf(w, "binlog kept from: %s in timeline %s (%s)\n", p.KeepFrom.File, p.KeepFromTL, p.KeepFromWhy)
	if p.KeepBinlog != "" {
		fmt.Fprintf(w, "no binlog is deleted: %s\n", p.KeepBinlog)
	}
	fmt.Fprintln(w, "\nsnapshots:")
	if len(p.Snapshots) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, d := range p.Snapshots {
		id := d.Entry.ID
		if !d.Entry.Complete {
			id += " (incomplete)"
		}
		fmt.Fprintf(w, "  %-7s %s: %s\n", verb(d.Delete), id, d.Why)
	}
	fmt.Fprintln(w, "\nbinlog:")
	if len(p.Timelines) == 0 {
		fmt.Fprintln(w, "  none")
	}
	files, tls := 0, 0
	for _, tl := range p.Timelines {
		if tl.Whole {
			tls++
			files += len(tl.Files)
			fmt.Fprintf(w, "  delete  timeline %s, whole (%s): %s\n", tl.Name, fileRange(tl.Files), tl.Why)
			continue
		}
		var kept []FileDecision
		for _, f := range tl.Files {
			if f.Delete {
				files++
				fmt.Fprintf(w, "  delete  %s/%s: before %s\n", tl.Name, f.File, p.KeepFrom.File)
			} else {
				kept = append(kept, f)
			}
		}
		fmt.Fprintf(w, "  keep    timeline %s (%s): %s\n", tl.Name, fileRange(kept), tl.Why)
	}
	snaps := 0
	for _, d := range p.Snapshots {
		if d.Delete {
			snaps++
		}
	}
	if dryRun {
		fmt.Fprintf(w, "\ndry run: would delete %s, %s and %s; nothing was changed\n", plural(snaps, "snapshot"), plural(tls, "timeline"), plural(files, "binlog file"))
		if len(res.Drills) > 0 {
			fmt.Fprintf(w, "dry run: would delete %s older than the window (the newest stays)\n", plural(len(res.Drills), "drill record"))
		}
		return
	}
	fmt.Fprintf(w, "\ndeleted %s, %s and %s (%s)\n", plural(len(res.SnapshotsDeleted), "snapshot"), plural(len(res.TimelinesDeleted), "timeline"),
		plural(res.FilesDeleted, "binlog file"), plural(len(res.Objects.Deleted), "object"))
	if len(res.Drills) > 0 {
		fmt.Fprintf(w, "deleted %s older than the window (the newest stays)\n", plural(len(res.Drills), "drill record"))
	}
	for _, f := range res.Objects.Failed {
		state := "FAILED"
		if errors.Is(f.Err, objstore.ErrLocked) {
			state = "LOCKED"
		}
		fmt.Fprintf(w, "%s  %s\n", state, f.Error())
	}
	if res.Stopped != "" {
		fmt.Fprintf(w, "stopped: %s\n", res.Stopped)
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func verb(del bool) string {
	if del {
		return "delete"
	}
	return "keep"
}

// fileRange is "3 files: mysql-bin.000004 … mysql-bin.000006".
func fileRange(fs []FileDecision) string {
	switch len(fs) {
	case 0:
		return "no files"
	case 1:
		return "1 file: " + fs[0].File
	}
	return fmt.Sprintf("%d files: %s", len(fs), strings.Join([]string{fs[0].File, fs[len(fs)-1].File}, " … "))
}
