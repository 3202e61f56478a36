package stream

import (
	"context"
	"errors"
	"fmt"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
	"github.com/rs/zerolog"
)

// ResumePoint is where an archiver continues a timeline.
type ResumePoint struct {
	Timeline string
	Info     *archive.TimelineInfo
	// Position is the durable position to stream from. Offset 0 means the
	// start of the file (nothing of it archived yet).
	Position replication.Position
	// ExpectFDE is the archived format description of Position.File when
	// resuming inside it, to check the primary still has the same file.
	ExpectFDE []byte
	// Durable is the durable position, with the time of its last event.
	Durable Durable
	// Uncompacted lists the complete files not yet compacted.
	Uncompacted []string
}

// findResume works out the durable position of timeline tl from the store
// alone. Files with an index are complete. The first file without one is
// checked segment by segment: its contiguous prefix from offset 0 is
// durable; if that prefix ends the file (its last event is a ROTATE or STOP)
// the file is complete, its index is written now, and the next file is
// checked the same way. Segments past the first hole were stored by
// uploads that ran ahead of an earlier one that never finished: they were
// never durable, and they are deleted so the stream can cut that range
// afresh.
func findResume(ctx context.Context, cat archive.Catalog, tl string, log zerolog.Logger) (*ResumePoint, error) {
	ti, err := cat.ReadTimeline(ctx, tl)
	if err != nil {
		return nil, fmt.Errorf("timeline %s has no readable manifest (%w): run binarc verify", tl, err)
	}
	rp := &ResumePoint{Timeline: tl, Info: ti, Position: replication.Position{File: ti.StartFile}}
	files, err := cat.Files(ctx, tl)
	if err != nil {
		return nil, err
	}
	var orphans []archive.SegmentRef
	done := false // the durable prefix ended; everything after is orphaned
	for _, f := range files {
		if done {
			segs, err := cat.Segments(ctx, tl, f.Name)
			if err != nil {
				return nil, err
			}
			if f.Indexed {
				return nil, fmt.Errorf("timeline %s: %s is indexed but an earlier file is incomplete: the archive was changed by hand; run binarc verify", tl, f.Name)
			}
			orphans = append(orphans, segs...)
			continue
		}
		if f.Indexed {
			if !f.Compacted {
				rp.Uncompacted = append(rp.Uncompacted, f.Name)
			}
			ix, err := cat.ReadIndex(ctx, tl, f.Name)
			if err != nil {
				return nil, err
			}
			rp.Position = replication.Position{File: archive.NextFile(ix), Offset: 0}
			rp.Durable = Durable{Timeline: tl, Position: replication.Position{File: f.Name, Offset: ix.Size}, EventTime: ix.LastEventTime}
			rp.ExpectFDE = nil
			continue
		}
		segs, err := cat.Segments(ctx, tl, f.Name)
		if err != nil {
			return nil, err
		}
		var end uint64
		n := 0
		for n < len(segs) && segs[n].Start == end {
			end = segs[n].End
			n++
		}
		orphans = append(orphans, segs[n:]...)
		if n == 0 {
			// Nothing durable of this file: resume at its start.
			rp.Position = replication.Position{File: f.Name, Offset: 0}
			rp.ExpectFDE = nil
			done = true
			continue
		}
		last, err := cat.ReadSegmentFacts(ctx, segs[n-1])
		if err != nil {
			return nil, err
		}
		lastType := gomysql.EventType(last.LastEventType)
		rp.Durable = Durable{Timeline: tl, Position: replication.Position{File: f.Name, Offset: end}, EventTime: last.LastEventTime}
		if replication.IsFileEnd(lastType) {
			next := ""
			if lastType == gomysql.ROTATE_EVENT {
				next = last.Next
			}
			log.Info().Str("timeline", tl).Str("binlog", f.Name).Msg("file is complete but was not indexed (archiver stopped in between): writing its index")
			if err := cat.WriteFileIndex(ctx, tl, f.Name, next, nil); err != nil {
				return nil, err
			}
			ix, err := cat.ReadIndex(ctx, tl, f.Name)
			if err != nil {
				return nil, err
			}
			rp.Position = replication.Position{File: archive.NextFile(ix), Offset: 0}
			rp.ExpectFDE = nil
			continue
		}
		rp.Position = replication.Position{File: f.Name, Offset: end}
		first, err := cat.ReadSegmentFacts(ctx, segs[0])
		if err != nil {
			return nil, err
		}
		if rp.ExpectFDE = first.FDE; first.FDE == nil {
			return nil, fmt.Errorf("segment %s: no format description event at offset 4", segs[0].Key)
		}
		done = true
	}
	for _, o := range orphans {
		log.Warn().Str("key", o.Key).Msg("deleting a segment stored past a hole in the archive (never durable; will be archived again)")
		err := cat.Store.Delete(ctx, o.Key)
		if errors.Is(err, objstore.ErrLocked) {
			return nil, fmt.Errorf("%w: segment %s was stored past a hole (never durable) and must go before the stream resumes, but %v: delete it with s3:BypassGovernanceRetention (governance mode), or wait", archive.ErrFatal, o.Key, err)
		}
		if err != nil && !errors.Is(err, objstore.ErrNotExist) {
			return nil, fmt.Errorf("delete orphan segment %s: %w", o.Key, err)
		}
	}
	return rp, nil
}
