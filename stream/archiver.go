package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/crypt"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/archive/sign"
	"github.com/binarc/binarc/internal/retry"
	"github.com/binarc/binarc/lease"
	"github.com/binarc/binarc/replication"
	"github.com/rs/zerolog"
)

// ArchiverConfig configures binarc stream.
type ArchiverConfig struct {
	Cluster string
	Source  replication.Config
	// Sources are all the servers that may be the primary (Source is the
	// first). With more than one, binarc archives the writable one and
	// follows a failover or a flip by itself.
	Sources []replication.Config
	// SwitchCheck is how often, with several sources, binarc checks that
	// the archived one is still the writable one (default 2s).
	SwitchCheck time.Duration
	// RecordJoins, when set, records the joins between timelines that
	// are final (archive.RecordJoins); it is run after a new timeline
	// starts until none is pending.
	RecordJoins bool
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
	// Encrypt, if set, encrypts every segment to its recipients
	// (--encrypt-to). A timeline is encrypted to one set of recipients
	// from its start: other recipients start a new timeline.
	Encrypt *crypt.Sealer
	// Sign, if set, signs every object the archiver writes (--sign-key):
	// segments, indexes, timeline and join records, compacted files,
	// layout.json.
	Sign *sign.Signer
	// SemiSync makes binarc a semi-synchronous replica (--semi-sync).
	SemiSync SemiSyncConfig
	Log      zerolog.Logger
	Observer Observer
}

// Archiver is binarc stream: it keeps one cluster's binlog archived.
type Archiver struct {
	cfg    ArchiverConfig
	store  objstore.Store
	layout archive.Layout
	cat    archive.Catalog
	log    zerolog.Logger

	lease    *lease.Lease
	src      replication.Config // the server archived now
	joinKick chan struct{}
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
	heldLease   atomic.Pointer[lease.Lease]
	semi        semiSyncCounters
}

// NewArchiver checks the configuration; Run does the work.
func NewArchiver(cfg ArchiverConfig, store objstore.Store) (*Archiver, error) {
	if err := archive.ValidateName("cluster", cfg.Cluster); err != nil {
		return nil, fmt.Errorf("--cluster: %w", err)
	}
	if cfg.Segmenter.FlushInterval <= 0 || cfg.Segmenter.FlushInterval > time.Hour {
		return nil, fmt.Errorf("--flush-interval %s: must be between 1ms and 1h", cfg.Segmenter.FlushInterval)
	}
	if cfg.Segmenter.SegmentSize < 4096 || cfg.Segmenter.SegmentSize > archive.MaxSegmentSize-replication.MaxEventSize {
		return nil, fmt.Errorf("--segment-size %d: must be between 4 KiB and 1 GiB", cfg.Segmenter.SegmentSize)
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
	if len(cfg.Sources) == 0 {
		cfg.Sources = []replication.Config{cfg.Source}
	}
	cfg.Source = cfg.Sources[0]
	if cfg.SwitchCheck <= 0 {
		cfg.SwitchCheck = 2 * time.Second
	}
	layout := archive.Layout{Cluster: cfg.Cluster}
	return &Archiver{cfg: cfg, store: store, layout: layout, cat: archive.Catalog{Store: store, Layout: layout, Signer: cfg.Sign}, log: cfg.Log, src: cfg.Source, joinKick: make(chan struct{}, 1)}, nil
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

// HeldLease is the single-writer lease while Run holds it, else nil. Jobs
// that write beside the archiver under its lease (a prune by binarc stream)
// take it from here.
func (a *Archiver) HeldLease() *lease.Lease { return a.heldLease.Load() }

// Run archives until ctx is cancelled (a clean stop: everything received
// is flushed and stored, then it returns nil) or a problem the operator
// must fix (returned). A primary or store that is down is retried.
func (a *Archiver) Run(ctx context.Context) error {
	if err := a.startSemiSync(ctx); err != nil {
		return err
	}
	info, err := a.primaryInfo(ctx)
	if err != nil {
		return err
	}
	lease, err := untilUp(a, ctx, "object store", func() (*lease.Lease, error) {
		return lease.Acquire(ctx, a.store, a.layout, "binarc stream", a.cfg.LeaseTTL)
	})
	if err != nil {
		return err
	}
	a.lease = lease
	a.heldLease.Store(lease)
	a.leaseHeld.Store(true)
	defer func() {
		a.leaseHeld.Store(false)
		a.heldLease.Store(nil)
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := lease.Release(rctx); err != nil {
			a.log.Warn().Err(err).Msg("could not release the lease; it expires by itself")
		}
	}()
	if err := a.checkLayout(ctx); err != nil {
		return err
	}
	a.endPreviousDump(ctx, lease)
	if a.cfg.RecordJoins {
		go a.joinRecorder(ctx)
	}
	for {
		rp, err := untilUp(a, ctx, "object store", func() (*ResumePoint, error) { return a.resume(ctx, info) })
		if err != nil {
			return err
		}
		a.kickJoins()
		err = a.session(ctx, info, lease, rp)
		var be *replication.BreakError
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, errSwitch):
			// Another server is the primary now: resume sees another
			// server_id and starts a timeline joined to this one.
			if info, err = a.primaryInfo(ctx); err != nil {
				return err
			}
		case errors.As(err, &be):
			end := a.Status().Durable
			a.log.Error().Err(be).Str("timeline", rp.Timeline).Msg("ARCHIVE BREAK: the stream cannot continue contiguously; starting a new timeline, joined to this one by GTID where the histories meet")
			if info, err = a.primaryInfo(ctx); err != nil {
				return err
			}
			if info.ServerID != rp.Info.SourceServerID {
				continue // resume starts the new server's timeline
			}
			if _, err := a.startTimeline(ctx, info, be.Reason, &archive.TimelineEnd{Timeline: rp.Timeline, File: end.Position.File, Offset: end.Position.Offset}); err != nil {
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
	outage := &retry.Outage{Log: a.log, What: what}
	return retry.Do(ctx, retry.Backoff{Max: a.cfg.MaxBackoff}, outage, permanent, fn)
}

// permanent tells the errors no retry of the primary or the store can fix.
func permanent(err error) bool {
	var lh *lease.HeldError
	return replication.IsConfigError(err) || errors.As(err, &lh) || errors.Is(err, archive.ErrConflict) || errors.Is(err, archive.ErrFatal) || errors.Is(err, lease.ErrLost) || errors.Is(err, lease.ErrStoreIgnoresConditions)
}

// checkLayout records the layout version on a new archive and refuses an
// archive written by a newer binarc.
func (a *Archiver) checkLayout(ctx context.Context) error {
	version := archive.LayoutVersionPlain
	if a.cfg.Encrypt != nil {
		version = archive.LayoutVersionEncrypted
	}
	data := a.cfg.Sign.Sign(a.layout.LayoutKey(), archive.MarshalJSON(archive.LayoutInfo{Version: version}))
	_, err := a.store.Put(ctx, a.layout.LayoutKey(), data, objstore.PutOptions{IfAbsent: true})
	if err == nil {
		return nil
	}
	if !errors.Is(err, objstore.ErrExist) {
		return fmt.Errorf("write %s: %w", a.layout.LayoutKey(), err)
	}
	got, _, err := objstore.ReadSmall(ctx, a.store, a.layout.LayoutKey())
	if err != nil {
		return fmt.Errorf("read %s: %w", a.layout.LayoutKey(), err)
	}
	li, err := archive.CheckLayoutInfo(a.layout, got)
	if err != nil {
		return fmt.Errorf("%w: %v", archive.ErrFatal, err)
	}
	if (a.cfg.Encrypt != nil && li.Version < archive.LayoutVersionEncrypted) || a.cfg.Sign != nil {
		return archive.UpgradeLayout(ctx, a.store, a.layout, version, a.cfg.Sign)
	}
	return nil
}

// Resumed tells whether Run has found its durable position (retention's
// prune waits for it before its first run).
func (a *Archiver) Resumed() bool { return a.Status().Durable.Timeline != "" }
