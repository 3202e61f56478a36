package binlogtest

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// Span is one transaction of a binlog file: from its GTID event to the
// event before the next GTID event or the next event outside any
// transaction (a rotation, a binlog checkpoint, a GTID list, a stop).
type Span struct {
	Start, End uint64
}

// Transactions lists the transactions of a whole binlog file, in order.
func Transactions(file []byte) ([]Span, error) {
	var out []Span
	open := false
	err := replication.Events(file, 0, func(off uint64, h replication.Header, raw []byte) error {
		switch h.Type {
		case gomysql.MARIADB_GTID_EVENT, gomysql.GTID_EVENT, gomysql.ANONYMOUS_GTID_EVENT:
			out = append(out, Span{Start: off, End: off + uint64(len(raw))})
			open = true
		case gomysql.ROTATE_EVENT, gomysql.STOP_EVENT, gomysql.MARIADB_BINLOG_CHECKPOINT_EVENT,
			gomysql.MARIADB_GTID_LIST_EVENT, gomysql.PREVIOUS_GTIDS_EVENT, gomysql.FORMAT_DESCRIPTION_EVENT:
			open = false
		default:
			if open {
				out[len(out)-1].End = off + uint64(len(raw))
			}
		}
		return nil
	})
	return out, err
}

// Splice replaces file[from:to] with insert (whole events, e.g. a
// transaction cut from another file) and makes the result a sound binlog
// file again: every event from from on gets its end position in its
// header and, when the file has checksums, a valid CRC32. This is how
// tests forge an archive that format checks cannot tell from a real one.
func Splice(file []byte, from, to uint64, insert []byte) ([]byte, error) {
	if from > to || to > uint64(len(file)) || from < 4 {
		return nil, fmt.Errorf("splice [%d,%d) of a %d-byte file", from, to, len(file))
	}
	sums := false
	if err := replication.Events(file, 0, func(_ uint64, h replication.Header, raw []byte) error {
		if h.Type == gomysql.FORMAT_DESCRIPTION_EVENT {
			sums = replication.HasChecksum(raw)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	out := make([]byte, 0, uint64(len(file))-(to-from)+uint64(len(insert)))
	out = append(append(append(out, file[:from]...), insert...), file[to:]...)
	err := replication.Events(out, 0, func(off uint64, _ replication.Header, raw []byte) error {
		if off < from {
			return nil
		}
		binary.LittleEndian.PutUint32(raw[13:], uint32(off+uint64(len(raw))))
		if sums {
			binary.LittleEndian.PutUint32(raw[len(raw)-4:], crc32.ChecksumIEEE(raw[:len(raw)-4]))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("splice [%d,%d): the result does not parse (from and to must be event boundaries): %w", from, to, err)
	}
	return out, nil
}
