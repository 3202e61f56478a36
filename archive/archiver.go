package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/replication"
	"github.com/rs/zerolog"
)

// ArchiverConfig configures binarc stream.
type ArchiverConfig struct {
	Cluster string
	Source  replication.Config
	// StartAt chooses where a new archive begins: "oldest" (default: the
	// oldest binlog the primary still has), "current" (the file it writes
	// now), or a binlog file name. Whole files are archived from offset 0,
	// so every archived file is readable on its own.
	StartAt   string
	Segmenter SegmenterConfig
	Uploader  UploaderConfig
	// LeaseTTL is how long the single-writer lease lasts without renewal.
	LeaseTTL time.Duration
	// ShutdownTimeout bounds the final flush on a clean stop.
	ShutdownTimeout time.Duration
	// MaxBackoff caps retries of the primary and the store.
	MaxBackoff time.Duration
	// Compact turns each complete file's segments into one object.
	Compact bool
	// SemiSync makes binarc a semi-synchronous replica (--semi-sync).
	SemiSync SemiSyncConfig
	Log      zerolog.Logger
	Observer Observer
}

// Archiver is binarc stream: it keeps one cluster's binlog archived.
type Archiver struct {
	cfg    ArchiverConfig
	store  objstore.Store
	layout Layout
	cat    Catalog
	log    zerolog.Logger

	lease    *Lease
	mu       sync.Mutex
	up       *Uploader
	seg      *Segmenter
	primary  atomic.Pointer[replication.Position] // last position the primary reported
	lastEvt  atomic.Int64                         // unix time of the last event received
	received atomic.Uint64                        // bytes received
	events   atomic.Uint64                        // events received
	// connected, disconnects and leaseHeld feed Status (metrics, /readyz).
	connected   atomic.Bool
	disconnects atomic.Uint64
	leaseHeld   atomic.Bool
	semi        semiSyncCounters
}

// NewArchiver checks the configuration; Run does the work.
func NewArchiver(cfg ArchiverConfig, store objstore.Store) (*Archiver, error) {
	if err := ValidateName("cluster", cfg.Cluster); err != nil {
		return nil, fmt.Errorf("--cluster: %w", err)
	}
	if cfg.Segmenter.FlushInterval <= 0 || cfg.Segmenter.FlushInterval > time.Hour {
		return nil, fmt.Errorf("--flush-interval %s: must be between 1ms and 1h", cfg.Segmenter.FlushInterval)
	}
	if cfg.Segmenter.SegmentSize < 4096 {
		return nil, fmt.Errorf("--segment-size %d: must be at least 4 KiB", cfg.Segmenter.SegmentSize)
	}
	if cfg.Uploader.MaxBufferedBytes <= 0 {
		return nil, fmt.Errorf("--max-buffer must be positive")
	}
	if cfg.LeaseTTL <= 0 {
		// Renewed only while writing (every third of it), so an idle
		// archiver makes no request; a writer that vanished without
		// releasing it, on another host, blocks a new one this long.
		cfg.LeaseTTL = 5 * time.Minute
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if err := cfg.SemiSync.validate(); err != nil {
		return nil, err
	}
	if cfg.StartAt == "" {
		cfg.StartAt = "oldest"
	}
	layout := Layout{Cluster: cfg.Cluster}
	return &Archiver{cfg: cfg, store: store, layout: layout, cat: Catalog{Store: store, Layout: layout}, log: cfg.Log}, nil
}

// Status is a snapshot of the archiver's progress.
type Status struct {
	Durable       Durable
	Primary       *replication.Position // last position the primary reported (heartbeats)
	LastEventTime time.Time
	BytesReceived uint64

	EventsReceived    uint64
	Connected         bool      // streaming from the primary now
	Disconnects       uint64    // times the connection to the primary was lost
	LeaseHeld         bool      // the single-writer lease is ours
	StoreFailingSince time.Time // zero while the store works
}

// Status reports progress; safe to call at any time.
func (a *Archiver) Status() Status {
	a.mu.Lock()
	up := a.up
	a.mu.Unlock()
	var st Status
	if up != nil {
		st.Durable = up.Durable()
		st.StoreFailingSince = up.FailingSince()
	}
	st.Primary = a.primary.Load()
	if t := a.lastEvt.Load(); t > 0 {
		st.LastEventTime = time.Unix(t, 0).UTC()
	}
	st.BytesReceived = a.received.Load()
	st.EventsReceived = a.events.Load()
	st.Connected, st.Disconnects, st.LeaseHeld = a.connected.Load(), a.disconnects.Load(), a.leaseHeld.Load()
	return st
}

// Run archives until ctx is cancelled (a clean stop: everything received
// is flushed and stored, then it returns nil) or a problem the operator
// must fix (returned). A primary or store that is down is retried.
func (a *Archiver) Run(ctx context.Context) error {
	if err := a.startSemiSync(ctx); err != nil {
		return err
	}
	info, err := untilUp(a, ctx, "primary", func() (replication.ServerInfo, error) { return a.cfg.Source.Preflight(ctx) })
	if err != nil {
		return err
	}
	a.log.Info().Str("source", a.cfg.Source.String()).Str("version", info.Version).Str("flavor", string(info.Flavor)).
		Uint32("server_id", info.ServerID).Str("binlog_format", info.BinlogFormat).Str("binlog_checksum", info.BinlogChecksum).
		Msg("primary checked")
	if info.BinlogFormat != "ROW" {
		a.log.Warn().Str("binlog_format", info.BinlogFormat).Msg("binlog_format is not ROW: the archive is exact, but replaying statement-based events is only as deterministic as the statements")
	}
	lease, err := untilUp(a, ctx, "object store", func() (*Lease, error) {
		return AcquireLease(ctx, a.store, a.layout, "binarc stream", a.cfg.LeaseTTL)
	})
	if err != nil {
		return err
	}
	a.lease = lease
	a.leaseHeld.Store(true)
	defer func() {
		a.leaseHeld.Store(false)
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := lease.Release(rctx); err != nil {
			a.log.Warn().Err(err).Msg("could not release the lease; it expires by itself")
		}
	}()
	if err := a.checkLayout(ctx); err != nil {
		return err
	}
	for {
		rp, err := untilUp(a, ctx, "object store", func() (*ResumePoint, error) { return a.resume(ctx, info) })
		if err != nil {
			return err
		}
		err = a.session(ctx, info, lease, rp)
		var be *replication.BreakError
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &be):
			end := a.Status().Durable
			a.log.Error().Err(be).Str("timeline", rp.Timeline).Msg("ARCHIVE BREAK: the stream cannot continue contiguously; starting a new timeline. Restores cannot cross from the old timeline to the new one")
			if _, err := a.startTimeline(ctx, info, be.Reason, &TimelineEnd{Timeline: rp.Timeline, File: end.Position.File, Offset: end.Position.Offset}); err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// untilUp retries fn while it fails with something other than a problem
// the operator must fix, logging the outage once.
func untilUp[T any](a *Archiver, ctx context.Context, what string, fn func() (T, error)) (T, error) {
	backoff := 250 * time.Millisecond
	var since time.Time
	for {
		v, err := fn()
		if err == nil {
			if !since.IsZero() {
				a.log.Info().Dur("outage", time.Since(since).Round(time.Millisecond)).Msgf("%s is back", what)
			}
			return v, nil
		}
		var lh *LeaseHeldError
		if replication.IsConfigError(err) || errors.As(err, &lh) || errors.Is(err, errConflict) || errors.Is(err, errFatal) || errors.Is(err, ErrLeaseLost) || ctx.Err() != nil {
			return v, err
		}
		if since.IsZero() {
			since = time.Now()
			a.log.Warn().Err(err).Msgf("%s unavailable; retrying with backoff (logged once per outage)", what)
		}
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, a.cfg.MaxBackoff)
	}
}

// errFatal marks archive states no retry can fix.
var errFatal = errors.New("archive needs attention")

type layoutInfo struct {
	Version int `json:"version"`
}

// checkLayout records the layout version on a new archive and refuses an
// archive written by a newer binarc.
func (a *Archiver) checkLayout(ctx context.Context) error {
	data := marshalJSON(layoutInfo{Version: LayoutVersion})
	_, err := a.store.Put(ctx, a.layout.LayoutKey(), data, objstore.PutOptions{IfAbsent: true})
	if err == nil {
		return nil
	}
	if !errors.Is(err, objstore.ErrExist) {
		return fmt.Errorf("write %s: %w", a.layout.LayoutKey(), err)
	}
	got, _, err := objstore.ReadAll(ctx, a.store, a.layout.LayoutKey())
	if err != nil {
		return fmt.Errorf("read %s: %w", a.layout.LayoutKey(), err)
	}
	var li layoutInfo
	if err := json.Unmarshal(got, &li); err != nil || li.Version == 0 {
		return fmt.Errorf("%w: %s is not a binarc layout file; is --store pointing at something else?", errFatal, a.layout.LayoutKey())
	}
	if li.Version > LayoutVersion {
		return fmt.Errorf("%w: the archive of cluster %q has layout version %d, this binarc writes %d: upgrade binarc", errFatal, a.cfg.Cluster, li.Version, LayoutVersion)
	}
	return nil
}
