package replication

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"runtime"
	"strings"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// withHeader wraps an event body recorded from a server in a v4 header and
// a CRC32, as it sits in a binlog file.
func withHeader(t gomysql.EventType, serverID uint32, body []byte) []byte {
	raw := make([]byte, HeaderLen, HeaderLen+len(body)+4)
	raw[4] = byte(t)
	binary.LittleEndian.PutUint32(raw[5:], serverID)
	binary.LittleEndian.PutUint32(raw[9:], uint32(HeaderLen+len(body)+4))
	raw = append(raw, body...)
	return binary.LittleEndian.AppendUint32(raw, crc32.ChecksumIEEE(raw))
}

func TestParseGTIDMySQL(t *testing.T) {
	// GTID_EVENT bodies recorded from MySQL 5.7 -> 8.0 replication
	// (go-mysql's event_test.go fixtures).
	cases := map[string]string{
		"\x00Z\xa7*\u007fD\xa8\x11\xea\x94\u007f\x02B\xac\x19\x00\x02\x02\x01\x00\x00\x00\x00\x00\x00\x02v\x00\x00\x00\x00\x00\x00\x00w\x00\x00\x00\x00\x00\x00\x00\xc1G\x81\x16x\xa0\x85\x00\x00\x00\x00\x00\x00\x00\xfc\xc5\x03\x938\x01\x80\x00\x00\x00\x00": "5aa72a7f-44a8-11ea-947f-0242ac190002:258",
		"\x00Z\xa7*\u007fD\xa8\x11\xea\x94\u007f\x02B\xac\x19\x00\x02\x03\x01\x00\x00\x00\x00\x00\x00\x025\x00\x00\x00\x00\x00\x00\x006\x00\x00\x00\x00\x00\x00\x00":                                                                                            "5aa72a7f-44a8-11ea-947f-0242ac190002:259",
	}
	for body, want := range cases {
		raw := withHeader(gomysql.GTID_EVENT, 1, []byte(body))
		if got := ParseGTID(raw); got != want {
			t.Errorf("ParseGTID = %q, want %q", got, want)
		}
		if !HasChecksum(raw) {
			t.Error("HasChecksum false on a checksummed event")
		}
	}
}

func TestParseGTIDMariaDB(t *testing.T) {
	body := []byte{
		1, 2, 3, 4, 5, 6, 7, 8, // seq_no
		0x2a, 1, 0x3b, 4, // domain_id
		0xff,                                           // flags
		0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, // commit id
	}
	raw := withHeader(gomysql.MARIADB_GTID_EVENT, 7, body)
	if got, want := ParseGTID(raw), "70975786-7-578437695752307201"; got != want {
		t.Fatalf("ParseGTID = %q, want %q", got, want)
	}
	if ParseGTID(withHeader(gomysql.QUERY_EVENT, 1, body)) != "" {
		t.Fatal("a query event has no GTID")
	}
}

func TestHasChecksumFormatDescriptionInUse(t *testing.T) {
	// The server computes a format description's CRC with the in-use flag
	// clear, and sets the flag in the file without recomputing it.
	raw := withHeader(gomysql.FORMAT_DESCRIPTION_EVENT, 1, make([]byte, 80))
	raw[HeaderLen-2] |= FlagInUse
	if !HasChecksum(raw) {
		t.Fatal("FDE with the in-use flag set must still check")
	}
	raw[HeaderLen+5] ^= 1
	if HasChecksum(raw) {
		t.Fatal("a corrupt event passed the checksum")
	}
}

// TestStreamMySQLArtificialEvents: on MySQL an event with log_pos 0 is
// never in the file (no MariaDB 11.4 zero-log_pos real events).
func TestStreamMySQLArtificialEvents(t *testing.T) {
	r := &recorder{}
	st := &streamState{pos: Position{File: "binlog.000001", Offset: 4}, h: r, flavor: FlavorMySQL}
	err := feed(t, st,
		rotate("binlog.000001", 4, 0, gomysql.LOG_EVENT_ARTIFICIAL_F),
		ev(gomysql.FORMAT_DESCRIPTION_EVENT, 120, 124, 0),
		ev(gomysql.PREVIOUS_GTIDS_EVENT, 31, 155, 0),
		ev(gomysql.HEARTBEAT_LOG_EVENT_V2, 40, 155, 0),
		ev(gomysql.XID_EVENT, 31, 0, 0), // log_pos 0 on MySQL: not in the file
		ev(gomysql.ANONYMOUS_GTID_EVENT, 65, 220, 0),
	)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.events) != 3 || r.events[2].Start != 155 || len(r.beats) != 1 {
		t.Fatalf("events %d (want 3), beats %d", len(r.events), len(r.beats))
	}
}

// TestReadEventsRefusesHugeEvent: a header claiming nearly 4 GiB is refused
// with a clear error before anything is allocated for it.
func TestReadEventsRefusesHugeEvent(t *testing.T) {
	raw := make([]byte, HeaderLen)
	binary.LittleEndian.PutUint32(raw[9:], 0xfffffff0)
	var m runtime.MemStats
	err := ReadEvents(bytes.NewReader(append(append([]byte{}, Magic...), raw...)), 0, func(uint64, Header, []byte) error { return nil })
	runtime.ReadMemStats(&m)
	if err == nil || !strings.Contains(err.Error(), "more than the largest event") {
		t.Fatalf("ReadEvents = %v; want the size refused", err)
	}
	if m.HeapAlloc > 512<<20 {
		t.Errorf("heap %d MiB after refusing the event", m.HeapAlloc>>20)
	}
}

// TestReadEventsKeepsReaderError: a reader that fails before the magic
// (an archive that cannot be opened) is reported as itself.
func TestReadEventsKeepsReaderError(t *testing.T) {
	pr, pw := io.Pipe()
	pw.CloseWithError(errors.New("timeline is encrypted to age1xyz: pass --identity"))
	err := ReadEvents(pr, 0, func(uint64, Header, []byte) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "--identity") {
		t.Fatalf("ReadEvents = %v; want the reader's error", err)
	}
}
