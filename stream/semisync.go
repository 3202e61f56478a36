package stream

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
)

// Durability levels of --semi-sync-durability: what must hold a
// transaction before binarc acknowledges it to the primary.
const (
	DurabilityStore = "store" // the segment holding its commit is in the object store
	DurabilityLocal = "local" // it is fsynced to the local spool directory
)

// SemiSyncConfig makes binarc stream a semi-synchronous replica.
type SemiSyncConfig struct {
	Enabled    bool
	Durability string // DurabilityStore (default) or DurabilityLocal
	// SpoolDir holds segments not yet in the store; DurabilityLocal only.
	SpoolDir string
	// Acked, if set, hears of each transaction acknowledged, with the time
	// from the primary's request to the acknowledgement. It must be quick.
	Acked func(latency time.Duration)
	// PollInterval is how often the primary's semi-sync state is read
	// (default 1s).
	PollInterval time.Duration
	// Inflight bounds the commit groups sealed and uploading at once
	// (DurabilityStore; default DefaultSemiSyncInflight).
	Inflight int
	// MaxPuts bounds the commit groups sealed per second, so a busy
	// primary's request bill is bounded (0: no bound).
	MaxPuts float64
}

func (c *SemiSyncConfig) validate() error {
	if !c.Enabled {
		return nil
	}
	switch c.Durability {
	case "":
		c.Durability = DurabilityStore
	case DurabilityStore, DurabilityLocal:
	default:
		return fmt.Errorf("--semi-sync-durability %q: use store or local", c.Durability)
	}
	if c.Durability == DurabilityLocal && c.SpoolDir == "" {
		return errors.New("--semi-sync-durability local needs --spool-dir: a local directory on a disk that survives a restart of binarc")
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.Inflight == 0 {
		c.Inflight = DefaultSemiSyncInflight
	}
	if c.Inflight < 1 || c.Inflight > 64 {
		return fmt.Errorf("--semi-sync-inflight %d: use 1 to 64", c.Inflight)
	}
	if c.MaxPuts < 0 {
		return fmt.Errorf("--semi-sync-max-puts %g: use 0 (no bound) or a positive rate", c.MaxPuts)
	}
	return nil
}

// SemiSyncStatus is the semi-sync side of the archiver's progress.
type SemiSyncStatus struct {
	Enabled           bool
	AcksSent          uint64 // acknowledgement packets sent to the primary
	TransactionsAcked uint64 // transactions those covered
	// PrimaryChecked is when the primary's state was last read (zero: not
	// yet, or the last read failed).
	PrimaryChecked time.Time
	PrimaryState   replication.SemiSyncState
	// Fallbacks counts the unprotected ranges opened (the primary seen
	// not waiting); Unprotected tells whether one is open now.
	Fallbacks   uint64
	Unprotected bool
}

// semiSyncCounters outlive sessions.
type semiSyncCounters struct {
	acks, txns  atomic.Uint64
	fallbacks   atomic.Uint64 // unprotected ranges opened
	unprotected atomic.Bool   // one is open now
	mu          sync.Mutex
	checked     time.Time
	state       replication.SemiSyncState
	acked       replication.Position // the last position acknowledged
}

// lastAcked is the last position acknowledged to the primary.
func (c *semiSyncCounters) lastAcked() replication.Position {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acked
}

// SemiSyncStatus reports the semi-sync counters and the primary's state.
func (a *Archiver) SemiSyncStatus() SemiSyncStatus {
	c := &a.semi
	c.mu.Lock()
	defer c.mu.Unlock()
	return SemiSyncStatus{Enabled: a.cfg.SemiSync.Enabled, AcksSent: c.acks.Load(), TransactionsAcked: c.txns.Load(),
		PrimaryChecked: c.checked, PrimaryState: c.state, Fallbacks: c.fallbacks.Load(), Unprotected: c.unprotected.Load()}
}

// startSemiSync runs before anything else in Run: it puts the spool left by
// an earlier run into the store (even with the primary gone, the spool may
// hold the only copy of acknowledged commits), then watches the primary's
// semi-sync state until ctx ends.
func (a *Archiver) startSemiSync(ctx context.Context) error {
	if !a.cfg.SemiSync.Enabled {
		return nil
	}
	if a.cfg.SemiSync.Durability == DurabilityLocal {
		if err := a.replaySpool(ctx); err != nil {
			return err
		}
	}
	go a.watchPrimarySemiSync(ctx)
	return nil
}

func (a *Archiver) watchPrimarySemiSync(ctx context.Context) {
	m := &replication.SemiSyncMonitor{Config: a.cfg.Source}
	defer m.Close()
	t := time.NewTicker(a.cfg.SemiSync.PollInterval)
	defer t.Stop()
	warned := false
	rec := &fallbackRecorder{a: a}
	for {
		st, err := m.State(ctx)
		rec.observe(ctx, st, err, time.Now())
		a.semi.mu.Lock()
		if err == nil {
			a.semi.checked, a.semi.state = time.Now(), st
		} else {
			a.semi.checked, a.semi.state = time.Time{}, replication.SemiSyncState{}
		}
		a.semi.mu.Unlock()
		if err == nil && !st.Enabled && !warned {
			a.log.Warn().Msg("--semi-sync: the primary does not wait for any replica (rpl_semi_sync_master_enabled=OFF): commits are not held until they are archived; set it ON, binarc registers as semi-sync at its next connection")
		}
		warned = warned || (err == nil && !st.Enabled)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// semiSync is one session's semi-sync machinery: the acknowledgement
// tracker, the group-commit sealer and, for DurabilityLocal, the spool.
type semiSync struct {
	a     *Archiver
	t     *ackTracker
	repl  *replication.SemiSync
	spool *spool // nil unless DurabilityLocal
}

// spoolDir is the cluster's own part of --spool-dir.
func (a *Archiver) spoolDir() string { return filepath.Join(a.cfg.SemiSync.SpoolDir, a.cfg.Cluster) }

// newSemiSync returns nil when semi-sync is off; every method of a nil
// *semiSync leaves the session as it is without.
func (a *Archiver) newSemiSync(durable Durable) (*semiSync, error) {
	if !a.cfg.SemiSync.Enabled {
		return nil, nil
	}
	s := &semiSync{a: a, t: newAckTracker(durable.Position, &a.semi, a.cfg.SemiSync.Acked, a.log)}
	s.repl = &replication.SemiSync{Requested: s.t.request, Dumping: s.t.poke}
	s.t.replica = s.repl
	if a.cfg.SemiSync.Durability == DurabilityLocal {
		sp, err := openSpool(a.spoolDir(), a.log)
		if err != nil {
			return nil, err
		}
		s.spool = sp
	}
	return s, nil
}

func (s *semiSync) replica() *replication.SemiSync {
	if s == nil {
		return nil
	}
	return s.repl
}

// observer hears the store's durable position: it bounds the
// acknowledgements (DurabilityStore), or lets the spool drop what is
// stored (DurabilityLocal). A freed upload slot may seal the next group.
func (s *semiSync) observer(next Observer) Observer {
	if s == nil {
		return next
	}
	return &semiSyncObserver{next: next, s: s}
}

// sink sits between the segmenter and the uploader.
func (s *semiSync) sink(up *Uploader) Sink {
	if s == nil {
		return up
	}
	if s.spool != nil {
		return &spoolSink{Uploader: up, spool: s.spool, t: s.t}
	}
	return &storeSink{Uploader: up, t: s.t}
}

// start runs the acknowledgement sender and the sealer in g until ctx
// ends; the sealer's error ends the session.
func (s *semiSync) start(ctx context.Context, g *errgroup.Group, seg *Segmenter, up *Uploader) {
	if s == nil {
		return
	}
	g.Go(func() error {
		s.t.run(ctx)
		return nil
	})
	g.Go(func() error { return s.seal(ctx, seg, up) })
}

type semiSyncObserver struct {
	next Observer
	s    *semiSync
}

func (o *semiSyncObserver) SegmentStored(st UploadStats) {
	if o.next != nil {
		o.next.SegmentStored(st)
	}
}

func (o *semiSyncObserver) DurableAdvanced(d Durable, received time.Time) {
	if o.s.spool != nil {
		o.s.spool.stored(d)
	} else {
		// Sent here, not by the sender goroutine: one hop less
		// between a PUT's answer and the primary.
		o.s.t.advance(d.Position)
		o.s.t.send()
	}
	poke(o.s.t.sealc)
	if o.next != nil {
		o.next.DurableAdvanced(d, received)
	}
}

func (o *semiSyncObserver) UploadRetry(err error) {
	if o.next != nil {
		o.next.UploadRetry(err)
	}
}

// Both semi-sync sinks hold the segment being filled to --max-buffer.
var (
	_ roomWaiter = (*storeSink)(nil)
	_ roomWaiter = (*spoolSink)(nil)
)

// storeSink notes how far segments were sealed.
type storeSink struct {
	*Uploader // its SubmitFileEnd, WaitRoom and HasRoom as they are
	t         *ackTracker
}

func (s *storeSink) SubmitSegment(seg *archive.Segment) error {
	s.t.sealedTo(replication.Position{File: seg.File, Offset: seg.End})
	return s.Uploader.SubmitSegment(seg)
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// posLE orders positions of one timeline.
func posLE(a, b replication.Position) bool {
	if a.File == b.File {
		return a.Offset <= b.Offset
	}
	return replication.CompareBinlogNames(a.File, b.File) < 0
}

// ackTracker matches the primary's acknowledgement requests with the
// durable position, and sends the acknowledgements.
type ackTracker struct {
	replica  acker
	counters *semiSyncCounters
	acked    func(time.Duration)
	log      zerolog.Logger
	kick     chan struct{} // to the sender
	sealc    chan struct{} // to the sealer

	sendMu sync.Mutex // one send at a time (the sender, the committer)

	mu       sync.Mutex
	queue    []ackRequest         // requests not yet acknowledged, in stream order
	overflow bool                 // requests past the queue's cap, all at or before last
	last     replication.Position // the newest request
	durable  replication.Position // acknowledgements may go up to here
	sealed   replication.Position // end of what the segmenter has sealed
	failing  bool                 // the last send failed (logged once)
}

// acker sends an acknowledgement (*replication.SemiSync).
type acker interface {
	Ack(replication.Position) error
}

type ackRequest struct {
	pos replication.Position
	at  time.Time
}

// maxQueuedRequests caps the memory of requests waiting through a store
// outage; past it only the newest position is kept (no latency measured).
const maxQueuedRequests = 1 << 16

func newAckTracker(durable replication.Position, c *semiSyncCounters, acked func(time.Duration), log zerolog.Logger) *ackTracker {
	return &ackTracker{counters: c, acked: acked, log: log, durable: durable, sealed: durable,
		kick: make(chan struct{}, 1), sealc: make(chan struct{}, 1)}
}

func (t *ackTracker) request(pos replication.Position) {
	t.mu.Lock()
	if len(t.queue) < maxQueuedRequests {
		t.queue = append(t.queue, ackRequest{pos: pos, at: time.Now()})
	} else {
		t.overflow = true
	}
	t.last = pos
	t.mu.Unlock()
	poke(t.kick)
	poke(t.sealc)
}

// poke asks the sender to look again (a new connection can take what an
// old one could not).
func (t *ackTracker) poke() { poke(t.kick) }

func (t *ackTracker) advance(pos replication.Position) {
	t.mu.Lock()
	if posLE(t.durable, pos) {
		t.durable = pos
	}
	t.mu.Unlock()
	poke(t.kick)
}

func (t *ackTracker) sealedTo(pos replication.Position) {
	t.mu.Lock()
	t.sealed = pos
	t.mu.Unlock()
}

// needSeal tells whether a transaction the primary waits on is not sealed.
func (t *ackTracker) needSeal() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last.File != "" && !posLE(t.last, t.sealed)
}

func (t *ackTracker) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.kick:
			t.send()
		}
	}
}

// send acknowledges the newest request that is durable.
func (t *ackTracker) send() {
	t.sendMu.Lock()
	defer t.sendMu.Unlock()
	t.mu.Lock()
	var target replication.Position
	if t.overflow && posLE(t.last, t.durable) {
		target = t.last
	} else {
		for i := len(t.queue) - 1; i >= 0; i-- {
			if posLE(t.queue[i].pos, t.durable) {
				target = t.queue[i].pos
				break
			}
		}
	}
	t.mu.Unlock()
	if target.File == "" {
		return
	}
	err := t.replica.Ack(target)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		if !t.failing {
			t.log.Warn().Err(err).Stringer("position", target).Msg("semi-sync: acknowledgement not sent; it goes out on the next connection")
		}
		t.failing = true
		return
	}
	t.failing = false
	now := time.Now()
	n := 0
	for n < len(t.queue) && posLE(t.queue[n].pos, target) {
		if t.acked != nil {
			t.acked(now.Sub(t.queue[n].at))
		}
		n++
	}
	t.queue = append(t.queue[:0], t.queue[n:]...)
	if t.overflow && posLE(t.last, target) {
		t.overflow = false
	}
	t.counters.acks.Add(1)
	t.counters.txns.Add(uint64(n))
	t.counters.mu.Lock()
	t.counters.acked = target
	t.counters.mu.Unlock()
}
