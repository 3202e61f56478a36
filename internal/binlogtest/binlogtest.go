// Package binlogtest makes well-formed binlog events (v4 header, CRC32) for
// tests that do not need a server. It is imported by tests only.
package binlogtest

import (
	"encoding/binary"
	"hash/crc32"
	"time"

	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// Binlog makes well-formed binlog events (v4 header, CRC32) for tests
// that do not need a server.
type Binlog struct {
	File string // the file name events carry
	Pos  uint64 // offset of the next event
	TS   uint32 // timestamp of the next event
	// ServerID goes in every header (1 when zero); GTID events carry it.
	ServerID uint32
}

// New starts a file at offset 4 with a fixed start time.
func New(file string) *Binlog {
	return &Binlog{File: file, Pos: replication.MagicLen, TS: uint32(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).Unix())}
}

// Next returns an event of the given type with size bytes in all.
func (f *Binlog) Next(t gomysql.EventType, size int) replication.Event {
	if size < replication.HeaderLen+4 {
		size = replication.HeaderLen + 4
	}
	raw := make([]byte, size)
	end := f.Pos + uint64(size)
	binary.LittleEndian.PutUint32(raw[0:], f.TS)
	raw[4] = byte(t)
	binary.LittleEndian.PutUint32(raw[5:], max(f.ServerID, 1))
	binary.LittleEndian.PutUint32(raw[9:], uint32(size))
	binary.LittleEndian.PutUint32(raw[13:], uint32(end))
	for i := replication.HeaderLen; i < size-4; i++ {
		raw[i] = byte(i * 7)
	}
	if t == gomysql.ROTATE_EVENT {
		// position then the name of the next file
		body := raw[replication.HeaderLen : size-4]
		binary.LittleEndian.PutUint64(body, 4)
		copy(body[8:], f.NextName())
	}
	binary.LittleEndian.PutUint32(raw[size-4:], crc32.ChecksumIEEE(raw[:size-4]))
	ev := replication.Event{File: f.File, Start: f.Pos, End: end, Type: t, Timestamp: f.TS, Raw: raw}
	f.Pos = end
	f.TS++
	return ev
}

// NextName is the name of the file a ROTATE event points to.
func (f *Binlog) NextName() string {
	base, seq, _ := replication.SplitBinlogName(f.File)
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

// RotateSize is a ROTATE event big enough for "mysql-bin.000002".
const RotateSize = replication.HeaderLen + 8 + 16 + 4

// NextBody returns an event of type t with the given body (and CRC32).
func (f *Binlog) NextBody(t gomysql.EventType, body []byte) replication.Event {
	size := replication.HeaderLen + len(body) + 4
	ev := f.Next(t, size)
	copy(ev.Raw[replication.HeaderLen:], body)
	binary.LittleEndian.PutUint32(ev.Raw[size-4:], crc32.ChecksumIEEE(ev.Raw[:size-4]))
	return ev
}

// QueryBody is a QUERY_EVENT body with an empty db name.
func QueryBody(q string) []byte {
	b := make([]byte, 13, 14+len(q))
	return append(append(b, 0), q...)
}

// MariaGTIDBody is a MARIADB_GTID_EVENT body: seq_no, domain 0, flags.
func MariaGTIDBody(seq uint64, flags byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, seq)
	b = binary.LittleEndian.AppendUint32(b, 0)
	return append(b, flags, 0, 0, 0, 0, 0, 0, 0, 0)
}

// FormatDescription returns a MariaDB 10.11 format description event
// naming checksum algorithm alg (1: every event ends with a CRC32; 0:
// none), ending with its own CRC32 as a checksum-aware server writes it.
func (f *Binlog) FormatDescription(alg byte) replication.Event {
	return FillFormatDescription(f.Next(gomysql.FORMAT_DESCRIPTION_EVENT, replication.HeaderLen+2+50+4+1+40+5), alg)
}

// FillFormatDescription makes ev, a FORMAT_DESCRIPTION_EVENT of at least
// HeaderLen+57+5 bytes, what a MariaDB 10.11 writes: its server version,
// the header length, checksum algorithm alg before the event's own CRC32.
func FillFormatDescription(ev replication.Event, alg byte) replication.Event {
	raw := ev.Raw
	body := raw[replication.HeaderLen:]
	binary.LittleEndian.PutUint16(body, 4)
	copy(body[2:52], make([]byte, 50))
	copy(body[2:52], "10.11.6-MariaDB-log")
	body[56] = replication.HeaderLen
	raw[len(raw)-5] = alg
	binary.LittleEndian.PutUint32(raw[len(raw)-4:], crc32.ChecksumIEEE(raw[:len(raw)-4]))
	return ev
}
