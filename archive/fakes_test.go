package archive

import (
	"encoding/binary"
	"hash/crc32"
	"time"

	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// fakeBinlog makes well-formed binlog events (v4 header, CRC32) for tests
// that do not need a server.
type fakeBinlog struct {
	file string
	pos  uint64
	ts   uint32
}

func newFakeBinlog(file string) *fakeBinlog {
	return &fakeBinlog{file: file, pos: replication.MagicLen, ts: uint32(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).Unix())}
}

// next returns an event of the given type with size bytes in all.
func (f *fakeBinlog) next(t gomysql.EventType, size int) replication.Event {
	if size < replication.HeaderLen+4 {
		size = replication.HeaderLen + 4
	}
	raw := make([]byte, size)
	end := f.pos + uint64(size)
	binary.LittleEndian.PutUint32(raw[0:], f.ts)
	raw[4] = byte(t)
	binary.LittleEndian.PutUint32(raw[5:], 1)
	binary.LittleEndian.PutUint32(raw[9:], uint32(size))
	binary.LittleEndian.PutUint32(raw[13:], uint32(end))
	for i := replication.HeaderLen; i < size-4; i++ {
		raw[i] = byte(i * 7)
	}
	if t == gomysql.ROTATE_EVENT {
		// position then the name of the next file
		body := raw[replication.HeaderLen : size-4]
		binary.LittleEndian.PutUint64(body, 4)
		copy(body[8:], f.nextName())
	}
	binary.LittleEndian.PutUint32(raw[size-4:], crc32.ChecksumIEEE(raw[:size-4]))
	ev := replication.Event{File: f.file, Start: f.pos, End: end, Type: t, Timestamp: f.ts, Raw: raw}
	f.pos = end
	f.ts++
	return ev
}

func (f *fakeBinlog) nextName() string {
	base, seq, _ := replication.SplitBinlogName(f.file)
	return base + "." + fmtSeq(seq+1)
}

func fmtSeq(n uint64) string {
	s := []byte("000000")
	for i := len(s) - 1; i >= 0 && n > 0; i-- {
		s[i] = byte('0' + n%10)
		n /= 10
	}
	return string(s)
}

// rotateSize is a ROTATE event big enough for "mysql-bin.000002".
const rotateSize = replication.HeaderLen + 8 + 16 + 4

// collectSink records what a Segmenter hands on.
type collectSink struct {
	segs []*Segment
	ends []FileEnd
}

func (c *collectSink) SubmitSegment(s *Segment) error { c.segs = append(c.segs, s); return nil }
func (c *collectSink) SubmitFileEnd(fe FileEnd) error { c.ends = append(c.ends, fe); return nil }

// nextBody returns an event of type t with the given body (and CRC32).
func (f *fakeBinlog) nextBody(t gomysql.EventType, body []byte) replication.Event {
	size := replication.HeaderLen + len(body) + 4
	ev := f.next(t, size)
	copy(ev.Raw[replication.HeaderLen:], body)
	binary.LittleEndian.PutUint32(ev.Raw[size-4:], crc32.ChecksumIEEE(ev.Raw[:size-4]))
	return ev
}

// queryBody is a QUERY_EVENT body with an empty db name.
func queryBody(q string) []byte {
	b := make([]byte, 13, 14+len(q))
	return append(append(b, 0), q...)
}

// mariaGTIDBody is a MARIADB_GTID_EVENT body: seq_no, domain 0, flags.
func mariaGTIDBody(seq uint64, flags byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, seq)
	b = binary.LittleEndian.AppendUint32(b, 0)
	return append(b, flags, 0, 0, 0, 0, 0, 0, 0, 0)
}
