package replication

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

func TestGTIDStateMariaDB(t *testing.T) {
	st, err := ParseGTIDState("0-1-10,0-2-4,1-1-3")
	if err != nil {
		t.Fatal(err)
	}
	// Has is exact (domain, server, seq_no); Covers is gtid_slave_pos's
	// per-domain sense.
	for g, want := range map[string][2]bool{
		"0-1-10": {true, true}, "0-1-11": {false, false}, "0-2-4": {true, true},
		"0-2-5": {false, true}, "0-3-9": {false, true}, "1-1-4": {false, false}, "2-1-1": {false, false},
	} {
		if st.Has(g) != want[0] || st.Covers(g) != want[1] {
			t.Errorf("%s: Has %v Covers %v, want %v", g, st.Has(g), st.Covers(g), want)
		}
	}
	if got := st.Pos(); got != "0-1-10,1-1-3" {
		t.Errorf("Pos %q", got)
	}
	other, _ := ParseGTIDState("0-1-7,0-2-4")
	if !st.Contains(other) || other.Contains(st) {
		t.Error("Contains")
	}
	if got := strings.Join(st.Beyond(other), ","); got != "0-1-8..10,1-1-1..3" {
		t.Errorf("Beyond %q", got)
	}
	a, _ := ParseGTIDState("0-1-10")
	b, _ := ParseGTIDState("0-3-10,0-1-2")
	if !a.SamePosition(b) {
		t.Error("same highest seq_no per domain is the same position")
	}
}

// TestGTIDListBody reads a MariaDB Gtid_list event as MariaDB 10.11 writes
// it after the format description of every binlog file.
func TestGTIDListBody(t *testing.T) {
	body := binary.LittleEndian.AppendUint32(nil, 2)
	for _, g := range [][3]uint64{{0, 1, 812}, {0, 2, 17}} {
		body = binary.LittleEndian.AppendUint32(body, uint32(g[0]))
		body = binary.LittleEndian.AppendUint32(body, uint32(g[1]))
		body = binary.LittleEndian.AppendUint64(body, g[2])
	}
	raw := append(make([]byte, HeaderLen), body...)
	raw[4] = byte(gomysql.MARIADB_GTID_LIST_EVENT)
	binary.LittleEndian.PutUint32(raw[9:], uint32(len(raw)+4))
	raw = binary.LittleEndian.AppendUint32(raw, crc32.ChecksumIEEE(raw))
	st, err := EventStartState(raw)
	if err != nil || st.String() != "0-1-812,0-2-17" {
		t.Fatalf("state %v, %v", st, err)
	}
	if _, err := ParseGTIDListBody(body[:20]); err == nil {
		t.Error("a truncated Gtid_list must fail")
	}
}

// mysql8PreviousGTIDs is the body of a Previous_gtids event (without header
// and checksum) in the tagged format of MySQL 8.4 (a format byte, then the
// sid count): one server uuid with transactions 1-3; go-mysql's test
// vector for that format.
var mysql8PreviousGTIDs = []byte{0x1, 0x1, 0x0, 0x0, 0x0, 0x0, 0x0, 0x1, 0x89, 0x6e, 0x78, 0x82, 0x18, 0xfe, 0x11, 0xef, 0xab, 0x88, 0x22, 0x22,
	0x2d, 0x34, 0xd4, 0x11, 0x0, 0x1, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x1, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x4, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0}

// mysql57PreviousGTIDs is the untagged form (MySQL 5.7 and 8.0 before
// tagged GTIDs): n_sids, then uuid, n_intervals, [start, end).
func mysql57PreviousGTIDs() []byte {
	b := binary.LittleEndian.AppendUint64(nil, 1)
	b = append(b, 0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42, 0x95, 0x62)
	b = binary.LittleEndian.AppendUint64(b, 1)
	b = binary.LittleEndian.AppendUint64(b, 1)
	return binary.LittleEndian.AppendUint64(b, 6) // 1-5
}

func TestPreviousGTIDsBody(t *testing.T) {
	st, err := ParsePreviousGTIDsBody(mysql8PreviousGTIDs)
	if err != nil || st.String() != "896e7882-18fe-11ef-ab88-22222d34d411:1-3" {
		t.Fatalf("tagged-format body: %v, %v", st, err)
	}
	st, err = ParsePreviousGTIDsBody(mysql57PreviousGTIDs())
	if err != nil || st.String() != "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5" {
		t.Fatalf("untagged body: %v, %v", st, err)
	}
	if !st.Has("3e11fa47-71ca-11e1-9e33-c80aa9429562:5") || st.Has("3e11fa47-71ca-11e1-9e33-c80aa9429562:6") {
		t.Error("Has on a MySQL set")
	}
	st.Add("3e11fa47-71ca-11e1-9e33-c80aa9429562:6")
	if !st.Has("3e11fa47-71ca-11e1-9e33-c80aa9429562:6") {
		t.Error("Add on a MySQL set")
	}
	// In a file: the format description (with CRC32), then Previous_gtids.
	var file bytes.Buffer
	file.Write(Magic)
	fde := make([]byte, HeaderLen+95)
	fde[4] = byte(gomysql.FORMAT_DESCRIPTION_EVENT)
	binary.LittleEndian.PutUint32(fde[9:], uint32(len(fde)+4))
	fde = binary.LittleEndian.AppendUint32(fde, crc32.ChecksumIEEE(fde))
	file.Write(fde)
	pg := append(make([]byte, HeaderLen), mysql57PreviousGTIDs()...)
	pg[4] = byte(gomysql.PREVIOUS_GTIDS_EVENT)
	binary.LittleEndian.PutUint32(pg[9:], uint32(len(pg)+4))
	pg = binary.LittleEndian.AppendUint32(pg, crc32.ChecksumIEEE(pg))
	file.Write(pg)
	got, found, err := FileStartState(&file)
	if err != nil || !found || got.String() != "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5" {
		t.Fatalf("file start state %v %v %v", got, found, err)
	}
}

func TestParseSourceURLs(t *testing.T) {
	cfgs, err := ParseSourceURLs("mysql://binarc:pw@db1:3307,db2,10.0.0.3:3308")
	if err != nil || len(cfgs) != 3 {
		t.Fatalf("%v %v", cfgs, err)
	}
	for i, want := range []string{"db1:3307", "db2:3306", "10.0.0.3:3308"} {
		if cfgs[i].Addr() != want || cfgs[i].User != "binarc" || cfgs[i].Password != "pw" {
			t.Errorf("server %d: %s %s", i, cfgs[i].Addr(), cfgs[i].User)
		}
	}
	if _, err := ParseSourceURLs("mysql://u@db1,db1"); err == nil {
		t.Error("the same server twice must be refused")
	}
	if _, err := ParseSourceURLs("mysql://u@db1,"); err == nil {
		t.Error("an empty host must be refused")
	}
	if _, err := ParseSourceURL("mysql://u@db1:3306,db2:3306"); err == nil || !strings.Contains(err.Error(), "several servers") {
		t.Errorf("one-server commands must refuse several clearly: %v", err)
	}
}

// TestStreamRefusesAnotherServersFile: after a reconnect, a file of the
// same name from another server (a VIP moved) is not spliced in.
func TestStreamRefusesAnotherServersFile(t *testing.T) {
	r := &recorder{}
	st := &streamState{pos: Position{File: "mysql-bin.000002"}, h: r, flavor: FlavorMariaDB, serverID: 1}
	fde := ev(gomysql.FORMAT_DESCRIPTION_EVENT, 100, 104, 0)
	fde.Header.ServerID = 7
	err := feed(t, st, rotate("mysql-bin.000002", 4, 0, gomysql.LOG_EVENT_ARTIFICIAL_F), fde)
	var be *BreakError
	if !errors.As(err, &be) || !strings.Contains(be.Reason, "server_id 7") {
		t.Fatalf("want a break naming server_id 7, got %v", err)
	}
	st = &streamState{pos: Position{File: "mysql-bin.000002"}, h: r, flavor: FlavorMariaDB, serverID: 1}
	fde.Header.ServerID = 1
	if err := feed(t, st, rotate("mysql-bin.000002", 4, 0, gomysql.LOG_EVENT_ARTIFICIAL_F), fde); err != nil {
		t.Fatalf("the archived server's own file: %v", err)
	}
}
