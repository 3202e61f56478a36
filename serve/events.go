package serve

import (
	"encoding/binary"
	"hash/crc32"
	"strings"

	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// Event header fields a primary sets on the events it makes up (MariaDB
// log_event.h).
const (
	flagArtificial = 0x20 // LOG_EVENT_ARTIFICIAL_F
	logPosOffset   = 13
	flagsOffset    = 17
	// fdeCreatedOffset is the 'created' timestamp of a format description:
	// after the header, binlog_version (2) and server_version (50).
	fdeCreatedOffset = replication.HeaderLen + 2 + 50
)

// fakeEvent builds an event the way MariaDB's fake_event_header does
// (sql_repl.cc): timestamp 0, so the replica can tell it from a real one,
// the artificial flag, and a CRC32 when the stream carries checksums.
func fakeEvent(t gomysql.EventType, serverID uint32, logPos uint32, body []byte, crc bool) []byte {
	n := replication.HeaderLen + len(body)
	if crc {
		n += 4
	}
	ev := make([]byte, replication.HeaderLen, n)
	ev[4] = byte(t)
	binary.LittleEndian.PutUint32(ev[5:], serverID)
	binary.LittleEndian.PutUint32(ev[9:], uint32(n))
	binary.LittleEndian.PutUint32(ev[logPosOffset:], logPos)
	binary.LittleEndian.PutUint16(ev[flagsOffset:], flagArtificial)
	ev = append(ev, body...)
	if crc {
		ev = binary.LittleEndian.AppendUint32(ev, crc32.ChecksumIEEE(ev))
	}
	return ev
}

// fakeRotate names the file the stream is in and the position it starts
// at: the first event of every file a primary sends.
func fakeRotate(serverID uint32, file string, pos uint64, crc bool) []byte {
	body := binary.LittleEndian.AppendUint64(nil, pos)
	return fakeEvent(gomysql.ROTATE_EVENT, serverID, 0, append(body, file...), crc)
}

// heartbeat tells an idle replica where the stream stands.
func heartbeat(serverID uint32, file string, pos uint64, crc bool) []byte {
	return fakeEvent(gomysql.HEARTBEAT_EVENT, serverID, uint32(pos), []byte(file), crc)
}

// gtidEntry is one domain's position in a GTID list.
type gtidEntry struct {
	Domain, Server uint32
	Seq            uint64
}

// fakeGTIDList is a Gtid_list event: count, then domain, server and
// sequence number of each entry.
func fakeGTIDList(serverID uint32, logPos uint32, list []gtidEntry, crc bool) []byte {
	body := binary.LittleEndian.AppendUint32(nil, uint32(len(list)))
	for _, g := range list {
		body = binary.LittleEndian.AppendUint32(body, g.Domain)
		body = binary.LittleEndian.AppendUint32(body, g.Server)
		body = binary.LittleEndian.AppendUint64(body, g.Seq)
	}
	return fakeEvent(gomysql.MARIADB_GTID_LIST_EVENT, serverID, logPos, body, crc)
}

// parseGTIDList reads a Gtid_list event's entries.
func parseGTIDList(raw []byte, crc bool) []gtidEntry {
	body := raw[replication.HeaderLen:]
	if crc && len(body) >= 4 {
		body = body[:len(body)-4]
	}
	if len(body) < 4 {
		return nil
	}
	n := int(binary.LittleEndian.Uint32(body) & 0x0fffffff)
	body = body[4:]
	var out []gtidEntry
	for i := 0; i < n && len(body) >= 16; i++ {
		out = append(out, gtidEntry{binary.LittleEndian.Uint32(body), binary.LittleEndian.Uint32(body[4:]), binary.LittleEndian.Uint64(body[8:])})
		body = body[16:]
	}
	return out
}

// formatDescription prepares a file's format description for the
// replica, as send_format_descriptor_event does: the in-use flag cleared;
// when the stream starts inside the file, log_pos 0 (so the replica does
// not take it as its position); and 'created' 0 when the replica has seen
// the file's start before (so it does not drop its temporary tables, as it
// would after a primary's restart). The CRC is computed again.
func formatDescription(raw []byte, zeroPos, zeroCreated bool) []byte {
	ev := append([]byte(nil), raw...)
	crc := replication.HasChecksum(raw)
	ev[flagsOffset] &^= replication.FlagInUse
	if zeroPos {
		binary.LittleEndian.PutUint32(ev[logPosOffset:], 0)
	}
	if zeroCreated && len(ev) >= fdeCreatedOffset+4 {
		binary.LittleEndian.PutUint32(ev[fdeCreatedOffset:], 0)
	}
	if crc {
		binary.LittleEndian.PutUint32(ev[len(ev)-4:], crc32.ChecksumIEEE(ev[:len(ev)-4]))
	}
	return ev
}

// groupKind says how an event group ends.
type groupKind int

const (
	groupTransaction groupKind = iota + 1 // at XID or COMMIT/ROLLBACK
	groupStandalone                       // at the first event not part of a group
	groupStatement                        // a lone statement: that event itself
)

// groups follows event groups (transactions) through a stream, the way
// MariaDB's binlog sender does to skip them (send_event_to_slave).
type groups struct {
	open  bool
	kind  groupKind
	GTID  string
	Start uint64
	Time  uint32
	crc   bool
}

// begins tells whether the event starts a group, and records it.
func (g *groups) begins(off uint64, h replication.Header, raw []byte) bool {
	switch h.Type {
	case gomysql.MARIADB_GTID_EVENT:
		body := raw[replication.HeaderLen:]
		g.open, g.kind, g.GTID, g.Start, g.Time = true, groupTransaction, replication.ParseGTID(raw), off, h.Timestamp
		if len(body) > 12 && body[12]&0x01 != 0 { // FL_STANDALONE
			g.kind = groupStandalone
		}
		return true
	case gomysql.GTID_EVENT, gomysql.ANONYMOUS_GTID_EVENT:
		g.open, g.kind, g.GTID, g.Start, g.Time = true, groupStandalone, replication.ParseGTID(raw), off, h.Timestamp
		return true
	case gomysql.QUERY_EVENT:
		if g.open {
			return false
		}
		g.open, g.GTID, g.Start, g.Time = true, "", off, h.Timestamp
		g.kind = groupStatement
		if q := queryText(raw, g.crc); q == "BEGIN" || strings.HasPrefix(q, "XA START") {
			g.kind = groupTransaction
		}
		return true
	}
	return false
}

// ends tells whether the event (in the open group) is its last one.
func (g *groups) ends(h replication.Header, raw []byte) bool {
	if !g.open {
		return false
	}
	end := false
	switch g.kind {
	case groupStatement:
		end = true
	case groupStandalone:
		end = !partOfGroup(h.Type)
		if h.Type == gomysql.QUERY_EVENT {
			// MySQL: a GTID then BEGIN is a transaction.
			if q := queryText(raw, g.crc); q == "BEGIN" || strings.HasPrefix(q, "XA START") {
				g.kind, end = groupTransaction, false
			}
		}
	case groupTransaction:
		switch h.Type {
		case gomysql.XID_EVENT, gomysql.XA_PREPARE_LOG_EVENT:
			end = true
		case gomysql.QUERY_EVENT:
			q := queryText(raw, g.crc)
			end = q == "COMMIT" || q == "ROLLBACK" || strings.HasPrefix(q, "XA COMMIT") || strings.HasPrefix(q, "XA ROLLBACK")
		}
	}
	if end {
		g.open = false
	}
	return end
}

// partOfGroup is MariaDB's Log_event::is_part_of_group, with MySQL's
// events of the same roles: the GTID event that starts a group, and the
// Rows_query event (MySQL's Annotate_rows).
func partOfGroup(t gomysql.EventType) bool {
	switch t {
	case gomysql.GTID_EVENT, gomysql.ANONYMOUS_GTID_EVENT, gomysql.ROWS_QUERY_EVENT,
		gomysql.MARIADB_GTID_EVENT, gomysql.INTVAR_EVENT, gomysql.RAND_EVENT, gomysql.USER_VAR_EVENT,
		gomysql.TABLE_MAP_EVENT, gomysql.MARIADB_ANNOTATE_ROWS_EVENT,
		gomysql.WRITE_ROWS_EVENTv0, gomysql.UPDATE_ROWS_EVENTv0, gomysql.DELETE_ROWS_EVENTv0,
		gomysql.WRITE_ROWS_EVENTv1, gomysql.UPDATE_ROWS_EVENTv1, gomysql.DELETE_ROWS_EVENTv1,
		gomysql.WRITE_ROWS_EVENTv2, gomysql.UPDATE_ROWS_EVENTv2, gomysql.DELETE_ROWS_EVENTv2,
		gomysql.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1, gomysql.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1,
		gomysql.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1, gomysql.PARTIAL_UPDATE_ROWS_EVENT:
		return true
	}
	return false
}

// queryText is the upper-cased, trimmed start of a QUERY_EVENT's
// statement: enough to recognise BEGIN, COMMIT and XA.
func queryText(raw []byte, crc bool) string {
	body := raw[replication.HeaderLen:]
	if crc && len(body) >= 4 {
		body = body[:len(body)-4]
	}
	s := replication.QueryText(body)
	if len(s) > 32 {
		s = s[:32]
	}
	return strings.ToUpper(strings.TrimSpace(s))
}
