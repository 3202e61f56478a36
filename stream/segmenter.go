package stream

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
	"github.com/klauspost/compress/zstd"
)

// FileEnd marks that File is complete: every byte of it is in the segments
// submitted before this marker, and the stream went on to Next.
type FileEnd struct {
	Timeline string
	File     string
	Next     string
}

// Sink takes sealed segments and file-end markers, in order. It may block
// (backpressure); it fails only when the archive must stop.
type Sink interface {
	SubmitSegment(*archive.Segment) error
	SubmitFileEnd(FileEnd) error
}

// roomWaiter is a Sink whose buffer is bounded (the Uploader's
// WaitRoom): the segmenter waits for room before it adds an event, so the
// segment being filled counts against the bound.
type roomWaiter interface {
	HasRoom(held, n int64) bool
	WaitRoom(held *atomic.Int64, n int64) error
}

// encoderPending bounds what the segment's encoder holds and has not
// written yet: one block (128 KiB) and the frame's end.
const encoderPending = 128<<10 + 1<<10

// eventBound bounds what an event of n bytes adds to a segment's
// compressed bytes: incompressible data is stored in raw blocks of at
// most 128 KiB, 3 bytes of header each.
func eventBound(n int) int64 {
	return int64(n) + int64(n)>>10 + 64
}

// SegmenterConfig holds the cut rules.
type SegmenterConfig struct {
	// FlushInterval seals a segment this long after its first event.
	FlushInterval time.Duration
	// SegmentSize bounds a segment's bytes: a segment is sealed when the
	// next event would cross it, or when it reaches it. A single event
	// larger than this makes a segment of its own.
	SegmentSize int
}

// Segmenter cuts the event stream into segments: sealed when the flush
// interval has passed since the first event, at the size limit, or when the
// file ends. It checks that events arrive contiguously.
type Segmenter struct {
	cfg      SegmenterConfig
	sink     Sink
	room     roomWaiter // sink, when its buffer is bounded
	timeline string
	now      func() time.Time

	mu   sync.Mutex
	cur  *archive.Segment
	enc  *zstd.Encoder        // compresses cur; reused for every segment
	zbuf objstore.ChunkBuffer // cur's compressed bytes so far
	file string               // file being cut
	next uint64               // offset the next event must start at

	// unsent is when the oldest byte not yet handed to the sink arrived
	// (unix ns, 0: none). Atomic: the loss window reads it while a seal
	// blocks on a full upload buffer with mu held.
	unsent atomic.Int64
	// held bounds the compressed bytes of the segment being filled, for
	// the sink's WaitRoom (atomic: read while the segmenter waits).
	held atomic.Int64
}

// newSegmentEncoder makes the streaming encoder of the segment being
// filled. A 2 MiB window keeps its memory small; on binlog it compresses
// as well as the default 8 MiB window (measured with make bench).
func newSegmentEncoder() *zstd.Encoder {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true), zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(2<<20))
	if err != nil {
		panic(fmt.Sprintf("archive: zstd encoder: %v", err)) // only for invalid options
	}
	return enc
}

// NewSegmenter cuts for timeline tl, resuming at pos (Offset 0 or 4 means
// the file's start).
func NewSegmenter(cfg SegmenterConfig, tl string, pos replication.Position, sink Sink) *Segmenter {
	room, _ := sink.(roomWaiter)
	return &Segmenter{cfg: cfg, sink: sink, room: room, timeline: tl, now: time.Now, file: pos.File, next: pos.Offset, enc: newSegmentEncoder()}
}

// Add appends one event. Its bytes are copied. It waits, without holding
// the segment (a flush may seal it meanwhile), while the sink's buffer has
// no room for the event.
func (s *Segmenter) Add(ev replication.Event) error {
	if s.room != nil {
		if err := s.waitRoom(eventBound(len(ev.Raw))); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ev.File != s.file {
		return fmt.Errorf("binlog=%s offset=%d: event arrived while cutting %s (no file end in between)", ev.File, ev.Start, s.file)
	}
	want := s.next
	if want == 0 {
		want = replication.MagicLen
	}
	if ev.Start != want {
		return fmt.Errorf("binlog=%s offset=%d: event is not contiguous with the archive, which ends at %d", ev.File, ev.Start, s.next)
	}
	if s.cur != nil && s.cur.End-s.cur.Start+uint64(len(ev.Raw)) > uint64(s.cfg.SegmentSize) {
		// Seal before crossing the limit: only a single event larger
		// than the limit makes a segment larger than it.
		if err := s.sealLocked(); err != nil {
			return err
		}
	}
	if s.cur == nil {
		s.cur = &archive.Segment{Timeline: s.timeline, File: ev.File, Start: ev.Start, End: ev.Start, Received: s.now(), FirstTime: ev.Timestamp}
		s.unsent.Store(s.cur.Received.UnixNano())
		s.zbuf.Reset()
		s.enc.Reset(&s.zbuf)
		if ev.Start == replication.MagicLen {
			s.cur.Start = 0
			if _, err := s.enc.Write(replication.Magic); err != nil {
				return fmt.Errorf("binlog=%s: compress: %w", ev.File, err)
			}
		}
	}
	c := s.cur
	if _, err := s.enc.Write(ev.Raw); err != nil {
		return fmt.Errorf("binlog=%s offset=%d: compress: %w", ev.File, ev.Start, err)
	}
	c.End = ev.End
	c.Events++
	c.LastTime = ev.Timestamp
	c.LastType = ev.Type
	switch {
	case ev.Type == gomysql.ROTATE_EVENT:
		c.Next = archive.RotateTarget(ev.Raw, ev.Start)
	case ev.Type == gomysql.FORMAT_DESCRIPTION_EVENT && ev.Start == replication.MagicLen:
		c.FDE = bytes.Clone(ev.Raw)
	}
	if c.Start == 0 && c.StartState == nil && (ev.Type == gomysql.MARIADB_GTID_LIST_EVENT || ev.Type == gomysql.PREVIOUS_GTIDS_EVENT) {
		if st, err := replication.EventStartState(ev.Raw); err == nil {
			str := st.String()
			c.StartState = &str
		}
	}
	if ev.GTID != "" {
		if c.FirstGTID == "" {
			c.FirstGTID = ev.GTID
		}
		c.LastGTID = ev.GTID
	}
	s.next = ev.End
	s.held.Store(int64(s.zbuf.Size()) + encoderPending)
	if c.End-c.Start >= uint64(s.cfg.SegmentSize) {
		return s.sealLocked()
	}
	return nil
}

// waitRoom waits until the sink's buffer has room for n more bytes. The
// segment being filled is sealed first: it counts against the bound
// sealed or not, and sealed it uploads beside the others while the event
// waits, so a catch-up keeps its uploads going in parallel.
func (s *Segmenter) waitRoom(n int64) error {
	if s.room.HasRoom(s.held.Load(), n) {
		return nil
	}
	s.mu.Lock()
	err := s.sealLocked()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.room.WaitRoom(&s.held, n)
}

// FileDone seals the current segment and marks file complete.
func (s *Segmenter) FileDone(file, next string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if file != s.file {
		return fmt.Errorf("binlog=%s: file end arrived while cutting %s", file, s.file)
	}
	if err := s.sealLocked(); err != nil {
		return err
	}
	if err := s.sink.SubmitFileEnd(FileEnd{Timeline: s.timeline, File: file, Next: next}); err != nil {
		return err
	}
	s.file, s.next = next, 0
	return nil
}

// Tick seals the current segment if the flush interval has passed since its
// first event. Call it often (every tenth of the interval or so).
func (s *Segmenter) Tick() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil && s.now().Sub(s.cur.Received) >= s.cfg.FlushInterval {
		return s.sealLocked()
	}
	return nil
}

// Flush seals the current segment now, whatever its age.
func (s *Segmenter) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sealLocked()
}

// OldestUnsent is when the oldest byte not yet handed to the sink (the
// segment being filled, or being submitted) arrived; ok is false if none.
func (s *Segmenter) OldestUnsent() (t time.Time, ok bool) {
	if ns := s.unsent.Load(); ns != 0 {
		return time.Unix(0, ns), true
	}
	return time.Time{}, false
}

// Position is where the next event must start.
func (s *Segmenter) Position() replication.Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return replication.Position{File: s.file, Offset: s.next}
}

func (s *Segmenter) sealLocked() error {
	if s.cur == nil {
		return nil
	}
	seg := s.cur
	s.cur = nil
	if err := s.enc.Close(); err != nil {
		return fmt.Errorf("binlog=%s offset=%d: compress: %w", seg.File, seg.Start, err)
	}
	seg.Data = s.zbuf.Take() // its chunks, as they are
	if err := s.sink.SubmitSegment(seg); err != nil {
		return err
	}
	s.unsent.Store(0)
	s.held.Store(0) // in the sink's buffer now
	return nil
}
