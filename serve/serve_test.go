package serve

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/binarc/binarc/replication"
	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
	"github.com/rs/zerolog"
)

// testFile writes a binlog file: a format description, a Gtid_list, then
// transaction 0-1-1 (BEGIN, rows, XID), DDL 0-1-2 (standalone) and
// transaction 0-1-3 (BEGIN, rows, COMMIT).
func testFile(t *testing.T, dir string) (name string, evs []replication.Event) {
	t.Helper()
	b := binlogtest.New("mysql-bin.000001")
	fde := make([]byte, 80)
	binary.LittleEndian.PutUint16(fde, 4)
	fde[len(fde)-1] = 1 // checksum algorithm CRC32, before the event's own checksum
	add := func(e replication.Event) { evs = append(evs, e) }
	add(b.NextBody(gomysql.FORMAT_DESCRIPTION_EVENT, fde))
	add(b.NextBody(gomysql.MARIADB_GTID_LIST_EVENT, make([]byte, 4)))
	add(b.NextBody(gomysql.MARIADB_GTID_EVENT, binlogtest.MariaGTIDBody(1, 0)))
	add(b.NextBody(gomysql.QUERY_EVENT, binlogtest.QueryBody("BEGIN")))
	add(b.Next(gomysql.WRITE_ROWS_EVENTv1, 60))
	add(b.Next(gomysql.XID_EVENT, 31))
	add(b.NextBody(gomysql.MARIADB_GTID_EVENT, binlogtest.MariaGTIDBody(2, 0x01)))
	add(b.NextBody(gomysql.QUERY_EVENT, binlogtest.QueryBody("CREATE TABLE t (x INT)")))
	add(b.NextBody(gomysql.MARIADB_GTID_EVENT, binlogtest.MariaGTIDBody(3, 0)))
	add(b.NextBody(gomysql.QUERY_EVENT, binlogtest.QueryBody("BEGIN")))
	add(b.Next(gomysql.WRITE_ROWS_EVENTv1, 60))
	add(b.NextBody(gomysql.QUERY_EVENT, binlogtest.QueryBody("COMMIT")))
	var file bytes.Buffer
	file.Write(replication.Magic)
	for _, e := range evs {
		file.Write(e.Raw)
	}
	if err := os.WriteFile(filepath.Join(dir, b.File), file.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return b.File, evs
}

func TestGroups(t *testing.T) {
	_, evs := testFile(t, t.TempDir())
	g := groups{crc: true}
	var got []string
	for _, e := range evs {
		h, _ := replication.ParseHeader(e.Raw)
		if g.begins(e.Start, h, e.Raw) {
			got = append(got, "begin "+g.GTID)
		}
		if g.ends(h, e.Raw) {
			got = append(got, "end "+h.Type.String())
		}
	}
	want := "begin 0-1-1,end XIDEvent,begin 0-1-2,end QueryEvent,begin 0-1-3,end QueryEvent"
	if strings.Join(got, ",") != want {
		t.Errorf("groups: %s\nwant %s", strings.Join(got, ","), want)
	}
}

func TestMadeUpEvents(t *testing.T) {
	rot := fakeRotate(7, "mysql-bin.000002", 4, true)
	h, _ := replication.ParseHeader(rot)
	if !replication.HasChecksum(rot) || h.Timestamp != 0 || h.Flags != flagArtificial || h.LogPos != 0 || int(h.EventSize) != len(rot) {
		t.Errorf("fake rotate: %+v", h)
	}
	list := []gtidEntry{{0, 1, 42}, {3, 2, 7}}
	if got := parseGTIDList(fakeGTIDList(7, 100, list, true), true); len(got) != 2 || got[0] != list[0] || got[1] != list[1] {
		t.Errorf("Gtid_list round trip: %v", got)
	}
	_, evs := testFile(t, t.TempDir())
	fde := append([]byte(nil), evs[0].Raw...)
	fde[flagsOffset] |= replication.FlagInUse
	out := formatDescription(fde, true, true)
	h, _ = replication.ParseHeader(out)
	if !replication.HasChecksum(out) || h.Flags&replication.FlagInUse != 0 || h.LogPos != 0 {
		t.Errorf("format description for a mid-file start: %+v, checksum ok %v", h, replication.HasChecksum(out))
	}
}

// TestDumpSkipsAndStops drives a dump over the protocol: the fake rotate
// and format description come first, a skipped transaction is left out,
// and the stream ends at the stop with a heartbeat after it.
func TestDumpSkipsAndStops(t *testing.T) {
	dir := t.TempDir()
	name, evs := testFile(t, dir)
	stop := replication.Position{File: name, Offset: evs[7].End} // after the DDL 0-1-2
	reached := make(chan replication.Position, 1)
	addr := startServer(t, Config{Source: &DirSource{Dir: dir, Names: []string{name}}, User: "u", Password: "p", ServerID: 9,
		Stop: Stop{Position: stop}, Skip: []string{"0-1-1"}, Log: zerolog.Nop(),
		Reached: func(p replication.Position) { reached <- p }})

	if _, err := client.Connect(addr, "u", "wrong", ""); err == nil || !strings.Contains(err.Error(), "Access denied") {
		t.Errorf("wrong password: %v", err)
	}
	c, err := client.Connect(addr, "u", "p", "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, q := range []string{"SET @master_binlog_checksum= @@global.binlog_checksum", "SET @master_heartbeat_period= 100000000", "SET @mariadb_slave_capability=4"} {
		if _, err := c.Execute(q); err != nil {
			t.Fatal(err)
		}
	}
	// Results go back to go-mysql's pool, as binarc restore's client does
	// in the same process: serve's answers must not depend on that pool.
	for i := 0; i < 50; i++ {
		for _, q := range []string{"SELECT UNIX_TIMESTAMP()", "SELECT @master_binlog_checksum", "SELECT @@GLOBAL.server_id, @unset"} {
			r, err := c.Execute(q)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if v, _ := r.GetString(0, 0); q == "SELECT @master_binlog_checksum" && v != "CRC32" {
				t.Errorf("@master_binlog_checksum = %q", v)
			}
			r.Close()
		}
	}
	c.ResetSequence()
	if err := c.WritePacket(append([]byte{0, 0, 0, 0, mysql.COM_BINLOG_DUMP, 4, 0, 0, 0, 0, 0, 2, 0, 0, 0}, name...)); err != nil {
		t.Fatal(err)
	}
	var types []string
	for len(types) < 6 {
		pkt, err := c.ReadPacket()
		if err != nil {
			t.Fatal(err)
		}
		if pkt[0] != mysql.OK_HEADER {
			t.Fatalf("error from the dump: %q", pkt)
		}
		h, _ := replication.ParseHeader(pkt[1:])
		types = append(types, h.Type.String())
	}
	want := "RotateEvent,FormatDescriptionEvent,MariadbGTIDListEvent,MariadbGTIDEvent,QueryEvent,HeartbeatEvent"
	if strings.Join(types, ",") != want {
		t.Errorf("stream: %s\nwant %s", strings.Join(types, ","), want)
	}
	select {
	case p := <-reached:
		if p != stop {
			t.Errorf("reached %s, want %s", p, stop)
		}
	case <-time.After(5 * time.Second):
		t.Error("Reached not called")
	}
}

// startServer serves cfg on a loopback port until the test ends and
// returns its address.
func startServer(t *testing.T, cfg Config) string {
	t.Helper()
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go srv.Serve(ctx, ln)
	return ln.Addr().String()
}
