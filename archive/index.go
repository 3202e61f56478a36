package archive

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// FileIndex describes one complete binlog file in the archive. It is
// written once, after every segment of the file is stored, and is what
// readers use instead of listing the file's segments.
type FileIndex struct {
	Version  int    `json:"version"`
	Timeline string `json:"timeline"`
	File     string `json:"file"`
	// Size is the file's length in bytes: the end of its last segment.
	Size uint64 `json:"size"`
	// Closed says the primary closed the file properly: its last event is
	// a ROTATE (rotation) or STOP (shutdown), and the primary cleared the
	// in-use flag of the file's format description. A file that ended any
	// other way (the primary crashed) keeps the flag set on the primary's
	// disk, and so does its rebuilt copy.
	Closed bool `json:"closed"`
	// Next is the file the stream continued in.
	Next           string    `json:"next,omitempty"`
	FirstEventTime time.Time `json:"first_event_time"`
	LastEventTime  time.Time `json:"last_event_time"`
	FirstGTID      string    `json:"first_gtid,omitempty"`
	LastGTID       string    `json:"last_gtid,omitempty"`
	// StartGTIDState is the GTID state at the start of the file: its
	// Gtid_list (MariaDB) or Previous_gtids (MySQL) event. Absent in
	// indexes written before layout version 2: read it from the file.
	StartGTIDState *string       `json:"start_gtid_state,omitempty"`
	Segments       []SegmentInfo `json:"segments"`
}

// SegmentInfo describes one stored segment.
type SegmentInfo struct {
	Start          uint64    `json:"start"`
	End            uint64    `json:"end"`
	StoredSize     int64     `json:"stored_size"`
	Events         int       `json:"events"`
	FirstEventTime time.Time `json:"first_event_time"`
	LastEventTime  time.Time `json:"last_event_time"`
	FirstGTID      string    `json:"first_gtid,omitempty"`
	LastGTID       string    `json:"last_gtid,omitempty"`
	// LastEventType is the binlog event type of the segment's last event.
	LastEventType uint8 `json:"last_event_type"`
	// StartGTIDState is the file's starting GTID state, in the segment
	// that holds the event recording it (the first).
	StartGTIDState *string `json:"start_gtid_state,omitempty"`
}

func SegmentInfoOf(s *Segment, stored int64) SegmentInfo {
	return SegmentInfo{
		Start: s.Start, End: s.End, StoredSize: stored, Events: s.Events,
		FirstEventTime: UnixTime(s.FirstTime), LastEventTime: UnixTime(s.LastTime),
		FirstGTID: s.FirstGTID, LastGTID: s.LastGTID, LastEventType: uint8(s.LastType),
		StartGTIDState: s.StartState,
	}
}

func UnixTime(sec uint32) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(int64(sec), 0).UTC()
}

// newFileIndex summarises the segments of a complete file.
func newFileIndex(tl, file, next string, segs []SegmentInfo) *FileIndex {
	ix := &FileIndex{Version: LayoutVersionPlain, Timeline: tl, File: file, Next: next, Segments: segs}
	if len(segs) > 0 {
		ix.Closed = replication.IsFileEnd(gomysql.EventType(segs[len(segs)-1].LastEventType))
	}
	for _, s := range segs {
		if ix.FirstEventTime.IsZero() {
			ix.FirstEventTime = s.FirstEventTime
		}
		if !s.LastEventTime.IsZero() {
			ix.LastEventTime = s.LastEventTime
		}
		if ix.FirstGTID == "" {
			ix.FirstGTID = s.FirstGTID
		}
		if ix.StartGTIDState == nil && s.Start == 0 {
			ix.StartGTIDState = s.StartGTIDState
		}
		if s.LastGTID != "" {
			ix.LastGTID = s.LastGTID
		}
		ix.Size = s.End
	}
	return ix
}

// validate checks that the index describes a contiguous file from offset 0.
func (ix *FileIndex) validate() error {
	var off uint64
	for _, s := range ix.Segments {
		if s.Start != off || s.End <= s.Start {
			return fmt.Errorf("index of %s: segment [%d,%d) does not follow offset %d", ix.File, s.Start, s.End, off)
		}
		off = s.End
	}
	if len(ix.Segments) == 0 || off != ix.Size {
		return fmt.Errorf("index of %s: segments cover %d bytes, index says %d", ix.File, off, ix.Size)
	}
	return nil
}

func MarshalJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("archive: marshal %T: %v", v, err)) // only our own plain structs
	}
	return append(b, '\n')
}

// NextFile is the file after a complete one: the one its ROTATE named, or
// else (a file ended by a STOP event at shutdown) the next sequence number,
// which is what the server opens at its next start.
func NextFile(ix *FileIndex) string {
	if ix.Next != "" {
		return ix.Next
	}
	base, seq, ok := replication.SplitBinlogName(ix.File)
	if !ok {
		return ix.File
	}
	width := len(ix.File) - len(base) - 1
	s := strconv.FormatUint(seq+1, 10)
	for len(s) < width {
		s = "0" + s
	}
	return base + "." + s
}
