package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kong"
	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/snapshot"
	"github.com/rs/zerolog"
)

type pruneCmd struct {
	storeFlags
	Keep   keepFlag `env:"BINARC_KEEP" default:"30d" placeholder:"AGE" help:"Keep what restores any point of the last AGE: 30d, 2w, 36h, 1w3d."`
	DryRun bool     `help:"Print what would be deleted and what is kept, and why; change nothing."`
	Now    nowFlag  `hidden:"" env:"BINARC_NOW" placeholder:"TIME" help:"Tests only: take this time (RFC 3339) as now, to age real snapshots."`
}

// Help is shown under binarc prune --help.
func (c *pruneCmd) Help() string {
	return `Deletes what no restore to the last --keep needs. Kept: the base snapshot
(the newest complete one taken at or before now - keep whose coordinates the
archive holds), every snapshot after it, and all binlog from the base's
coordinates on, in its timeline and every later one. Deleted: older
snapshots, incomplete snapshots older than the window (or than a day) that no
running snapshot job may be writing, binlog files wholly before the base's
coordinates file, and whole timelines before the base's. When no snapshot
qualifies as the base, nothing is deleted and prune says why.

Safe beside a running binarc stream and binarc snapshot: it deletes only
behind every kept snapshot, where they never write. One prune of a cluster
runs at a time (the prune lease). See docs/RETENTION.md.

Exit status: 0 when everything planned was deleted (or nothing had to be),
2 for a bad command line, 1 when some delete failed (each is listed; what
was deleted leaves the archive consistent, and the next prune continues).`
}

func (c *pruneCmd) Run(ctx context.Context, log zerolog.Logger) error {
	store, layout, err := c.storeFlags.open(ctx)
	if err != nil {
		return err
	}
	res, err := snapshot.Prune(ctx, snapshot.PruneRequest{
		Store: store, Layout: layout, Keep: time.Duration(c.Keep), Now: time.Time(c.Now), DryRun: c.DryRun,
		Command: "binarc prune", Log: log.With().Str("cluster", c.Cluster).Logger(),
	})
	if res != nil {
		printPrune(os.Stdout, c.Cluster, res, c.DryRun)
	}
	return err
}

// keepFlag is a retention period: 30d, 2w, 36h.
type keepFlag time.Duration

// Decode implements kong.MapperValue.
func (k *keepFlag) Decode(ctx *kong.DecodeContext) error {
	var s string
	if err := ctx.Scan.PopValueInto("age", &s); err != nil {
		return err
	}
	d, err := snapshot.ParseKeep(s)
	if err != nil {
		return err
	}
	*k = keepFlag(d)
	return nil
}

// nowFlag is an RFC 3339 time standing in for the clock.
type nowFlag time.Time

// Decode implements kong.MapperValue.
func (n *nowFlag) Decode(ctx *kong.DecodeContext) error {
	var s string
	if err := ctx.Scan.PopValueInto("time", &s); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return fmt.Errorf("%q is not an RFC 3339 time (2026-11-25T03:15:00Z)", s)
	}
	*n = nowFlag(t)
	return nil
}

// streamRetention is --keep on binarc stream.
type streamRetention struct {
	Keep          keepFlag      `env:"BINARC_KEEP" placeholder:"AGE" help:"Also prune, as binarc prune --keep AGE does, every --prune-interval while streaming (under the stream's lease). Off by default."`
	PruneInterval time.Duration `env:"BINARC_PRUNE_INTERVAL" default:"1h" help:"How often to prune with --keep."`
	Now           nowFlag       `hidden:"" env:"BINARC_NOW" placeholder:"TIME" help:"Tests only: prune as if it were this time (RFC 3339)."`
}

// run runs the archiver and, with --keep, prunes beside it: first once the
// archiver has found its durable position (so the prune does not race its
// start-up reads), then every --prune-interval. Pruning stops when the
// archiver does. A failed prune is logged and tried again at the next
// interval.
func (r streamRetention) run(ctx context.Context, log zerolog.Logger, store objstore.Store, cluster string, a *archive.Archiver) error {
	if r.Keep == 0 {
		return a.Run(ctx)
	}
	if r.PruneInterval < time.Second {
		return usageError{fmt.Errorf("--prune-interval %s: use at least 1s", r.PruneInterval)}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for a.Status().Durable.Timeline == "" {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
		for {
			runPrune(ctx, log, snapshot.PruneRequest{
				Store: store, Layout: archive.Layout{Cluster: cluster}, Keep: time.Duration(r.Keep), Now: time.Time(r.Now),
				Command: "binarc stream", UnderStreamLease: true,
			})
			select {
			case <-ctx.Done():
				return
			case <-time.After(r.PruneInterval):
			}
		}
	}()
	err := a.Run(ctx)
	cancel()
	wg.Wait()
	return err
}

// snapshotRetention is --keep on binarc snapshot.
type snapshotRetention struct {
	Keep keepFlag `env:"BINARC_KEEP" placeholder:"AGE" help:"After each successful snapshot, prune as binarc prune --keep AGE does. Off by default."`
	Now  nowFlag  `hidden:"" env:"BINARC_NOW" placeholder:"TIME" help:"Tests only: prune as if it were this time (RFC 3339)."`
}

// prune runs after a successful snapshot, with --keep. A failed prune is
// logged; it does not fail the snapshot.
func (r snapshotRetention) prune(ctx context.Context, log zerolog.Logger, store objstore.Store, layout archive.Layout) {
	if r.Keep == 0 {
		return
	}
	runPrune(ctx, log, snapshot.PruneRequest{
		Store: store, Layout: layout, Keep: time.Duration(r.Keep), Now: time.Time(r.Now), Command: "binarc snapshot",
	})
}

// runPrune is a prune run by a long-running command: its outcome goes to
// the log.
func runPrune(ctx context.Context, log zerolog.Logger, req snapshot.PruneRequest) {
	log = log.With().Str("cluster", req.Layout.Cluster).Str("keep", snapshot.FormatKeep(req.Keep)).Logger()
	req.Log = log
	res, err := snapshot.Prune(ctx, req)
	var held *archive.LeaseHeldError
	switch {
	case ctx.Err() != nil:
		return
	case errors.As(err, &held):
		log.Info().Str("holder", held.Holder.Command+" on "+held.Holder.Host).Msg("prune skipped: another prune of the cluster is running")
		return
	case errors.Is(err, archive.ErrNotLeaseHolder):
		log.Warn().Err(err).Msg("prune skipped: binarc stream prunes only while it holds the stream's lease")
		return
	case res == nil:
		log.Error().Err(err).Msg("prune failed; it runs again later")
		return
	}
	p := res.Plan
	ev := log.Info()
	if err != nil {
		ev = log.Error().Err(err)
		for _, f := range res.Objects.Failed {
			log.Error().Str("key", f.Key).Err(f.Err).Msg("prune: delete failed")
		}
	}
	ev = ev.Time("window_start", p.Cutoff)
	if p.KeepAll != "" {
		ev.Str("reason", p.KeepAll).Msg("prune: nothing deleted: " + p.KeepAll)
		return
	}
	ev.Str("base", p.Base.ID).Str("keep_from", p.KeepFromTL+"/"+p.KeepFrom.File).
		Int("snapshots_deleted", len(res.SnapshotsDeleted)).Int("timelines_deleted", len(res.TimelinesDeleted)).
		Int("files_deleted", res.FilesDeleted).Int("objects_deleted", len(res.Objects.Deleted)).
		Msgf("pruned: %s, %s, %s", plural(len(res.SnapshotsDeleted), "snapshot"), plural(len(res.TimelinesDeleted), "timeline"), plural(res.FilesDeleted, "binlog file"))
}

// printPrune writes what a prune keeps and deletes, and why.
func printPrune(w io.Writer, cluster string, res *snapshot.PruneResult, dryRun bool) {
	p := res.Plan
	fmt.Fprintf(w, "cluster %s: keep %s; now %s, so the window starts %s\n", cluster, snapshot.FormatKeep(p.Keep),
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
		var kept []snapshot.FileDecision
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
		return
	}
	fmt.Fprintf(w, "\ndeleted %s, %s and %s (%s)\n", plural(len(res.SnapshotsDeleted), "snapshot"), plural(len(res.TimelinesDeleted), "timeline"),
		plural(res.FilesDeleted, "binlog file"), plural(len(res.Objects.Deleted), "object"))
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
func fileRange(fs []snapshot.FileDecision) string {
	switch len(fs) {
	case 0:
		return "no files"
	case 1:
		return "1 file: " + fs[0].File
	}
	return fmt.Sprintf("%d files: %s", len(fs), strings.Join([]string{fs[0].File, fs[len(fs)-1].File}, " … "))
}
