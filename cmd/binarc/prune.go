package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/alecthomas/kong"
	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/retention"
	"github.com/binarc/binarc/stream"
	"github.com/rs/zerolog"
)

type pruneCmd struct {
	storeFlags
	Keep   keepFlag `env:"BINARC_KEEP" default:"30d" placeholder:"AGE" help:"Keep what restores any point of the last AGE: 30d, 2w, 36h, 1w3d."`
	DryRun bool     `help:"Print what would be deleted and what is kept, and why; change nothing."`
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
	res, err := retention.Prune(ctx, retention.PruneRequest{
		Store: store, Layout: layout, Keep: time.Duration(c.Keep), Now: clockNow(), DryRun: c.DryRun,
		Command: "binarc prune", Log: log.With().Str("cluster", c.Cluster).Logger(),
	})
	if res != nil {
		retention.WriteReport(os.Stdout, c.Cluster, res, c.DryRun)
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
	d, err := retention.ParseKeep(s)
	if err != nil {
		return err
	}
	*k = keepFlag(d)
	return nil
}

// streamRetention is --keep on binarc stream.
type streamRetention struct {
	Keep          keepFlag      `env:"BINARC_KEEP" placeholder:"AGE" help:"Also prune, as binarc prune --keep AGE does, every --prune-interval while streaming (under the stream's lease). Off by default."`
	PruneInterval time.Duration `env:"BINARC_PRUNE_INTERVAL" default:"1h" help:"How often to prune with --keep."`
}

// run runs the archiver and, with --keep, prunes beside it.
func (r streamRetention) run(ctx context.Context, log zerolog.Logger, store objstore.Store, cluster string, a *stream.Archiver) error {
	if r.Keep == 0 {
		return a.Run(ctx)
	}
	if r.PruneInterval < time.Second {
		return usageError{fmt.Errorf("--prune-interval %s: use at least 1s", r.PruneInterval)}
	}
	runner := retention.Runner{Store: store, Layout: archive.Layout{Cluster: cluster}, Keep: time.Duration(r.Keep), Now: testNow, Command: "binarc stream", Log: log}
	return runner.BesideArchiver(ctx, a, r.PruneInterval)
}

// snapshotRetention is --keep on binarc snapshot.
type snapshotRetention struct {
	Keep keepFlag `env:"BINARC_KEEP" placeholder:"AGE" help:"After each successful snapshot, prune as binarc prune --keep AGE does. Off by default."`
}

// prune runs after a successful snapshot, with --keep. A failed prune is
// logged; it does not fail the snapshot.
func (r snapshotRetention) prune(ctx context.Context, log zerolog.Logger, store objstore.Store, layout archive.Layout) {
	if r.Keep == 0 {
		return
	}
	retention.Runner{Store: store, Layout: layout, Keep: time.Duration(r.Keep), Now: testNow, Command: "binarc snapshot", Log: log}.Once(ctx, nil)
}
