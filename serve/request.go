package serve

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strconv"

	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// dumpRequest is a COM_BINLOG_DUMP: binlog_pos (4), flags (2), server_id
// (4), file name (the rest of the packet).
type dumpRequest struct {
	Pos      uint64
	Flags    uint16
	ServerID uint32
	File     string
}

// parseDump reads a COM_BINLOG_DUMP body. The name is read as MariaDB
// reads it (mysql_binlog_send gets it through strdup): up to the first
// NUL, so a client that terminates it with one (several CDC libraries do)
// asks for the same file; an empty name means the first file.
func parseDump(body []byte) (dumpRequest, error) {
	if len(body) < 10 {
		return dumpRequest{}, fmt.Errorf("COM_BINLOG_DUMP of %d bytes: shorter than position, flags and server id (10)", len(body))
	}
	name := body[10:]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	return dumpRequest{
		Pos:      uint64(binary.LittleEndian.Uint32(body)),
		Flags:    binary.LittleEndian.Uint16(body[4:]),
		ServerID: binary.LittleEndian.Uint32(body[6:]),
		File:     string(name),
	}, nil
}

// NonBlock: the client wants an EOF packet once the binlog is sent, not
// a wait for more (mariadb-binlog without --stop-never).
func (r dumpRequest) NonBlock() bool { return r.Flags&gomysql.BINLOG_DUMP_NON_BLOCK != 0 }

// Annotate: the client asks for Annotate_rows events.
func (r dumpRequest) Annotate() bool {
	return r.Flags&gomysql.BINLOG_SEND_ANNOTATE_ROWS_EVENT != 0
}

// A replica's @mariadb_slave_capability (MariaDB log_event.h): what it
// understands of MariaDB's events. A client that never sets it is 0.
const (
	capAnnotate         = 1 // MARIA_SLAVE_CAPABILITY_ANNOTATE
	capToleratesHoles   = 2 // MARIA_SLAVE_CAPABILITY_TOLERATE_HOLES
	capBinlogCheckpoint = 3 // MARIA_SLAVE_CAPABILITY_BINLOG_CHECKPOINT
	capGTID             = 4 // MARIA_SLAVE_CAPABILITY_GTID
)

// capability reads @mariadb_slave_capability as MariaDB does (val_int: 0
// when not set or not a number).
func capability(v any) int {
	if v == nil {
		return 0
	}
	n, err := strconv.Atoi(fmt.Sprint(v))
	if err != nil {
		return 0
	}
	return n
}

// compat is how an event goes to a client, as MariaDB's
// send_event_to_slave decides from the dump's flags and the client's
// capability.
type compat int

const (
	sendAsIs  compat = iota
	sendNot          // left out: the client tolerates holes
	sendDummy        // replaced by a no-op event of the same size
	sendBegin        // a GTID event as the BEGIN an old client understands
)

// eventCompat decides how an archived event of type t goes to a client
// with capability cap that asked with flags annotate; standalone tells a
// MariaDB GTID event of a group without BEGIN (DDL).
func eventCompat(t gomysql.EventType, cap int, annotate, standalone bool) compat {
	holes := sendDummy
	if cap >= capToleratesHoles {
		holes = sendNot
	}
	switch t {
	case gomysql.MARIADB_ANNOTATE_ROWS_EVENT:
		switch {
		case annotate:
			return sendAsIs
		case cap >= capToleratesHoles:
			return sendNot
		case cap >= capAnnotate:
			// It understands the event and would break on a hole.
			return sendAsIs
		}
		return sendDummy
	case gomysql.MARIADB_GTID_EVENT:
		if cap >= capGTID {
			return sendAsIs
		}
		if standalone {
			return holes
		}
		return sendBegin
	case gomysql.MARIADB_BINLOG_CHECKPOINT_EVENT:
		if cap >= capBinlogCheckpoint {
			return sendAsIs
		}
		return holes
	case gomysql.MARIADB_GTID_LIST_EVENT:
		if cap >= capGTID {
			return sendAsIs
		}
		return holes
	}
	return sendAsIs
}

// Event header flags and QUERY_EVENT offsets a dummy event sets (MariaDB
// log_event.h).
const (
	flagThreadSpecific = 0x04 // LOG_EVENT_THREAD_SPECIFIC_F
	flagSuppressUse    = 0x08 // LOG_EVENT_SUPPRESS_USE_F
	queryHeaderLen     = 13   // QUERY_HEADER_LEN
	gtidHeaderLen      = 19   // GTID_HEADER_LEN
	qTimeZoneCode      = 5    // Q_TIME_ZONE_CODE
	// minimal sizes of a dummy (header, body, no checksum)
	minDummyUserVar = replication.HeaderLen + 4 + 1 + 1
	minDummyQuery   = replication.HeaderLen + queryHeaderLen + 1 + 1
)

// dummyEvent rewrites ev in place into a no-op of the same size, as
// MariaDB's Query_log_event::dummy_event: a comment QUERY_EVENT, or, when
// that does not fit, a NULL user variable @`!dummyvar`. Positions stay
// right for a client that cannot skip events.
func dummyEvent(ev []byte, crc bool) error {
	n := len(ev)
	if crc {
		n -= 4
	}
	if n < minDummyUserVar {
		return fmt.Errorf("a %s event of %d bytes is too short to replace with a dummy", gomysql.EventType(ev[4]), len(ev))
	}
	flags := binary.LittleEndian.Uint16(ev[flagsOffset:])
	binary.LittleEndian.PutUint16(ev[flagsOffset:], flags&^flagThreadSpecific|flagSuppressUse)
	body := ev[replication.HeaderLen:n]
	if n < minDummyQuery {
		ev[4] = byte(gomysql.USER_VAR_EVENT)
		nameLen := n - (minDummyUserVar - 1)
		binary.LittleEndian.PutUint32(body, uint32(nameLen))
		copy(body[4:4+nameLen], "!dummyvar")
		body[4+nameLen] = 1 // NULL
	} else {
		old := ev[4]
		ev[4] = byte(gomysql.QUERY_EVENT)
		clear(body[:queryHeaderLen+1]) // thread id, exec time, db length, error, status vars; empty db
		comment := body[queryHeaderLen+1:]
		msg := fmt.Sprintf("# Dummy event replacing event type %d that slave cannot handle.", old)
		for i := range comment {
			comment[i] = ' '
		}
		copy(comment, msg)
	}
	fixCRC(ev[:n], crc)
	return nil
}

// beginEvent rewrites a MariaDB GTID event in place into the BEGIN query
// an old client expects, as Query_log_event::begin_event does; it takes
// only the two sizes a GTID event has without XA or extra flags.
func beginEvent(ev []byte, crc bool) error {
	n := len(ev)
	if crc {
		n -= 4
	}
	body := ev[replication.HeaderLen:n]
	if len(body) != gtidHeaderLen && len(body) != gtidHeaderLen+2 {
		return fmt.Errorf("a GTID event of %d bytes cannot be replaced with BEGIN for a replica without GTID support (@mariadb_slave_capability < 4)", len(ev))
	}
	flags := binary.LittleEndian.Uint16(ev[flagsOffset:])
	binary.LittleEndian.PutUint16(ev[flagsOffset:], flags&^flagThreadSpecific|flagSuppressUse)
	ev[4] = byte(gomysql.QUERY_EVENT)
	clear(body)
	q := body[queryHeaderLen:]
	if len(body) == gtidHeaderLen+2 {
		// An empty time zone status variable takes up the two bytes more.
		binary.LittleEndian.PutUint16(body[11:], 2)
		q[0], q[1], q[2] = qTimeZoneCode, 0, 0
		q = q[3:]
	} else {
		q = q[1:]
	}
	copy(q, "BEGIN")
	fixCRC(ev[:n], crc)
	return nil
}

// fixCRC writes the CRC32 of data into the four bytes after it.
func fixCRC(data []byte, crc bool) {
	if crc {
		binary.LittleEndian.PutUint32(data[len(data):len(data)+4], crc32.ChecksumIEEE(data))
	}
}

// fileChecksum tells whether a file's events end in a CRC32: the format
// description's checksum algorithm byte says so. Its own checksum does
// not (a checksum-aware server writes one even with
// binlog_checksum=NONE); a format description of a server older than
// checksums has neither.
func fileChecksum(fde []byte) bool {
	n := len(fde)
	return n >= replication.HeaderLen+5 && replication.HasChecksum(fde) && fde[n-5] == 1
}
