package archive

import (
	"errors"
	"time"

	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// Segment is a sealed, contiguous byte range [Start,End) of one binlog
// file, cut at event boundaries. The segment at Start 0 begins with the
// binlog magic.
type Segment struct {
	Timeline string
	File     string
	Start    uint64
	End      uint64
	// Data is the file's bytes [Start,End) as one zstd frame: events are
	// compressed as they arrive, so only compressed bytes wait in memory,
	// in pieces (Chunks).
	Data      objstore.Chunks
	Events    int
	FirstTime uint32 // event header timestamps
	LastTime  uint32
	FirstGTID string
	LastGTID  string
	LastType  gomysql.EventType // type of the last event
	// Next is the file a ROTATE event in the segment names, and FDE the
	// format description of a segment at Start 0: an encrypted segment
	// carries them in its clear header for a writer that cannot decrypt.
	Next string
	FDE  []byte
	// StartState is the GTID state at the start of the file (its
	// Gtid_list or Previous_gtids event), when this segment holds it.
	StartState *string
	// Received is when the segment's first event arrived from the primary:
	// the loss window of the segment is measured from it.
	Received time.Time
}

// RotateTarget reads the next file's name from the ROTATE event that ends
// a segment: position (8 bytes) then the name, then a 4-byte CRC32 when the
// file has checksums.
func RotateTarget(plain []byte, start uint64) string {
	var name string
	_ = replication.Events(plain, start, func(_ uint64, h replication.Header, raw []byte) error {
		if h.Type == gomysql.ROTATE_EVENT && len(raw) > replication.HeaderLen+8 {
			body := raw[replication.HeaderLen+8:]
			if replication.HasChecksum(raw) {
				body = body[:len(body)-4]
			}
			name = string(body)
		}
		return nil
	})
	return name
}

// ErrConflict marks an object that exists with other content than ours.
var ErrConflict = errors.New("conflict")

// ErrFatal marks archive states no retry can fix.
var ErrFatal = errors.New("archive needs attention")

// LayoutInfo is layout.json: the version of the layout an archive is written in.
type LayoutInfo struct {
	Version int `json:"version"`
}
