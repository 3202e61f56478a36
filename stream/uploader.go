package stream

import (
	"bytes"
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

// UploaderConfig bounds the upload pipeline.
type UploaderConfig struct {
	// Concurrency is how many segments compress and upload at once.
	Concurrency int
	// MaxBufferedBytes bounds the (compressed) bytes of sealed segments
	// waiting for, in upload or stored ahead of an earlier one still being
	// retried (not yet durable), with those of the segment being filled
	// (see WaitRoom). When it is reached, the segmenter waits, which
	// stops the read from the primary: the primary keeps its binlog and
	// nothing is dropped.
	MaxBufferedBytes int64
	// MaxBackoff caps the wait between retries of a failed upload.
	MaxBackoff time.Duration
	// FileIndexed, if set, hears of each file whose index was written. It
	// must not block.
	FileIndexed func(timeline, file string)
	// BeforeWrite, if set, runs before every write to the store (the
	// lease's Ensure). An error matching lease.ErrLost stops the uploader;
	// others are retried like a failed write.
	BeforeWrite func(context.Context) error
	// Sealer, if set, encrypts every segment before it is stored.
	Sealer *crypt.Sealer
	// Signer, if set, signs every segment and index (--sign-key).
	Signer *sign.Signer
}

// Durable is the archive's durable position: the end of the longest prefix
// of the stream whose segments are all stored.
type Durable struct {
	Timeline  string
	Position  replication.Position
	EventTime time.Time // header time of the last durable event
}

// UploadStats are reported to the observer after each stored segment.
type UploadStats struct {
	Segment  *archive.Segment
	Stored   int64         // compressed bytes
	Latency  time.Duration // seal to stored
	Attempts int
}

// Observer hears about progress; every method must be quick.
type Observer interface {
	SegmentStored(UploadStats)
	DurableAdvanced(Durable, time.Time /* received time of the oldest byte of the newest segment */)
	UploadRetry(err error)
}

type item struct {
	seq     uint64
	seg     *archive.Segment
	size    int64 // seg.Data.Len() when submitted: what it holds of the buffer
	fileEnd *FileEnd
	stored  int64
	sealed  time.Time
}

// Uploader compresses and stores sealed segments with bounded concurrency,
// and advances the durable position in stream order. It writes a file's
// index once the file is complete and all its segments are stored.
type Uploader struct {
	cfg    UploaderConfig
	store  objstore.Store
	layout archive.Layout
	log    zerolog.Logger
	obs    Observer

	work chan *item
	done chan *item

	bytesMu   sync.Mutex
	bytesCond *sync.Cond
	buffered  int64

	seq uint64 // next sequence number to hand out (Submit callers are serialised by the segmenter)

	durMu   sync.Mutex
	durable Durable
	idle    chan struct{} // closed and replaced whenever all submitted items are committed
	pending int           // items submitted and not committed
	// unstored holds the Received time of each item submitted and not
	// committed, in order (zero for file ends): the loss window's start.
	unstored []time.Time

	outage *retry.Outage

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errMu  sync.Mutex
	err    error
}

// NewUploader starts the workers. durable is where the archive stands now.
func NewUploader(cfg UploaderConfig, store objstore.Store, layout archive.Layout, durable Durable, log zerolog.Logger, obs Observer) (*Uploader, error) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	u := &Uploader{
		cfg: cfg, store: store, layout: layout, log: log, obs: obs,
		work:    make(chan *item, 1024),
		done:    make(chan *item, 1024),
		durable: durable,
		idle:    make(chan struct{}),
		ctx:     ctx, cancel: cancel,
	}
	u.bytesCond = sync.NewCond(&u.bytesMu)
	u.outage = &retry.Outage{Log: log, What: "object store " + store.String(),
		DownMsg: "object store " + store.String() + " failing; retrying with backoff, holding data in memory (logged once per outage)",
		UpMsg:   "object store " + store.String() + " recovered"}
	close(u.idle)
	for i := 0; i < cfg.Concurrency; i++ {
		u.wg.Add(1)
		go u.worker()
	}
	u.wg.Add(1)
	go u.committer()
	return u, nil
}

// SubmitSegment queues a sealed segment, blocking while the buffer is full.
func (u *Uploader) SubmitSegment(s *archive.Segment) error {
	size := int64(s.Data.Len())
	u.bytesMu.Lock()
	// A segment larger than the whole budget still goes, alone.
	for u.buffered > 0 && u.buffered+size > u.cfg.MaxBufferedBytes && u.ctx.Err() == nil {
		u.bytesCond.Wait()
	}
	u.buffered += size
	u.bytesMu.Unlock()
	if err := u.Err(); err != nil {
		return err
	}
	it := &item{seq: u.nextSeq(s.Received), seg: s, size: size, sealed: time.Now()}
	select {
	case u.work <- it:
		return nil
	case <-u.ctx.Done():
		return u.stoppedErr()
	}
}

// WaitRoom blocks until the buffer has room for n more bytes beside the
// held bytes of the segment being filled (the segmenter's count, which
// only its sealing lowers: it moves them into the buffer), or the uploader
// stops. The segment being filled is held to the bound too: otherwise,
// with the buffer full, a whole segment more (16 MiB) is filled, sealed
// and waits beside it. A segment larger than the whole budget still goes,
// alone.
func (u *Uploader) WaitRoom(held *atomic.Int64, n int64) error {
	u.bytesMu.Lock()
	for !u.hasRoomLocked(held.Load(), n) && u.ctx.Err() == nil {
		u.bytesCond.Wait()
	}
	u.bytesMu.Unlock()
	if u.ctx.Err() != nil {
		return u.stoppedErr()
	}
	return nil
}

// HasRoom tells whether WaitRoom would return at once.
func (u *Uploader) HasRoom(held, n int64) bool {
	u.bytesMu.Lock()
	defer u.bytesMu.Unlock()
	return u.hasRoomLocked(held, n)
}

func (u *Uploader) hasRoomLocked(held, n int64) bool {
	return u.buffered == 0 || u.buffered+held+n <= u.cfg.MaxBufferedBytes
}

// SubmitFileEnd queues the marker that a file is complete.
func (u *Uploader) SubmitFileEnd(fe FileEnd) error {
	if err := u.Err(); err != nil {
		return err
	}
	it := &item{seq: u.nextSeq(time.Time{}), fileEnd: &fe}
	select {
	case u.done <- it:
		return nil
	case <-u.ctx.Done():
		return u.stoppedErr()
	}
}

func (u *Uploader) nextSeq(received time.Time) uint64 {
	u.durMu.Lock()
	defer u.durMu.Unlock()
	s := u.seq
	u.seq++
	u.unstored = append(u.unstored, received)
	if u.pending == 0 {
		u.idle = make(chan struct{})
	}
	u.pending++
	return s
}

// Durable returns the durable position.
func (u *Uploader) Durable() Durable {
	u.durMu.Lock()
	defer u.durMu.Unlock()
	return u.durable
}

// Pending is the number of segments and file ends submitted and not yet
// committed: the uploads in flight.
func (u *Uploader) Pending() int {
	u.durMu.Lock()
	defer u.durMu.Unlock()
	return u.pending
}

// OldestUnstored is when the oldest byte submitted and not yet durable
// arrived from the primary; ok is false if every segment is durable.
func (u *Uploader) OldestUnstored() (t time.Time, ok bool) {
	u.durMu.Lock()
	defer u.durMu.Unlock()
	for _, t := range u.unstored {
		if !t.IsZero() {
			return t, true
		}
	}
	return time.Time{}, false
}

// FailingSince is when the store began failing; zero while it works.
func (u *Uploader) FailingSince() time.Time {
	return u.outage.Since()
}

// Err is the error that stopped the uploader, if any.
func (u *Uploader) Err() error {
	u.errMu.Lock()
	defer u.errMu.Unlock()
	return u.err
}

func (u *Uploader) stoppedErr() error {
	if err := u.Err(); err != nil {
		return err
	}
	return errors.New("uploader stopped")
}

func (u *Uploader) fail(err error) {
	u.errMu.Lock()
	if u.err == nil {
		u.err = err
	}
	u.errMu.Unlock()
	u.stop()
}

// stop cancels the uploader and wakes every waiter for room. Both happen
// under bytesMu: a waiter checks u.ctx and goes to sleep under it, so a
// cancel and Broadcast between its check and its Wait (a lost wake-up)
// cannot happen; without the lock, only a later Broadcast (Close's) woke it.
func (u *Uploader) stop() {
	u.bytesMu.Lock()
	defer u.bytesMu.Unlock()
	u.cancel()
	u.bytesCond.Broadcast()
}

// Drain waits until everything submitted is stored (and indexes written),
// or ctx ends.
func (u *Uploader) Drain(ctx context.Context) error {
	u.durMu.Lock()
	idle := u.idle
	u.durMu.Unlock()
	select {
	case <-idle:
		return u.Err()
	case <-ctx.Done():
		return fmt.Errorf("uploads still pending at shutdown: %w", ctx.Err())
	case <-u.ctx.Done():
		return u.stoppedErr()
	}
}

// Close stops the workers. Pending uploads are abandoned: call Drain first
// for a clean stop. It returns the error that stopped the uploader, if any.
func (u *Uploader) Close() error {
	u.stop()
	u.wg.Wait()
	return u.Err()
}

// Done is closed when the uploader stops, by Close or by a fatal error.
func (u *Uploader) Done() <-chan struct{} { return u.ctx.Done() }

func (u *Uploader) worker() {
	defer u.wg.Done()
	for {
		select {
		case <-u.ctx.Done():
			return
		case it := <-u.work:
			if err := u.upload(it); err != nil {
				if u.ctx.Err() == nil {
					u.fail(err)
				}
				return
			}
			select {
			case u.done <- it:
			case <-u.ctx.Done():
				return
			}
		}
	}
}

// upload stores one segment, retrying transient failures with capped
// backoff until it is stored or the uploader stops. Finding the key already
// taken is fine when the object holds the same bytes (an earlier attempt
// whose answer was lost) and fatal otherwise.
func (u *Uploader) upload(it *item) error {
	s := it.seg
	key := u.layout.SegmentKey(s.Timeline, s.File, s.Start, s.End)
	data := s.Data
	if u.cfg.Sealer != nil {
		// Sealed once: a retry stores the same bytes, so finding them
		// stored by a lost earlier attempt is recognised.
		sealed, err := archive.SealSegment(u.cfg.Sealer, key, s)
		if err != nil {
			return fmt.Errorf("%w: binlog=%s offset=%d: %v", archive.ErrFatal, s.File, s.Start, err)
		}
		s.Data, data = sealed, sealed // the sealed copy is what is stored from here on
	}
	data = u.cfg.Signer.SignChunks(key, data) // once, like sealing: a retry compares the same bytes (nil Signer: unsigned)
	it.stored = int64(data.Len())
	b := retry.Backoff{Initial: 100 * time.Millisecond, Max: u.cfg.MaxBackoff}
	for attempt := 1; ; attempt++ {
		err := u.beforeWrite()
		if errors.Is(err, lease.ErrLost) {
			return err
		}
		if err == nil {
			_, err = objstore.PutBuffers(u.ctx, u.store, key, data, objstore.PutOptions{IfAbsent: true})
		}
		if errors.Is(err, objstore.ErrExist) {
			err = u.checkSame(key, data)
			if err != nil && !isTransient(err) {
				return err
			}
		}
		if err == nil {
			u.outage.OK()
			// Stored: only the segment's description is needed from here
			// on (the committer may hold it until the segments before it
			// are stored too); the buffer counts it until it is committed.
			s.Data = nil
			if u.obs != nil {
				u.obs.SegmentStored(UploadStats{Segment: s, Stored: it.stored, Latency: time.Since(it.sealed), Attempts: attempt})
			}
			return nil
		}
		if u.ctx.Err() != nil {
			return u.ctx.Err()
		}
		u.outage.Failed(err, func(e *zerolog.Event) *zerolog.Event { return e.Str("binlog", fmt.Sprintf("%s:%d", s.File, s.Start)) })
		if u.obs != nil {
			u.obs.UploadRetry(err)
		}
		if err := b.Wait(u.ctx); err != nil {
			return err
		}
	}
}

func (u *Uploader) beforeWrite() error {
	if u.cfg.BeforeWrite == nil {
		return nil
	}
	return u.cfg.BeforeWrite(u.ctx)
}

func isTransient(err error) bool { return !errors.Is(err, archive.ErrConflict) }

func (u *Uploader) checkSame(key string, ours objstore.Chunks) error {
	start, end, err := archive.ParseSegmentName(key)
	if err != nil {
		return err
	}
	got, _, err := objstore.ReadAtMost(u.ctx, u.store, key, archive.StoredBound(end-start))
	if err != nil {
		return err
	}
	if ours.Equal(got) {
		return nil
	}
	// Another process may have compressed the same bytes differently.
	theirs, err1 := archive.DecodeSegment(got, end-start)
	want, err2 := archive.DecodeSegment(ours.Bytes(), end-start)
	if err1 == nil && err2 == nil && bytes.Equal(theirs, want) {
		return nil
	}
	return fmt.Errorf("%w: segment %s already exists with different content: another archiver is writing this cluster, or the archive was changed by hand; stop and run binarc verify", archive.ErrConflict, key)
}
