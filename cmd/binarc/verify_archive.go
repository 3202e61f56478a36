package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/verify"
)

// archiveVerifyFlags tune the whole-archive check.
type archiveVerifyFlags struct {
	Settle time.Duration `default:"5s" help:"When the newest timeline shows a segment stored past a missing one (an upload in flight, while binarc stream runs), wait this long and look again before calling it a problem."`
	JSON   bool          `help:"Print the whole-archive report as JSON."`
}

// verifyArchive re-reads the whole archive of the cluster, printing each
// problem and note as it is found, then what was checked. Any problem is
// an error (exit 1).
func (c *verifyCmd) verifyArchive(ctx context.Context, cat archive.Catalog) error {
	out := os.Stdout
	opts := verify.VerifyOptions{
		Settle:       c.Settle,
		NoteUnsigned: true,
	}
	if !c.JSON {
		fmt.Fprintf(out, "verifying cluster %s in %s: layout, timelines, every segment and event, snapshots\n", cat.Layout.Cluster, cat.Store)
		opts.Report = func(f verify.Finding) {
			label := "note   "
			if f.Severity == verify.SeverityProblem {
				label = "PROBLEM"
			}
			fmt.Fprintf(out, "%s %s\n", label, f)
		}
	}
	rep, err := verify.Verify(ctx, cat, opts)
	if err != nil {
		return usageIfRequest(err)
	}
	if c.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printVerifySummary(out, rep)
	}
	if !rep.OK() {
		return fmt.Errorf("cluster %s failed verification: %s (listed above with their coordinates)", cat.Layout.Cluster, countNoun(rep.Problems, "problem"))
	}
	return nil
}

func printVerifySummary(w io.Writer, rep *verify.VerifyReport) {
	n := rep.Counts
	fmt.Fprintf(w, "checked: layout version %d, %s, %s, %s and %s (%s stored, %s of binlog), %s, %s (%s)\n",
		rep.LayoutVersion, countNoun(n.Timelines, "timeline"), countNoun(n.Files, "binlog file"),
		countNoun(n.Segments, "segment"), countNoun(n.Compacted, "compacted file"),
		humanBytes(n.StoredBytes), humanBytes(int64(n.BinlogBytes)), countNoun(int(n.Events), "event"),
		countNoun(n.Snapshots, "snapshot"), humanBytes(n.SnapshotBytes))
	verdict := "the archive is sound"
	if !rep.OK() {
		verdict = "the archive is NOT sound"
	}
	fmt.Fprintf(w, "result: %s, %s: %s\n", countNoun(rep.Problems, "problem"), countNoun(rep.Notes, "note"), verdict)
}

// countNoun is "1 file", "2 files".
func countNoun(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
