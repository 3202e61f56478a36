package retention

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/lease"
	"github.com/rs/zerolog"
)

// Runner prunes a cluster on behalf of a long-running command (binarc
// stream or binarc snapshot with --keep). Its outcome goes to the log: a
// failed prune is logged and tried again at the next run, never fatal.
type Runner struct {
	Store  objstore.Store
	Layout archive.Layout
	Keep   time.Duration
	// Now, when set, stands in for the clock (tests only).
	Now     func() time.Time
	Command string
	Log     zerolog.Logger
}

// BesideArchiver runs a, and prunes beside it every interval under its
// lease: first once the archiver has found its durable position (so the
// prune does not race its start-up reads), then every interval. Pruning
// stops when the archiver does; Run's error is returned.
// Archiver is what BesideArchiver needs of binarc stream's archiver
// (stream.Archiver): retention does not import the write path.
type Archiver interface {
	Run(ctx context.Context) error
	// HeldLease is the single-writer lease while Run holds it, else nil.
	HeldLease() *lease.Lease
	// Resumed tells whether Run has found its durable position.
	Resumed() bool
}

func (r Runner) BesideArchiver(ctx context.Context, a Archiver, interval time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			lease := a.HeldLease()
			if lease != nil && a.Resumed() {
				r.Once(ctx, lease)
				if !sleep(ctx, interval) {
					return
				}
				continue
			}
			if !sleep(ctx, time.Second) {
				return
			}
		}
	}()
	err := a.Run(ctx)
	cancel()
	wg.Wait()
	return err
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Once prunes now; streamLease, when not nil, is the stream's lease the
// prune runs under.
func (r Runner) Once(ctx context.Context, streamLease *lease.Lease) {
	req := PruneRequest{Store: r.Store, Layout: r.Layout, Keep: r.Keep, Command: r.Command, StreamLease: streamLease}
	if r.Now != nil {
		req.Now = r.Now()
	}
	log := r.Log
	log = log.With().Str("cluster", req.Layout.Cluster).Str("keep", FormatKeep(req.Keep)).Logger()
	req.Log = log
	res, err := Prune(ctx, req)
	var held *lease.HeldError
	switch {
	case ctx.Err() != nil:
		return
	case errors.As(err, &held):
		log.Info().Str("holder", held.Holder.Command+" on "+held.Holder.Host).Msg("prune skipped: another prune of the cluster is running")
		return
	case errors.Is(err, ErrNotLeaseHolder):
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
		Int("files_deleted", res.FilesDeleted).Int("drill_records_deleted", len(res.Drills)).Int("objects_deleted", len(res.Objects.Deleted)).
		Msgf("pruned: %s, %s, %s", plural(len(res.SnapshotsDeleted), "snapshot"), plural(len(res.TimelinesDeleted), "timeline"), plural(res.FilesDeleted, "binlog file"))
}
