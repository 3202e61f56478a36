package verify

import (
	"bytes"
	"fmt"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// maxSegmentFindings caps the problems listed for one segment: a segment
// whose events are all wrong says so once, with a count, not a million
// times.
const maxSegmentFindings = 5

// eventWalker checks one binlog file's bytes as they stream past in offset
// order, holding at most one event: the magic and the format description
// at the start, each event's size, end position (log_pos) and CRC32, that
// every segment ends on an event boundary, that nothing follows a ROTATE or
// STOP, and, for an indexed file, each segment's event count and last event
// type against the index. It never fails; it reports.
type eventWalker struct {
	tl, file string
	segs     []archive.SegmentRef
	expect   []archive.SegmentInfo // from the index, aligned with segs; nil without one
	// object, when set, is the key every finding names: the compacted
	// object the whole file streams from.
	object string
	report func(Finding)

	seg     int    // the segment holding off
	off     uint64 // file offset of the next byte to check
	pending []byte // the start of an event not yet whole
	lost    bool   // event boundaries lost: skip to the end of the segment

	checksum  checksumMode
	events    int64
	lastType  gomysql.EventType
	endedAt   uint64 // offset of the ROTATE or STOP, once seen
	ended     bool
	rotateTo  string // the file a ROTATE names
	afterEnd  bool   // an event after the ROTATE/STOP was reported
	segEvents int
	segLast   gomysql.EventType
	segLost   bool // part of the segment could not be walked
	segFound  int  // findings in this segment
	// tailKnown: the last segment was walked whole, so lastType is the
	// file's last event.
	tailKnown bool
}

type checksumMode int

const (
	checksumUnknown checksumMode = iota // no format description read
	checksumNone                        // binlog_checksum=NONE, or a server too old for checksums
	checksumCRC32
)

func newEventWalker(tl, file string, segs []archive.SegmentRef, expect []archive.SegmentInfo, report func(Finding)) *eventWalker {
	if len(expect) != len(segs) {
		expect = nil
	}
	return &eventWalker{tl: tl, file: file, segs: segs, expect: expect, report: report}
}

// problem reports a problem at offset off of the current segment.
func (w *eventWalker) problem(off uint64, format string, args ...any) {
	w.segFound++
	if w.segFound > maxSegmentFindings {
		return
	}
	f := Finding{Severity: SeverityProblem, Timeline: w.tl, File: w.file, Offset: &off, Message: fmt.Sprintf(format, args...)}
	switch {
	case w.object != "":
		f.Key = w.object
	case w.seg < len(w.segs):
		f.Key = w.segs[w.seg].Key
	}
	w.report(f)
}

// Write takes the next bytes of the file. It always takes them all.
func (w *eventWalker) Write(p []byte) (int, error) {
	n := len(p)
	aliased := len(w.pending) > 0
	if aliased {
		w.pending = append(w.pending, p...)
		p = w.pending
	}
	k := w.consume(p)
	switch {
	case aliased && k > 0:
		w.pending = w.pending[:copy(w.pending, p[k:])]
	case !aliased:
		w.pending = append(w.pending[:0], p[k:]...)
	}
	if len(w.pending) == 0 && cap(w.pending) > 1<<20 {
		w.pending = nil // do not keep a huge event's buffer
	}
	return n, nil
}

// consume checks the whole events at the start of data, which begins at
// w.off, and returns how many bytes it used; the rest is an event not yet
// whole.
func (w *eventWalker) consume(data []byte) int {
	done := 0
	for done < len(data) {
		avail := data[done:]
		if w.seg >= len(w.segs) {
			w.problem(w.off, "%d bytes past the end of the file's last segment", len(avail))
			w.off += uint64(len(avail))
			return len(data)
		}
		end := w.segs[w.seg].End
		if w.lost {
			k := min(uint64(len(avail)), end-w.off)
			done += int(k)
			w.off += k
			w.endSegment()
			continue
		}
		if w.off == 0 {
			if len(avail) < replication.MagicLen {
				return done
			}
			if !bytes.Equal(avail[:replication.MagicLen], replication.Magic) {
				w.problem(0, "the file does not start with the binlog magic (fe 62 69 6e): % x", avail[:replication.MagicLen])
				w.lose()
				continue
			}
			done += replication.MagicLen
			w.off = replication.MagicLen
			w.endSegment()
			continue
		}
		if len(avail) < replication.HeaderLen {
			return done
		}
		h, _ := replication.ParseHeader(avail)
		size := uint64(h.EventSize)
		if size < replication.HeaderLen || w.off+size > end {
			w.problem(w.off, "event header says %d bytes, which does not fit in the segment [%d,%d): event boundaries lost until the next segment", size, w.segs[w.seg].Start, end)
			w.lose()
			continue
		}
		if uint64(len(avail)) < size {
			return done
		}
		w.event(h, avail[:size])
		done += int(size)
		w.off += size
		w.endSegment()
	}
	return done
}

func (w *eventWalker) lose() {
	w.lost, w.segLost = true, true
}

// event checks one whole event at w.off.
func (w *eventWalker) event(h replication.Header, raw []byte) {
	end := w.off + uint64(len(raw))
	if w.ended && !w.afterEnd {
		w.afterEnd = true
		w.problem(w.off, "%s event after the file's %s at offset %d, which must be its last event", h.Type, w.lastType, w.endedAt)
	}
	if w.off == replication.MagicLen {
		if h.Type != gomysql.FORMAT_DESCRIPTION_EVENT {
			w.problem(w.off, "the first event is %s, not a format description", h.Type)
		} else {
			w.formatDescription(raw)
		}
	} else if w.checksum == checksumCRC32 && !replication.HasChecksum(raw) {
		w.problem(w.off, "CRC32 mismatch in %s event [%d,%d)", h.Type, w.off, end)
	}
	if h.LogPos != uint32(end) { // log_pos is 32 bits: past 4 GiB it wraps
		w.problem(w.off, "%s event [%d,%d) has log_pos %d, want %d (its end modulo 2^32)", h.Type, w.off, end, h.LogPos, uint32(end))
	}
	w.events++
	w.segEvents++
	w.lastType, w.segLast = h.Type, h.Type
	if replication.IsFileEnd(h.Type) && !w.ended {
		w.ended, w.endedAt = true, w.off
		if h.Type == gomysql.ROTATE_EVENT {
			w.rotateTo = archive.RotateTarget(raw, w.off)
		}
	}
}

// formatDescription learns from the format description whether the file's
// events carry a CRC32, and checks its own (replication.FormatChecksum).
func (w *eventWalker) formatDescription(raw []byte) {
	aware, alg := replication.FormatChecksum(raw)
	if !aware {
		w.checksum = checksumNone
		return
	}
	if !replication.HasChecksum(raw) {
		w.problem(w.off, "CRC32 mismatch in the format description event")
	}
	switch alg {
	case replication.ChecksumNone:
		w.checksum = checksumNone
	case replication.ChecksumCRC32:
		w.checksum = checksumCRC32
	default:
		w.problem(w.off, "the format description names checksum algorithm %d, neither NONE (0) nor CRC32 (1): events are not checked", alg)
		w.checksum = checksumNone
	}
}

// endSegment moves on when w.off reached the end of the current segment,
// checking what the index says of it.
func (w *eventWalker) endSegment() {
	if w.seg >= len(w.segs) || w.off != w.segs[w.seg].End {
		return
	}
	s := w.segs[w.seg]
	if w.expect != nil && !w.segLost {
		want := w.expect[w.seg]
		if want.Events != w.segEvents {
			w.problem(s.Start, "the index says segment [%d,%d) holds %d events, it holds %d", s.Start, s.End, want.Events, w.segEvents)
		}
		if w.segEvents > 0 && want.LastEventType != uint8(w.segLast) {
			w.problem(s.Start, "the index says segment [%d,%d) ends with a %s event, it ends with a %s", s.Start, s.End, gomysql.EventType(want.LastEventType), w.segLast)
		}
	}
	if w.seg == len(w.segs)-1 {
		w.tailKnown = !w.segLost
	}
	if more := w.segFound - maxSegmentFindings; more > 0 {
		w.segFound = 0
		w.problem(s.Start, "and %d more problems in segment [%d,%d)", more, s.Start, s.End)
	}
	w.seg++
	w.lost, w.segLost, w.segEvents, w.segFound = false, false, 0, 0
}

// segmentDone is called after the last byte of a segment was written,
// when each segment is written on its own: an event it left unfinished is
// cut by the segment boundary.
func (w *eventWalker) segmentDone() {
	if len(w.pending) == 0 {
		return
	}
	s := w.segs[w.seg]
	w.problem(w.off, "segment [%d,%d) ends inside an event (%d bytes of it at its end)", s.Start, s.End, len(w.pending))
	w.pending = w.pending[:0]
	w.off = s.End
	w.segLost = true
	w.endSegment()
}

// skip passes over segment i, which could not be read (the caller
// reports why).
func (w *eventWalker) skip(i int) {
	w.pending = w.pending[:0]
	w.seg, w.off, w.segLost = i, w.segs[i].End, true
	w.endSegment()
}

// finish checks the end of the file.
func (w *eventWalker) finish() {
	if len(w.pending) > 0 {
		w.problem(w.off, "the file ends inside an event: %d bytes of it at offset %d", len(w.pending), w.off)
	}
	if w.seg < len(w.segs) {
		w.problem(w.off, "the file's bytes end at offset %d, its segments at %d", w.off, w.segs[len(w.segs)-1].End)
	}
}
