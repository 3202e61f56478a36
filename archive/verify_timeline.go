package archive

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/replication"
)

// timelines checks every timeline: its manifest, how it follows the one
// before, and its files.
func (v *verifier) timelines(ctx context.Context) error {
	l := v.c.Layout
	entries, err := v.c.Store.List(ctx, l.TimelinesPrefix())
	if err != nil {
		return fmt.Errorf("list timelines of cluster %q: %w", l.Cluster, err)
	}
	for _, e := range entries {
		if _, _, err := ParseTimeline(strings.TrimPrefix(e.Key, l.TimelinesPrefix())); !e.Dir || err != nil {
			v.stray(e)
		}
	}
	names, err := v.c.Timelines(ctx)
	if err != nil {
		return err
	}
	infos := make([]*TimelineInfo, len(names))
	for i, tl := range names {
		ti, err := v.c.ReadTimeline(ctx, tl)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			v.problem(Finding{Timeline: tl, Key: l.TimelineKey(tl)}, "cannot read the timeline's manifest: %v", err)
			continue
		}
		infos[i] = ti
	}
	for i := range names {
		if err := v.timeline(ctx, names, infos, i); err != nil {
			return err
		}
	}
	return nil
}

// timeline checks timeline names[i].
func (v *verifier) timeline(ctx context.Context, names []string, infos []*TimelineInfo, i int) error {
	tl, ti := names[i], infos[i]
	v.rep.Counts.Timelines++
	if ti != nil {
		v.checkManifest(names, ti, i)
	}
	newest := i == len(names)-1
	lst, err := v.listTimeline(ctx, tl)
	if err != nil {
		return err
	}
	if newest && v.opts.Settle > 0 && lst.unsettled() {
		select {
		case <-time.After(v.opts.Settle):
		case <-ctx.Done():
			return ctx.Err()
		}
		if lst, err = v.listTimeline(ctx, tl); err != nil {
			return err
		}
	}
	for _, e := range lst.strays {
		v.stray(e)
	}
	// Where the next timeline's manifest says this one ended.
	var end *TimelineEnd
	if !newest && infos[i+1] != nil && infos[i+1].Previous != nil && infos[i+1].Previous.Timeline == tl {
		end = infos[i+1].Previous
	}
	return v.files(ctx, tl, ti, lst.files, newest, end)
}

func (v *verifier) checkManifest(names []string, ti *TimelineInfo, i int) {
	tl := names[i]
	at := Finding{Timeline: tl, Key: v.c.Layout.TimelineKey(tl)}
	if ti.Timeline != tl {
		v.problem(at, "the manifest is of timeline %q", ti.Timeline)
	}
	if ti.Version < 1 || ti.Version > LayoutVersion {
		v.problem(at, "manifest version %d is not one this binarc knows (1 to %d)", ti.Version, LayoutVersion)
	}
	if ValidateName("binlog file", ti.StartFile) != nil {
		v.problem(at, "the manifest's start_file %q is not a binlog file name", ti.StartFile)
	}
	switch prev := ti.Previous; {
	case prev == nil && i > 0:
		v.problem(at, "the manifest has no previous, but timeline %s comes before it: where that one ended is unknown", names[i-1])
	case prev == nil:
	case prev.Timeline >= tl:
		v.problem(at, "the manifest's previous names timeline %s, which is not an earlier one", prev.Timeline)
	case i > 0 && prev.Timeline != names[i-1]:
		v.problem(at, "the manifest's previous names timeline %s, but the timeline before it is %s", prev.Timeline, names[i-1])
	}
}

// timelineListing is what one listing of a timeline's folder found.
type timelineListing struct {
	files  []fileListing
	strays []objstore.Entry
}

// fileListing is one binlog file of a timeline as stored.
type fileListing struct {
	ref           FileRef
	stored        []SegmentRef // segment objects in its folder, by offset
	compactedSize int64        // size of its compacted object, when ref.Compacted
}

func (v *verifier) listTimeline(ctx context.Context, tl string) (*timelineListing, error) {
	l := v.c.Layout
	prefix := l.TimelinePrefix(tl)
	entries, err := v.c.Store.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list timeline %s: %w", tl, err)
	}
	refs, err := v.c.Files(ctx, tl)
	if err != nil {
		return nil, err
	}
	lst := &timelineListing{}
	compacted := map[string]int64{}
	for _, e := range entries {
		name := strings.TrimPrefix(e.Key, prefix)
		if e.Dir || e.Key == l.TimelineKey(tl) {
			continue
		}
		if f, ok := ParseIndexName(name); ok && f != "" {
			continue
		}
		if f, ok := ParseCompactedName(name); ok && f != "" {
			compacted[f] = e.Size
			continue
		}
		lst.strays = append(lst.strays, e)
	}
	for _, r := range refs {
		fl := fileListing{ref: r, compactedSize: compacted[r.Name]}
		objs, err := v.c.Store.List(ctx, l.FilePrefix(tl, r.Name))
		if err != nil {
			return nil, fmt.Errorf("list %s/%s: %w", tl, r.Name, err)
		}
		for _, o := range objs {
			start, end, err := ParseSegmentName(o.Key)
			if o.Dir || err != nil {
				lst.strays = append(lst.strays, o)
				continue
			}
			fl.stored = append(fl.stored, SegmentRef{Key: o.Key, Start: start, End: end, StoredSize: o.Size})
		}
		sort.Slice(fl.stored, func(i, j int) bool { return fl.stored[i].Start < fl.stored[j].Start })
		lst.files = append(lst.files, fl)
	}
	return lst, nil
}

// unsettled says the listing may have caught uploads in flight: a file
// without index has a hole, or is followed by another file.
func (lst *timelineListing) unsettled() bool {
	for k, f := range lst.files {
		if f.ref.Indexed || len(f.stored) == 0 {
			continue
		}
		if _, rest := contiguous(f.stored); len(rest) > 0 || k < len(lst.files)-1 {
			return true
		}
	}
	return false
}

// contiguous splits segments sorted by offset into the run from offset 0
// and the rest, past the first hole.
func contiguous(segs []SegmentRef) (run, rest []SegmentRef) {
	var end uint64
	for i, s := range segs {
		if s.Start != end {
			return segs[:i], segs[i:]
		}
		end = s.End
	}
	return segs, nil
}

// fileResult is what the timeline needs to know of one checked file.
type fileResult struct {
	size     uint64 // end of its bytes stored without a gap from offset 0
	complete bool   // indexed, or its last event is a ROTATE or STOP
	next     string // the file the stream continued in; "" if unknown
}

// files checks a timeline's files in order, and that they follow each
// other: each complete file is followed by the one it rotated to, and no
// file without an index is followed by more. The durable run ends at the
// first incomplete file; segments stored past it are a hole in the newest
// timeline (an archiver that stopped deletes them when it resumes), and
// leftovers in an older one, which must still reach where the next
// timeline's manifest says it ended (end).
func (v *verifier) files(ctx context.Context, tl string, ti *TimelineInfo, files []fileListing, newest bool, end *TimelineEnd) error {
	if len(files) > 0 && ti != nil && files[0].ref.Name != ti.StartFile {
		v.note(Finding{Timeline: tl, File: files[0].ref.Name}, "the timeline started at %s (timeline.json), its oldest stored file is %s: the files before it were pruned, or are lost", ti.StartFile, files[0].ref.Name)
	}
	var (
		durable    = true // still in the run of stored bytes from the timeline's start
		durableEnd replication.Position
		hole       Finding // where that run stops, when something is stored past it
		past       []SegmentRef
		prev       *fileResult
		prevName   string
	)
	for _, f := range files {
		v.rep.Counts.Files++
		name := f.ref.Name
		at := Finding{Timeline: tl, File: name}
		if prev != nil && prev.complete && prev.next != "" && prev.next != name {
			v.problem(Finding{Timeline: tl, File: prev.next}, "binlog %s is missing: %s continued in it, but the next file stored is %s", prev.next, prevName, name)
		}
		if f.ref.Compacted && !f.ref.Indexed {
			v.problem(Finding{Timeline: tl, File: name, Key: v.c.Layout.CompactedKey(tl, name)}, "a compacted object without the file's index: readers do not use it (the index was lost)")
		}
		if !f.ref.Indexed && !durable {
			past = append(past, f.stored...)
			prev, prevName = nil, name
			continue
		}
		if !f.ref.Indexed {
			run, rest := contiguous(f.stored)
			res, fc, err := v.unindexedFile(ctx, tl, f, run)
			if err != nil {
				return err
			}
			if fc.absent {
				// Indexed and compacted, or pruned, since the listing?
				g, ok, err := v.relistFile(ctx, tl, name)
				if err != nil {
					return err
				}
				if !ok {
					v.note(at, "the file was removed while it was being verified (pruned)")
					continue
				}
				if g.ref.Indexed {
					f, fc = g, nil
				}
			}
			if fc != nil {
				v.commit(fc)
				durableEnd = replication.Position{File: name, Offset: res.size}
				off := res.size
				hole = Finding{Timeline: tl, File: name, Offset: &off}
				switch {
				case len(rest) > 0:
					durable, past = false, append(past, rest...)
					hole.Key = rest[0].Key
					hole.Message = fmt.Sprintf("bytes [%d,%d) are not stored", off, rest[0].Start)
				case res.complete:
					v.note(at, "the file is complete (its last event is a ROTATE or STOP) but has no index yet: binarc stream writes it when it resumes")
				default:
					durable = false
					hole.Message = fmt.Sprintf("the file has no index and ends at offset %d without a ROTATE or STOP: its end is not stored", off)
				}
				prev, prevName = res, name
				continue
			}
		}
		if !durable {
			v.problem(at, "the file has an index, but an earlier file (%s) is incomplete: the archive was changed by hand or is damaged (binarc stream will not resume it)", hole.File)
		}
		res, err := v.indexedFile(ctx, tl, f)
		if err != nil {
			return err
		}
		if res == nil {
			continue // pruned while we looked
		}
		if durable {
			durableEnd = replication.Position{File: name, Offset: res.size}
		}
		prev, prevName = res, name
	}
	if end != nil && end.File != "" && comparePositions(durableEnd, replication.Position{File: end.File, Offset: end.Offset}) < 0 {
		v.problem(Finding{Timeline: tl, File: end.File, Offset: &end.Offset}, "the next timeline's manifest says this one ended at %s:%d, but its archive runs without a gap only to %s:%d", end.File, end.Offset, orNone(durableEnd.File), durableEnd.Offset)
	}
	if len(past) == 0 {
		return nil
	}
	last := past[len(past)-1]
	if newest {
		v.problem(hole, "%s, but the archive holds %s after it (through %s): a hole in the archive, and restores stop before it. A stopped archiver deletes the segments past the hole when it resumes and archives the range again if the primary still has it", hole.Message, segmentCount(len(past)), last.Key)
		return nil
	}
	v.note(hole, "%s; the archive holds %s after it (through %s), leftovers from before the timeline ended: not part of the archive", hole.Message, segmentCount(len(past)), last.Key)
	return nil
}

func segmentCount(n int) string {
	if n == 1 {
		return "1 segment"
	}
	return fmt.Sprintf("%d segments", n)
}

func orNone(s string) string {
	if s == "" {
		return "(nothing)"
	}
	return s
}

// comparePositions orders binlog positions; the empty position is first.
func comparePositions(a, b replication.Position) int {
	switch {
	case a.File == b.File:
		return cmpUint(a.Offset, b.Offset)
	case a.File == "":
		return -1
	case b.File == "":
		return 1
	}
	return replication.CompareBinlogNames(a.File, b.File)
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

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
	f.Severity, f.Message = SeverityProblem, fmt.Sprintf(format, args...)
	fc.add(f)
}

func (fc *fileCheck) note(f Finding, format string, args ...any) {
	f.Severity, f.Message = SeverityNote, fmt.Sprintf(format, args...)
	fc.add(f)
}

func (v *verifier) commit(fc *fileCheck) {
	for _, f := range fc.findings {
		v.emit(f)
	}
	v.rep.Counts.add(fc.counts)
}

// indexedFile checks a complete file. If objects went missing, it lists
// the timeline again: a compaction may have replaced the segments, or a
// prune removed the file, since the listing; it returns nil then.
func (v *verifier) indexedFile(ctx context.Context, tl string, f fileListing) (*fileResult, error) {
	fc, res, err := v.checkIndexed(ctx, tl, f)
	if err != nil || !fc.absent || f.ref.Compacted {
		if err == nil {
			v.commit(fc)
		}
		return res, err
	}
	g, ok, err := v.relistFile(ctx, tl, f.ref.Name)
	if err != nil {
		return nil, err
	}
	if !ok {
		v.note(Finding{Timeline: tl, File: f.ref.Name}, "the file was removed while it was being verified (pruned)")
		return nil, nil
	}
	if g.ref.Compacted && g.ref.Indexed {
		if fc, res, err = v.checkIndexed(ctx, tl, g); err != nil {
			return nil, err
		}
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
	res := &fileResult{size: ix.Size, complete: true, next: nextFile(ix)}
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
	if ix.Version < 1 || ix.Version > LayoutVersion {
		fc.problem(at, "index version %d is not one this binarc knows (1 to %d)", ix.Version, LayoutVersion)
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
func (v *verifier) checkSegments(ctx context.Context, fc *fileCheck, fs *FileState, f fileListing, w *eventWalker) error {
	stored := map[string]SegmentRef{}
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
			fc.problem(at, "segment [%d,%d) is in the file's index but not stored", s.Start, s.End)
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

// checkCompacted checks an indexed file kept as one compacted object: its
// size against the index, then its bytes, streamed.
func (v *verifier) checkCompacted(ctx context.Context, fc *fileCheck, fs *FileState, f fileListing, ix *FileIndex, w *eventWalker) error {
	at := Finding{Timeline: fs.Timeline, File: fs.File, Key: fs.CompactedKey}
	var sum int64
	for _, s := range ix.Segments {
		sum += s.StoredSize
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

// unindexedFile checks the bytes of a file without index, the segments
// stored without a gap from offset 0 (run).
func (v *verifier) unindexedFile(ctx context.Context, tl string, f fileListing, run []SegmentRef) (*fileResult, *fileCheck, error) {
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
			res.next = nextFile(&FileIndex{File: f.ref.Name})
		}
	}
	return res, fc, nil
}

// walkSegments reads segs in order, a few at once, and writes each to w.
// Those in absent are known to be missing (already reported).
func (v *verifier) walkSegments(ctx context.Context, fc *fileCheck, w *eventWalker, segs []SegmentRef, absent map[int]bool) error {
	return v.c.readSegments(ctx, segs, v.opts.Concurrency, absent, func(i int, plain []byte, err error) error {
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

// readSegments reads segs in order, up to n at once, and hands each to fn
// with its read error; those in skip are handed over unread. At most n
// segments are held at a time.
func (c Catalog) readSegments(ctx context.Context, segs []SegmentRef, n int, skip map[int]bool, fn func(i int, plain []byte, err error) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type fetched struct {
		data []byte
		err  error
	}
	results := make([]chan fetched, len(segs))
	for i := range results {
		results[i] = make(chan fetched, 1)
	}
	sem := make(chan struct{}, n)
	go func() {
		for i, s := range segs {
			if skip[i] {
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				data, err := c.ReadSegment(ctx, s.Key)
				results[i] <- fetched{data, err}
			}()
		}
	}()
	for i := range segs {
		if skip[i] {
			if err := fn(i, nil, nil); err != nil {
				return err
			}
			continue
		}
		var r fetched
		select {
		case r = <-results[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		err := fn(i, r.data, r.err)
		<-sem
		if err != nil {
			return err
		}
	}
	return nil
}
