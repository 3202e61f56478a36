package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/archive/sign"
	"github.com/binarc/binarc/replication"
)

// FileState is what the archive holds of one binlog file.
type FileState struct {
	Timeline string
	File     string
	Segments []SegmentRef
	Size     uint64 // end of the contiguous bytes from offset 0
	// Complete: the primary closed the file and every byte is stored.
	Complete       bool
	Closed         bool
	FirstEventTime time.Time
	LastEventTime  time.Time
	FirstGTID      string
	LastGTID       string
	// StartGTIDState is the GTID state at the file's start, when known
	// from its index or first segment (nil: read it from the file).
	StartGTIDState *string
	// Gap is set when stored segments do not run contiguously from 0.
	Gap error
	// RanAhead is set instead of Gap on a timeline's unfinished last file
	// whose segments past a hole were stored by uploads that ran ahead of
	// one that never finished (see tailRanAhead).
	RanAhead error
	// CompactedKey is set when the file is stored as one compacted object;
	// its segments may be gone, and readers use this object instead.
	CompactedKey string
}

// ErrGap means the archive is missing a byte range of a file.
var ErrGap = errors.New("gap in the archive")

// FileState reads the state of one file as listed by Files: from its
// index when it is complete, otherwise by listing its segments.
func (c Catalog) FileState(ctx context.Context, tl string, ref FileRef) (*FileState, error) {
	fs := &FileState{Timeline: tl, File: ref.Name}
	file := ref.Name
	if ref.Indexed && ref.Compacted {
		// Compaction stores the object only after the index, and the
		// object is whole once it is listed.
		fs.CompactedKey = c.Layout.CompactedKey(tl, file)
	}
	if ref.Indexed {
		ix, err := c.ReadIndex(ctx, tl, file)
		if err != nil {
			return nil, err
		}
		for _, s := range ix.Segments {
			fs.Segments = append(fs.Segments, SegmentRef{Key: c.Layout.SegmentKey(tl, file, s.Start, s.End), Start: s.Start, End: s.End, StoredSize: s.StoredSize})
		}
		fs.Size, fs.Complete, fs.Closed = ix.Size, true, ix.Closed
		fs.FirstEventTime, fs.LastEventTime = ix.FirstEventTime, ix.LastEventTime
		fs.FirstGTID, fs.LastGTID = ix.FirstGTID, ix.LastGTID
		fs.StartGTIDState = ix.StartGTIDState
		return fs, nil
	}
	segs, err := c.Segments(ctx, tl, file)
	if err != nil {
		return nil, err
	}
	var end uint64
	for i, s := range segs {
		if s.Start != end {
			fs.Gap = fmt.Errorf("%w: binlog=%s timeline=%s: bytes [%d,%d) are not stored", ErrGap, file, tl, end, s.Start)
			segs = segs[:i]
			break
		}
		end = s.End
	}
	fs.Segments, fs.Size = segs, end
	if len(segs) > 0 {
		first, err := c.segmentInfoFromStore(ctx, segs[0])
		if err != nil {
			return nil, err
		}
		last := first
		if len(segs) > 1 {
			if last, err = c.segmentInfoFromStore(ctx, segs[len(segs)-1]); err != nil {
				return nil, err
			}
		}
		fs.FirstEventTime, fs.LastEventTime = first.FirstEventTime, last.LastEventTime
		fs.FirstGTID, fs.LastGTID = first.FirstGTID, last.LastGTID
		fs.StartGTIDState = first.StartGTIDState
	}
	return fs, nil
}

// Rebuild writes the archived file to w, byte for byte as the primary has
// it: decompressed segments in offset order, with the format description's
// in-use flag cleared when the primary closed the file. It fails on a gap
// in a complete file.
// Segments are fetched ahead in parallel.
func (c Catalog) Rebuild(ctx context.Context, fs *FileState, w io.Writer) (int64, error) {
	if fs.Gap != nil && fs.Complete {
		return 0, fs.Gap
	}
	// An unfinished file is rebuilt up to its first hole: what lies past
	// it was stored by uploads that ran ahead of one that never finished
	// (the archiver was killed), was never durable, and goes at the
	// archiver's next start. After a disaster that took the primary and
	// the archiver, the prefix is what was acknowledged.
	if len(fs.Segments) == 0 {
		return 0, fmt.Errorf("binlog=%s timeline=%s: nothing archived yet", fs.File, fs.Timeline)
	}
	if fs.CompactedKey != "" {
		return c.rebuildCompacted(ctx, fs, w)
	}
	// The segments are fetched ahead in parallel; a segment gone because a
	// compaction finished while we read sends us to the compacted object,
	// stored before any segment is deleted.
	const ahead = 4
	var n int64
	compacted := false
	err := c.ReadSegments(ctx, fs.Segments, ahead, nil, func(i int, data []byte, err error) error {
		if errors.Is(err, objstore.ErrNotExist) && fs.Complete && fs.CompactedKey == "" {
			compacted = true
			return errSwitchToCompacted
		}
		if err != nil {
			return err
		}
		if fs.Segments[i].Start == 0 && len(data) > replication.InUseFlagOffset {
			data[replication.InUseFlagOffset] = inUseByte(data[replication.InUseFlagOffset], fs.Closed)
		}
		m, err := w.Write(data)
		n += int64(m)
		return err
	})
	if compacted {
		cfs := *fs
		cfs.CompactedKey = c.Layout.CompactedKey(fs.Timeline, fs.File)
		m, err := c.rebuildCompactedFrom(ctx, &cfs, w, n)
		return n + m, err
	}
	return n, err
}

// errSwitchToCompacted stops a segment read that found its file compacted.
var errSwitchToCompacted = errors.New("file compacted while read")

// TimelineState is what ls shows of one timeline.
type TimelineState struct {
	Info  *TimelineInfo
	Name  string
	Files []*FileState
}

// Describe reads the whole catalog of the cluster: timelines and files.
// It reads each complete file's index and the first and last segment of
// incomplete ones.
func (c Catalog) Describe(ctx context.Context) ([]*TimelineState, error) {
	tls, err := c.Timelines(ctx)
	if err != nil {
		return nil, err
	}
	var out []*TimelineState
	for i, tl := range tls {
		ts := &TimelineState{Name: tl}
		if ts.Info, err = c.ReadTimeline(ctx, tl); err != nil {
			if i == len(tls)-1 && errors.Is(err, objstore.ErrNotExist) {
				// The newest timeline listed before its manifest reads:
				// binarc stream is creating it (a store whose listing
				// shows an object's folder before the object, as
				// versitygw's posix backend does). It holds nothing yet.
				break
			}
			return nil, err
		}
		files, err := c.Files(ctx, tl)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			fs, err := c.FileState(ctx, tl, f)
			if err != nil {
				return nil, err
			}
			ts.Files = append(ts.Files, fs)
		}
		tailRanAhead(ts)
		out = append(out, ts)
	}
	return out, nil
}

// inUseByte is what byte 21 of a file (the low byte of the format
// description's flags) is on the primary's own copy, given the byte as
// received. The primary sends the format description with the in-use flag
// cleared (the CRC is computed without it); its own file has the flag set
// until it closes the file properly, and then the whole byte is 0.
func inUseByte(received byte, closed bool) byte {
	if closed {
		return 0
	}
	return received | replication.FlagInUse
}

// rebuildCompacted streams a compacted file: one GET, decompressed on the
// fly, with its size checked against the index.
func (c Catalog) rebuildCompacted(ctx context.Context, fs *FileState, w io.Writer) (int64, error) {
	return c.rebuildCompactedFrom(ctx, fs, w, 0)
}

// rebuildCompactedFrom is rebuildCompacted writing only the bytes past
// skip (a reader that had already written those from segments).
func (c Catalog) rebuildCompactedFrom(ctx context.Context, fs *FileState, w io.Writer, skip int64) (int64, error) {
	rc, _, err := c.Store.Get(ctx, fs.CompactedKey)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", fs.CompactedKey, err)
	}
	defer rc.Close()
	// Bounded: at most what fs.Size bytes compress to (sealed, when they
	// are) is read, at most fs.Size bytes are decoded and written.
	limit := sealedBound(StoredBound(fs.Size)) + int64(len(fs.Segments)+1)*sign.TrailerSize
	src, err := c.compactedSource(ctx, fs.CompactedKey, objstore.BoundedBody(rc, fs.CompactedKey, limit), fs.Segments)
	if err != nil {
		return 0, err
	}
	dec, err := NewBoundedDecoder(src)
	if err != nil {
		return 0, err
	}
	defer dec.Close()
	out := &skipWriter{w: w, skip: skip}
	if _, err := copyExactly(&headPatcher{w: out, closed: fs.Closed}, dec, fs.Size); err != nil {
		return out.n, fmt.Errorf("compacted %s is corrupt (the index says %d bytes): %w", fs.CompactedKey, fs.Size, err)
	}
	return out.n, nil
}

// skipWriter drops the first skip bytes, and counts what it passes on.
type skipWriter struct {
	w    io.Writer
	skip int64
	n    int64
}

func (s *skipWriter) Write(p []byte) (int, error) {
	all := len(p)
	if s.skip > 0 {
		d := min(s.skip, int64(len(p)))
		s.skip -= d
		p = p[d:]
	}
	m, err := s.w.Write(p)
	s.n += int64(m)
	if err != nil {
		return all - len(p) + m, err
	}
	return all, nil
}

// headPatcher sets the in-use flag byte as it streams past.
type headPatcher struct {
	w      io.Writer
	closed bool
	off    int64
}

func (h *headPatcher) Write(p []byte) (int, error) {
	if i := replication.InUseFlagOffset - h.off; i >= 0 && i < int64(len(p)) {
		q := append([]byte(nil), p...)
		q[i] = inUseByte(q[i], h.closed)
		p = q
	}
	h.off += int64(len(p))
	return h.w.Write(p)
}

// Stream reads an archived file as Rebuild writes it, without holding it:
// a pipe from a Rebuild running until the file ends, fails (its error is
// the reader's) or the reader is closed.
func (c Catalog) Stream(ctx context.Context, fs *FileState) io.ReadCloser {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	go func() {
		_, err := c.Rebuild(ctx, fs, pw)
		pw.CloseWithError(err)
	}()
	return &rebuildStream{PipeReader: pr, cancel: cancel}
}

type rebuildStream struct {
	*io.PipeReader
	cancel context.CancelFunc
}

// Close stops the rebuild.
func (r *rebuildStream) Close() error {
	r.cancel()
	return r.PipeReader.CloseWithError(errStreamClosed)
}

var errStreamClosed = errors.New("stream closed by its reader")

// tailRanAhead turns the gap of a timeline's unfinished last file into
// RanAhead: the archiver stores several segments at once (and with
// --semi-sync several commit groups), so one killed mid-upload can leave
// later segments past a hole. They were never durable (nothing in them was
// acknowledged) and the next binarc stream deletes them; until then the
// file ends, for restores and windows, at the hole, as binlog fetch
// rebuilds it. A hole in any other file is a real gap.
func tailRanAhead(ts *TimelineState) {
	if n := len(ts.Files); n > 0 {
		if last := ts.Files[n-1]; !last.Complete && last.Gap != nil {
			last.RanAhead, last.Gap = last.Gap, nil
		}
	}
}

// StartState is the GTID state at the start of an archived file: from its
// index, or read from the file's head. ok is false when neither says
// (GTIDs off) or the file cannot be read. (History.StartState answers the
// same from a fetched copy, for readers that scan the file anyway.)
func (c Catalog) StartState(ctx context.Context, tl string, ref FileRef) (*replication.GTIDState, bool) {
	fs, err := c.FileState(ctx, tl, ref)
	if err != nil {
		return nil, false
	}
	return c.FileStartState(ctx, fs)
}

// FileStartState is StartState of a file whose state the caller has read.
func (c Catalog) FileStartState(ctx context.Context, fs *FileState) (*replication.GTIDState, bool) {
	if fs.StartGTIDState != nil {
		st, err := replication.ParseGTIDState(*fs.StartGTIDState)
		return st, err == nil
	}
	pr := c.Stream(ctx, fs)
	defer pr.Close()
	st, ok, err := replication.FileStartState(pr)
	return st, ok && err == nil && st != nil
}
