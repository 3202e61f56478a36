package verify

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/binarc/binarc/archive"
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
		if _, _, err := archive.ParseTimeline(strings.TrimPrefix(e.Key, l.TimelinesPrefix())); !e.Dir || err != nil {
			v.stray(e)
		}
	}
	names, err := v.c.Timelines(ctx)
	if err != nil {
		return err
	}
	infos := make([]*archive.TimelineInfo, len(names))
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
func (v *verifier) timeline(ctx context.Context, names []string, infos []*archive.TimelineInfo, i int) error {
	tl, ti := names[i], infos[i]
	v.rep.Counts.Timelines++
	if ti != nil {
		v.checkManifest(names, ti, i)
	}
	v.checkJoin(ctx, names, i)
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
	var end *archive.TimelineEnd
	if !newest && infos[i+1] != nil && infos[i+1].Previous != nil && infos[i+1].Previous.Timeline == tl {
		end = infos[i+1].Previous
	}
	return v.files(ctx, tl, ti, lst.files, newest, end)
}

// checkJoin checks a recorded join: readable, of this timeline, joined to
// an earlier one.
func (v *verifier) checkJoin(ctx context.Context, names []string, i int) {
	tl := names[i]
	at := Finding{Timeline: tl, Key: v.c.Layout.JoinKey(tl)}
	j, err := archive.ReadJoin(ctx, v.c, tl)
	switch {
	case err != nil:
		v.problem(at, "cannot read the join: %v", err)
	case j == nil:
	case j.Timeline != tl:
		v.problem(at, "the join is of timeline %q", j.Timeline)
	case j.Previous >= tl || (!slices.Contains(names[:i], j.Previous) && i > 0 && j.Previous > names[i-1]):
		// (An earlier timeline may be gone: retention deletes whole
		// timelines from the start.)
		v.problem(at, "the join names previous timeline %q, which is not an earlier timeline of the archive", j.Previous)
	case j.Parent != "" && j.Parent >= j.Previous:
		v.problem(at, "the join names parent timeline %q, which is not older than its previous timeline %q", j.Parent, j.Previous)
	}
}

func (v *verifier) checkManifest(names []string, ti *archive.TimelineInfo, i int) {
	tl := names[i]
	at := Finding{Timeline: tl, Key: v.c.Layout.TimelineKey(tl)}
	if ti.Timeline != tl {
		v.problem(at, "the manifest is of timeline %q", ti.Timeline)
	}
	if ti.Version < 1 || ti.Version > archive.LayoutVersion {
		v.problem(at, "manifest version %d is not one this binarc knows (1 to %d)", ti.Version, archive.LayoutVersion)
	}
	if archive.ValidateName("binlog file", ti.StartFile) != nil {
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
	ref           archive.FileRef
	stored        []archive.SegmentRef // segment objects in its folder, by offset
	compactedSize int64                // size of its compacted object, when ref.Compacted
	head          bool                 // the timeline's oldest stored file
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
		if e.Dir || e.Key == l.TimelineKey(tl) || e.Key == l.JoinKey(tl) {
			continue
		}
		if f, ok := archive.ParseIndexName(name); ok && f != "" {
			continue
		}
		if f, ok := archive.ParseCompactedName(name); ok && f != "" {
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
			start, end, err := archive.ParseSegmentName(o.Key)
			if o.Dir || err != nil {
				lst.strays = append(lst.strays, o)
				continue
			}
			fl.stored = append(fl.stored, archive.SegmentRef{Key: o.Key, Start: start, End: end, StoredSize: o.Size})
		}
		sort.Slice(fl.stored, func(i, j int) bool { return fl.stored[i].Start < fl.stored[j].Start })
		fl.head = len(lst.files) == 0
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
func contiguous(segs []archive.SegmentRef) (run, rest []archive.SegmentRef) {
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
func (v *verifier) files(ctx context.Context, tl string, ti *archive.TimelineInfo, files []fileListing, newest bool, end *archive.TimelineEnd) error {
	if len(files) == 0 {
		if end != nil && end.File != "" {
			// A prune deletes a timeline's files, then its manifest.
			v.note(Finding{Timeline: tl}, "the timeline holds no binlog file, though the next timeline's manifest says it ended at %s:%d: pruned (a prune that stopped half way), or lost", end.File, end.Offset)
		}
		return nil
	}
	if ti != nil && files[0].ref.Name != ti.StartFile {
		v.note(Finding{Timeline: tl, File: files[0].ref.Name}, "the timeline started at %s (timeline.json), its oldest stored file is %s: the files before it were pruned, or are lost", ti.StartFile, files[0].ref.Name)
	}
	var (
		durable    = true // still in the run of stored bytes from the timeline's start
		durableEnd replication.Position
		hole       Finding // where that run stops, when something is stored past it
		past       []archive.SegmentRef
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
	v.afterDurable(tl, newest, end, durableEnd, hole, past)
	return nil
}

// afterDurable reports what the timeline holds past the end of its run
// of stored bytes (durableEnd, where hole says why it stops): a hole with
// segments after it in the newest timeline, leftovers in an older one, and
// an end the next timeline's manifest names beyond it.
func (v *verifier) afterDurable(tl string, newest bool, end *archive.TimelineEnd, durableEnd replication.Position, hole Finding, past []archive.SegmentRef) {
	if end != nil && end.File != "" && comparePositions(durableEnd, replication.Position{File: end.File, Offset: end.Offset}) < 0 {
		v.problem(Finding{Timeline: tl, File: end.File, Offset: &end.Offset}, "the next timeline's manifest says this one ended at %s:%d, but its archive runs without a gap only to %s:%d", end.File, end.Offset, orNone(durableEnd.File), durableEnd.Offset)
	}
	if len(past) == 0 {
		return
	}
	last := past[len(past)-1]
	if newest {
		v.problem(hole, "%s, but the archive holds %s after it (through %s): a hole in the archive, and restores stop before it. A stopped archiver deletes the segments past the hole when it resumes and archives the range again if the primary still has it", hole.Message, segmentCount(len(past)), last.Key)
		return
	}
	v.note(hole, "%s; the archive holds %s after it (through %s), leftovers from before the timeline ended: not part of the archive", hole.Message, segmentCount(len(past)), last.Key)
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
