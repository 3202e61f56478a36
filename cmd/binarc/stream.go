package main

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/retention"
	"github.com/binarc/binarc/statuspage"
	"github.com/binarc/binarc/stream"
	"github.com/rs/zerolog"
)

type streamCmd struct {
	sourceFlags
	storeFlags
	metricsFlags
	FlushInterval     time.Duration `env:"BINARC_FLUSH_INTERVAL" default:"1s" help:"Seal and upload a segment this long after its first event: the loss window."`
	SegmentSize       byteSize      `env:"BINARC_SEGMENT_SIZE" default:"16MiB" help:"Seal a segment at this size (a larger single event makes a larger segment)."`
	StartAt           string        `env:"BINARC_START_AT" default:"oldest" help:"Where a new archive starts: oldest (every binlog the primary still has), current, or a binlog file name."`
	UploadConcurrency int           `env:"BINARC_UPLOAD_CONCURRENCY" default:"4" help:"Segments compressed and uploaded at once."`
	MaxBuffer         byteSize      `env:"BINARC_MAX_BUFFER" default:"32MiB" help:"Compressed segments held in memory while the store is slow, the one being filled included; past it, binarc stops reading from the primary (which keeps its binlog)."`
	Heartbeat         time.Duration `env:"BINARC_HEARTBEAT" default:"1s" help:"Ask the primary for a heartbeat after this much idle time, to tell an idle primary from a dead link."`
	ReadTimeout       time.Duration `env:"BINARC_READ_TIMEOUT" default:"15s" help:"Reconnect when nothing, not even a heartbeat, arrived for this long (a network partition)."`
	Compact           bool          `env:"BINARC_COMPACT" default:"true" negatable:"" help:"Once a binlog file is complete, make its segments one object (--no-compact to keep segments)."`
	encryptFlags
	signFlags
	storeWriteFlags

	semiSyncFlags
	streamRetention
}

func (c *streamCmd) Run(ctx context.Context, log zerolog.Logger) error {
	setStreamMemoryLimit()
	srcs, err := c.sourceFlags.configs(log)
	if err != nil {
		return err
	}
	metrics := stream.NewMetrics()
	semiMetrics := stream.NewSemiSyncMetrics(metrics)
	semiSync, err := c.semiSyncFlags.config(semiMetrics.Acked)
	if err != nil {
		return err
	}
	var opened atomic.Value // the store, once open: the status watcher reads it
	watcher := statusWatcher(log, c.Cluster, srcs, func() objstore.Store { s, _ := opened.Load().(objstore.Store); return s })
	stopMetrics, err := c.metricsFlags.serveWithPage(log, c.Cluster, metrics.Ready, watcher, metrics, semiMetrics, watcher)
	if err != nil {
		return err
	}
	defer stopMetrics()
	store, err := c.storeFlags.openRetrying(ctx, log)
	if err != nil {
		return err
	}
	opened.Store(store)
	if c.MetricsAddr != "" {
		wctx, stopWatcher := context.WithCancel(ctx)
		defer stopWatcher()
		go watcher.Run(wctx)
	}
	if c.Heartbeat <= 0 || c.ReadTimeout < 2*c.Heartbeat {
		return usageError{errorf("--read-timeout %s must be at least twice --heartbeat %s (and both positive)", c.ReadTimeout, c.Heartbeat)}
	}
	for i := range srcs {
		srcs[i].HeartbeatPeriod, srcs[i].ReadTimeout = c.Heartbeat, c.ReadTimeout
	}
	if c.UploadConcurrency < 1 || c.UploadConcurrency > 64 {
		return usageError{errorf("--upload-concurrency %d: use 1 to 64", c.UploadConcurrency)}
	}
	sealer, signer, err := writingKeys(c.encryptFlags, c.signFlags, log)
	if err != nil {
		return err
	}
	if sealer != nil && semiSync.Enabled && semiSync.Durability == stream.DurabilityLocal {
		// The spool keeps segments as the segmenter cut them and replays
		// them into the store after a crash: they would arrive unsealed.
		return usageError{errorf("--semi-sync-durability local does not work with --encrypt-to yet (the spool would replay unencrypted segments): use --semi-sync-durability store")}
	}
	if err := c.storeWriteFlags.apply(ctx, store, archive.Layout{Cluster: c.Cluster}); err != nil {
		return err
	}
	if c.ObjectLockDays > 0 && c.Compact {
		log.Info().Int("object_lock_days", c.ObjectLockDays).Msg("Object Lock: not compacting (a complete file's segments cannot be deleted while locked)")
		c.Compact = false
	}
	a, err := stream.NewArchiver(stream.ArchiverConfig{
		Cluster:     c.Cluster,
		Sources:     srcs,
		StartAt:     c.StartAt,
		Segmenter:   stream.SegmenterConfig{FlushInterval: c.FlushInterval, SegmentSize: int(c.SegmentSize)},
		Uploader:    stream.UploaderConfig{Concurrency: c.UploadConcurrency, MaxBufferedBytes: int64(c.MaxBuffer)},
		Log:         log.With().Str("cluster", c.Cluster).Logger(),
		Observer:    metrics,
		Compact:     c.Compact,
		Encrypt:     sealer,
		Sign:        signer,
		RecordJoins: true,
		SemiSync:    semiSync,
	}, store)
	if err != nil {
		return usageError{err}
	}
	metrics.SetArchiver(a)
	log.Info().Str("store", store.String()).Str("cluster", c.Cluster).Dur("flush_interval", c.FlushInterval).
		Int64("segment_size", int64(c.SegmentSize)).Msg("binarc stream starting")
	return c.streamRetention.run(ctx, log, store, c.Cluster, a)
}

// statusWatcher reads the cluster's status every ten minutes (the page at
// / on --metrics-addr, and the restorable window's metrics), once the
// store is open.
func statusWatcher(log zerolog.Logger, cluster string, srcs []replication.Config, store func() objstore.Store) *statuspage.Watcher {
	return statuspage.NewWatcher(func(ctx context.Context) (*retention.Status, error) {
		s := store()
		if s == nil {
			return nil, errors.New("the store is not open yet")
		}
		st, err := retention.ReadStatus(ctx, retention.StatusRequest{Catalog: archive.Catalog{Store: s, Layout: archive.Layout{Cluster: cluster}}, Sources: srcs})
		if err != nil {
			log.Warn().Err(err).Msg("status page: cannot read the archive's status; the page and the window metrics keep the last one")
		}
		return st, err
	}, 10*time.Minute)
}
