// Package replication registers with a MySQL or MariaDB primary as a replica
// and hands on each binlog event's exact bytes with its coordinates in the
// primary's binlog file. It owns the connection, the reconnect and the
// position; it never skips a byte silently.
//
// It must not know the archive: it hands events to a Handler and never
// writes to a store.
package replication

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// Binlog file layout constants (MySQL/MariaDB log_event.h).
const (
	// MagicLen is the length of the magic number at the start of every
	// binlog file; the first event starts at this offset.
	MagicLen = 4
	// HeaderLen is the length of the v4 common event header.
	HeaderLen = 19
	// MaxEventSize bounds one event: the servers' 1 GiB packet limit
	// (max_allowed_packet, slave_max_allowed_packet) plus a header and a
	// checksum. A reader never allocates more for one event.
	MaxEventSize = 1<<30 + HeaderLen + 4
	// flagsOffset is where the 2-byte flags sit in the common header.
	flagsOffset = 17
	// FlagInUse is LOG_EVENT_BINLOG_IN_USE_F, set in a file's format
	// description event while the server has the file open. The server
	// clears it in the copy it sends to replicas.
	FlagInUse = 0x1
)

// Magic is the 4-byte magic number every binlog file starts with.
var Magic = []byte{0xfe, 'b', 'i', 'n'}

// InUseFlagOffset is the file offset of the byte a server clears when it
// closes a binlog file: the low byte of the flags of the format description
// event at offset 4. The server rewrites only this byte (MYSQL_BIN_LOG::close
// pwrites a single 0 there) and does not recompute the event's CRC, because
// the checksum of a format description event is computed with the flag clear.
const InUseFlagOffset = MagicLen + flagsOffset

// Event is one binlog event as the primary wrote it, with its coordinates.
// Raw is only valid during the Handler call that receives it.
type Event struct {
	File      string // binlog file name on the primary, e.g. mysql-bin.000042
	Start     uint64 // offset of the first byte of the event in File
	End       uint64 // offset just past the event (Start + len(Raw))
	Type      gomysql.EventType
	Timestamp uint32 // seconds since the epoch, from the event header
	GTID      string // set on GTID events: "domain-server-seq" (MariaDB) or "uuid:gno" (MySQL)
	Raw       []byte // header, body and checksum, exactly as in the file
}

// IsFileEnd tells whether an event of type t is always the last one in a
// binlog file: a ROTATE_EVENT written at rotation, or a STOP_EVENT written at
// shutdown.
func IsFileEnd(t gomysql.EventType) bool {
	return t == gomysql.ROTATE_EVENT || t == gomysql.STOP_EVENT
}

// Header is the decoded common header of an event.
type Header struct {
	Timestamp uint32
	Type      gomysql.EventType
	ServerID  uint32
	EventSize uint32
	LogPos    uint32
	Flags     uint16
}

// ParseHeader decodes the common header at the start of raw.
func ParseHeader(raw []byte) (Header, error) {
	if len(raw) < HeaderLen {
		return Header{}, fmt.Errorf("event of %d bytes is shorter than the %d-byte header", len(raw), HeaderLen)
	}
	return Header{
		Timestamp: binary.LittleEndian.Uint32(raw[0:]),
		Type:      gomysql.EventType(raw[4]),
		ServerID:  binary.LittleEndian.Uint32(raw[5:]),
		EventSize: binary.LittleEndian.Uint32(raw[9:]),
		LogPos:    binary.LittleEndian.Uint32(raw[13:]),
		Flags:     binary.LittleEndian.Uint16(raw[17:]),
	}, nil
}

// ParseGTID returns the GTID carried by a GTID event, or "" for any other
// event. MariaDB: "domain-server-seq"; MySQL: "uuid:gno".
func ParseGTID(raw []byte) string {
	h, err := ParseHeader(raw)
	if err != nil {
		return ""
	}
	body := raw[HeaderLen:]
	switch h.Type {
	case gomysql.MARIADB_GTID_EVENT:
		// seq_no (8), domain_id (4), flags (1), ... (MariaDB log_event.h)
		if len(body) < 12 {
			return ""
		}
		seq := binary.LittleEndian.Uint64(body[0:])
		domain := binary.LittleEndian.Uint32(body[8:])
		return fmt.Sprintf("%d-%d-%d", domain, h.ServerID, seq)
	case gomysql.GTID_EVENT:
		// flags (1), sid (16), gno (8)
		if len(body) < 25 {
			return ""
		}
		sid := body[1:17]
		gno := int64(binary.LittleEndian.Uint64(body[17:]))
		return fmt.Sprintf("%x-%x-%x-%x-%x:%d", sid[0:4], sid[4:6], sid[6:8], sid[8:10], sid[10:16], gno)
	}
	return ""
}

// Events walks the events in buf, which holds whole events back to back
// (optionally preceded by the 4-byte magic when startOffset is 0), calling fn
// with each event's start offset in the file. It fails on a truncated event.
func Events(buf []byte, startOffset uint64, fn func(start uint64, h Header, raw []byte) error) error {
	off := startOffset
	if startOffset == 0 {
		if len(buf) < MagicLen || string(buf[:MagicLen]) != string(Magic) {
			return fmt.Errorf("offset 0: binlog magic missing")
		}
		buf = buf[MagicLen:]
		off = MagicLen
	}
	for len(buf) > 0 {
		h, err := ParseHeader(buf)
		if err != nil {
			return fmt.Errorf("offset %d: %w", off, err)
		}
		if h.EventSize < HeaderLen || int(h.EventSize) > len(buf) {
			return fmt.Errorf("offset %d: event size %d does not fit in the %d bytes left", off, h.EventSize, len(buf))
		}
		if err := fn(off, h, buf[:h.EventSize]); err != nil {
			return err
		}
		off += uint64(h.EventSize)
		buf = buf[h.EventSize:]
	}
	return nil
}

// HasChecksum tells whether raw ends with a valid CRC32 of the rest of the
// event (binlog_checksum=CRC32). The format description event's checksum is
// computed with the in-use flag clear, as the server does.
func HasChecksum(raw []byte) bool {
	if len(raw) < HeaderLen+4 {
		return false
	}
	body := raw[:len(raw)-4]
	want := binary.LittleEndian.Uint32(raw[len(raw)-4:])
	if gomysql.EventType(raw[4]) == gomysql.FORMAT_DESCRIPTION_EVENT && raw[flagsOffset]&FlagInUse != 0 {
		c := append([]byte(nil), body...)
		c[flagsOffset] &^= FlagInUse
		body = c
	}
	return crc32.ChecksumIEEE(body) == want
}

// ReadEvents reads whole events from r, which holds a binlog file from
// offset start (0: the magic first), and calls fn with each event's offset
// in the file. raw is only valid during the call. Memory is one event.
func ReadEvents(r io.Reader, start uint64, fn func(start uint64, h Header, raw []byte) error) error {
	br := bufio.NewReaderSize(r, 1<<20)
	off := start
	if start == 0 {
		magic := make([]byte, MagicLen)
		if _, err := io.ReadFull(br, magic); err != nil {
			// The reader's own failure (an archive that cannot be
			// read or opened) says more than a missing magic.
			return fmt.Errorf("offset 0: %w", err)
		}
		if string(magic) != string(Magic) {
			return fmt.Errorf("offset 0: binlog magic missing")
		}
		off = MagicLen
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := io.ReadFull(br, buf[:HeaderLen]); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("offset %d: truncated event header: %w", off, err)
		}
		h, _ := ParseHeader(buf[:HeaderLen])
		if h.EventSize < HeaderLen {
			return fmt.Errorf("offset %d: event size %d is smaller than its header", off, h.EventSize)
		}
		if h.EventSize > MaxEventSize {
			return fmt.Errorf("offset %d: event header says %d bytes, more than the largest event a server writes (%d, max_allowed_packet's limit plus the header): the file is corrupt", off, h.EventSize, MaxEventSize)
		}
		if int(h.EventSize) > len(buf) {
			nb := make([]byte, h.EventSize)
			copy(nb, buf[:HeaderLen])
			buf = nb
		}
		if _, err := io.ReadFull(br, buf[HeaderLen:h.EventSize]); err != nil {
			return fmt.Errorf("offset %d: event of %d bytes is truncated: %w", off, h.EventSize, err)
		}
		if err := fn(off, h, buf[:h.EventSize]); err != nil {
			return err
		}
		off += uint64(h.EventSize)
	}
}
