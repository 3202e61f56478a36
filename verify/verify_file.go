package verify

import (
	"context"
	"errors"
	"strings"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/archive/sign"
	"github.com/binarc/binarc/replication"
)

// fileCheck collects the findings and counts of one file, to be reported
// once the file's check stands (a compaction or prune running beside
// Verify can remove objects under it).
type fileCheck struct {
	findings []Finding
	counts   VerifyCounts
	// absent: an object the listing or the index named was not there.
	absent bool
}

func (fc *fileCheck) add(f Finding) { fc.findings = append(fc.findings, f) }

func (fc *fileCheck) problem(f Finding, format string, args ...any) {
	fc.add(f.with(SeverityProblem, format, args...))
}

func (fc *fileCheck) note(f Finding, format string, args ...any) {
	fc.add(f.with(SeverityNote, format, args...))
}

func (v *verifier) commit(fc *fileCheck) {
	for _, f := range fc.findings {
		v.emit(f)
	}
	v.rep.Counts.add(fc.counts)
}

// indexedFile checks a complete file. If objects went missing, it lists
// the timeline again: a compaction may have replaced the segments since
// the listing (the file is checked again, compacted), or a prune may be
// deleting the file (it returns nil then).
func (v *verifier) indexedFile(ctx context.Context, tl string, f fileListing) (*fileResult, error) {
	fc, res, err := v.checkIndexed(ctx, tl, f)
	if err != nil || !fc.absent {
		if err == nil {
			v.commit(fc)
		}
		return res, err
	}
	g, ok, err := v.relistFile(ctx, tl, f.ref.Name)
	at := Finding{Timeline: tl, File: f.ref.Name}
	switch {
	case err != nil:
		return nil, err
	case !ok:
		v.note(at, "the file was removed while it was being verified (pruned)")
		return nil, nil
	case g.ref.Indexed && g.ref.Compacted && !f.ref.Compacted:
		if fc, res, err = v.checkIndexed(ctx, tl, g); err != nil {
			return nil, err
		}
	case len(g.stored) < len(f.stored) || f.ref.Compacted && !g.ref.Compacted || !g.ref.Indexed:
		v.note(at, "the file's objects were being deleted while it was verified (a prune is running): not checked")
		return nil, nil
	}
	v.commit(fc)
	return res, nil
}

// relistFile lists the timeline again and returns the file as it is now;
// ok is false if it is gone.
func (v *verifier) relistFile(ctx context.Context, tl, name string) (fileListing, bool, error) {
	lst, err := v.listTimeline(ctx, tl)
	if err != nil {
		return fileListing{}, false, err
	}
	for _, g := range lst.files {
		if g.ref.Name == name {
			return g, true, nil
		}
	}
	return fileListing{}, false, nil
}

// checkIndexed checks a complete file as listed in f; what it finds goes
// into the returned fileCheck, for the caller to report.
func (v *verifier) checkIndexed(ctx context.Context, tl string, f fileListing) (*fileCheck, *fileResult, error) {
	fc := &fileCheck{}
	name := f.ref.Name
	at := Finding{Timeline: tl, File: name, Key: v.c.Layout.IndexKey(tl, name)}
	ix, err := v.c.ReadIndex(ctx, tl, name)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		fc.absent = errors.Is(err, objstore.ErrNotExist)
		fc.problem(at, "cannot read the file's index: %v", err)
		return fc, &fileResult{complete: true}, nil
	}
	res := &fileResult{size: ix.Size, complete: true, next: archive.NextFile(ix)}
	fs, err := v.c.FileState(ctx, tl, f.ref)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		fc.problem(at, "cannot read the file's state: %v", err)
		return fc, res, nil
	}
	if ix.File != name || ix.Timeline != tl {
		fc.problem(at, "the index is of timeline %s binlog %s", ix.Timeline, ix.File)
	}
	if ix.Version < 1 || ix.Version > archive.LayoutVersion {
		fc.problem(at, "index version %d is not one this binarc knows (1 to %d)", ix.Version, archive.LayoutVersion)
	}
	w := newEventWalker(tl, name, fs.Segments, ix.Segments, fc.add)
	if fs.CompactedKey != "" {
		if err := v.checkCompacted(ctx, fc, fs, f, ix, w); err != nil {
			return nil, nil, err
		}
	} else {
		if err := v.checkSegments(ctx, fc, fs, f, w); err != nil {
			return nil, nil, err
		}
	}
	fc.counts.Events += w.events
	if closed := replication.IsFileEnd(w.lastType); w.tailKnown && closed != ix.Closed {
		fc.problem(at, "the index says closed=%v, but the file's last event is a %s", ix.Closed, w.lastType)
	}
	if w.rotateTo != "" && ix.Next != "" && w.rotateTo != ix.Next {
		fc.problem(at, "the index says the stream continued in %s, but the file's ROTATE names %s", ix.Next, w.rotateTo)
	}
	return fc, res, nil
}

// checkSegments checks an indexed file kept as segments: the index against
// the stored objects, then every segment's bytes.
func (v *verifier) checkSegments(ctx context.Context, fc *fileCheck, fs *archive.FileState, f fileListing, w *eventWalker) error {
	stored := map[string]archive.SegmentRef{}
	for _, s := range f.stored {
		stored[s.Key] = s
	}
	absent := map[int]bool{}
	for i, s := range fs.Segments {
		off := s.Start
		at := Finding{Timeline: fs.Timeline, File: fs.File, Offset: &off, Key: s.Key}
		got, ok := stored[s.Key]
		delete(stored, s.Key)
		switch {
		case !ok:
			absent[i], fc.absent = true, true
			fc.problem(at, "segment [%d,%d) is in the file's index but not stored%s", s.Start, s.End, pruneHint(f))
		case got.StoredSize != s.StoredSize:
			fc.problem(at, "the stored segment has %d bytes, the index says %d", got.StoredSize, s.StoredSize)
		}
	}
	for _, s := range f.stored {
		if _, extra := stored[s.Key]; extra {
			off := s.Start
			fc.note(Finding{Timeline: fs.Timeline, File: fs.File, Offset: &off, Key: s.Key}, "segment [%d,%d) is not in the file's index: readers ignore it", s.Start, s.End)
		}
	}
	if err := v.walkSegments(ctx, fc, w, fs.Segments, absent); err != nil {
		return err
	}
	w.finish()
	return nil
}

// pruneHint explains missing data at the head of a timeline: a prune
// deletes a file's data before its index, so one that stopped half way
// leaves an index without all its data, which the next prune removes.
func pruneHint(f fileListing) string {
	if !f.head {
		return ""
	}
	return " (the timeline's oldest file: if a prune stopped half way, the next prune removes the rest of it)"
}

// checkCompacted checks an indexed file kept as one compacted object: its
// size against the index, then its bytes, streamed.
func (v *verifier) checkCompacted(ctx context.Context, fc *fileCheck, fs *archive.FileState, f fileListing, ix *archive.FileIndex, w *eventWalker) error {
	at := Finding{Timeline: fs.Timeline, File: fs.File, Key: fs.CompactedKey}
	var sum int64
	for _, s := range ix.Segments {
		sum += s.StoredSize
	}
	if f.compactedSize != sum && f.compactedSize != sum+sign.TrailerSize && len(f.stored) < len(ix.Segments) {
		// The timeline was listed a while ago: a compaction writing the
		// object then (some stores list an object while it is written)
		// may have finished and deleted the segments since. Its size now
		// is what counts.
		f.compactedSize = v.sizeNow(ctx, fs.CompactedKey, f.compactedSize)
	}
	if f.compactedSize == sum+sign.TrailerSize {
		sum = f.compactedSize // the compactor's signature (--sign-key), checked as the object is read
	}
	if f.compactedSize != sum && len(f.stored) >= len(ix.Segments) {
		// Every segment is still there, so nothing is lost: a compaction
		// is writing the object (some stores list an object while it is
		// written), or one stopped while writing it (it is checked, and
		// the segments kept, when compaction runs again). Readers fail
		// on a short compacted object rather than misread it.
		fc.note(at, "the compacted object has %d bytes, the index's segments %d, and every segment is still stored: a compaction in progress, or one that stopped while writing; the segments were checked instead", f.compactedSize, sum)
		segs := *fs
		segs.CompactedKey = ""
		return v.checkSegments(ctx, fc, &segs, f, w)
	}
	if f.compactedSize != sum {
		fc.problem(at, "the compacted object has %d bytes, the index's segments %d", f.compactedSize, sum)
	}
	if len(f.stored) > 0 {
		fc.note(at, "%s left beside the compacted object (compaction stopped before deleting them; it deletes them when it runs again): readers use the compacted object", segmentCount(len(f.stored)))
	}
	w.object = fs.CompactedKey
	n, err := v.c.Rebuild(ctx, fs, w)
	fc.counts.Compacted++
	fc.counts.StoredBytes += f.compactedSize
	fc.counts.BinlogBytes += uint64(n)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fc.absent = fc.absent || errors.Is(err, objstore.ErrNotExist)
		// The finding names the key: the message need not repeat it.
		fc.problem(at, "%s (%d bytes of the file decoded before that)", strings.ReplaceAll(err.Error(), fs.CompactedKey, "object"), n)
		return nil
	}
	w.finish()
	return nil
}

// sizeNow is the size of the object at key as the store has it now, or
// listed when it cannot be read.
func (v *verifier) sizeNow(ctx context.Context, key string, listed int64) int64 {
	rc, info, err := v.c.Store.Get(ctx, key)
	if err != nil {
		return listed
	}
	rc.Close()
	return info.Size
}

// unindexedFile checks the bytes of a file without index, the segments
// stored without a gap from offset 0 (run).
func (v *verifier) unindexedFile(ctx context.Context, tl string, f fileListing, run []archive.SegmentRef) (*fileResult, *fileCheck, error) {
	fc := &fileCheck{}
	w := newEventWalker(tl, f.ref.Name, run, nil, fc.add)
	if err := v.walkSegments(ctx, fc, w, run, nil); err != nil {
		return nil, nil, err
	}
	w.finish()
	fc.counts.Events += w.events
	res := &fileResult{}
	if len(run) > 0 {
		res.size = run[len(run)-1].End
	}
	if w.tailKnown && w.ended {
		res.complete = true
		res.next = w.rotateTo
		if res.next == "" {
			res.next = archive.NextFile(&archive.FileIndex{File: f.ref.Name})
		}
	}
	return res, fc, nil
}

// walkSegments reads segs in order, a few at once, and writes each to w.
// Those in absent are known to be missing (already reported).
func (v *verifier) walkSegments(ctx context.Context, fc *fileCheck, w *eventWalker, segs []archive.SegmentRef, absent map[int]bool) error {
	return v.c.ReadSegments(ctx, segs, v.opts.Concurrency, absent, func(i int, plain []byte, err error) error {
		s := segs[i]
		switch {
		case absent[i]:
			w.skip(i)
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			off := s.Start
			fc.absent = fc.absent || errors.Is(err, objstore.ErrNotExist)
			// The finding names the key: the message need not repeat it.
			msg := strings.ReplaceAll(err.Error(), " "+s.Key, "")
			fc.problem(Finding{Timeline: w.tl, File: w.file, Offset: &off, Key: s.Key}, "%s", msg)
			w.skip(i)
		default:
			fc.counts.Segments++
			fc.counts.StoredBytes += s.StoredSize
			fc.counts.BinlogBytes += uint64(len(plain))
			w.Write(plain)
			w.segmentDone()
		}
		return nil
	})
}
