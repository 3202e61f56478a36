package serve

import (
	"bytes"
	"context"
	"encoding/binary"
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

func TestParseDump(t *testing.T) {
	pkt := func(name string) []byte {
		return append([]byte{4, 1, 0, 0, 3, 0, 7, 0, 0, 0}, name...)
	}
	for _, c := range []struct{ body, want string }{
		{"mysql-bin.000002", "mysql-bin.000002"},
		{"mysql-bin.000002\x00", "mysql-bin.000002"},
		{"mysql-bin.000002\x00junk", "mysql-bin.000002"},
		{"", ""},
		{"\x00", ""},
	} {
		r, err := parseDump(pkt(c.body))
		if err != nil || r.File != c.want || r.Pos != 260 || r.ServerID != 7 || !r.NonBlock() || !r.Annotate() {
			t.Errorf("parseDump(%q) = %+v, %v; want file %q, pos 260, server 7, both flags", c.body, r, err, c.want)
		}
	}
	if _, err := parseDump([]byte{4, 0, 0}); err == nil || !strings.Contains(err.Error(), "shorter") {
		t.Errorf("short packet: %v", err)
	}
}

// annotatedFiles writes two binlog files with rows events and their
// Annotate_rows (binlog_annotate_row_events), the first ending in a
// rotate: 0-1-1 (BEGIN, annotate, table map, rows, XID), 0-1-2 (DDL), and
// in the second 0-1-3 like the first.
func annotatedFiles(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	b := binlogtest.New("mysql-bin.000001")
	for i, seqs := range [][]uint64{{1, 2}, {3}} {
		var file bytes.Buffer
		file.Write(replication.Magic)
		add := func(e replication.Event) { file.Write(e.Raw) }
		fde := make([]byte, 80)
		binary.LittleEndian.PutUint16(fde, 4)
		fde[len(fde)-1] = 1
		add(b.NextBody(gomysql.FORMAT_DESCRIPTION_EVENT, fde))
		add(b.NextBody(gomysql.MARIADB_GTID_LIST_EVENT, fakeGTIDList(1, 0, []gtidEntry{{0, 1, seqs[0] - 1}}, false)[replication.HeaderLen:]))
		add(b.NextBody(gomysql.MARIADB_BINLOG_CHECKPOINT_EVENT, append([]byte{16, 0, 0, 0}, "mysql-bin.000001"...)))
		for _, seq := range seqs {
			if seq == 2 {
				add(b.NextBody(gomysql.MARIADB_GTID_EVENT, binlogtest.MariaGTIDBody(seq, 0x01)))
				add(b.NextBody(gomysql.QUERY_EVENT, binlogtest.QueryBody("CREATE TABLE t2 (x INT)")))
				continue
			}
			add(b.NextBody(gomysql.MARIADB_GTID_EVENT, binlogtest.MariaGTIDBody(seq, 0)))
			add(b.NextBody(gomysql.QUERY_EVENT, binlogtest.QueryBody("BEGIN")))
			add(b.NextBody(gomysql.MARIADB_ANNOTATE_ROWS_EVENT, []byte("INSERT INTO t VALUES (1)")))
			add(b.Next(gomysql.TABLE_MAP_EVENT, 50))
			add(b.Next(gomysql.WRITE_ROWS_EVENTv1, 60))
			add(b.Next(gomysql.XID_EVENT, 31))
		}
		if i == 0 {
			add(b.Next(gomysql.ROTATE_EVENT, binlogtest.RotateSize))
		}
		if err := os.WriteFile(filepath.Join(dir, b.File), file.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		names = append(names, b.File)
		b.File, b.Pos = b.NextName(), replication.MagicLen
	}
	return names
}

// gtidDirSource is a DirSource that knows each file's last GTID, as the
// archive's index does.
type gtidDirSource struct {
	DirSource
	first, last []string
	primary     *Primary // what the archive recorded of its primary, if anything
}

func (g *gtidDirSource) Files(ctx context.Context) ([]File, error) {
	files, err := g.DirSource.Files(ctx)
	for i := range files {
		files[i].LastGTID = g.last[i]
		if g.first != nil {
			files[i].FirstGTID = g.first[i]
		}
	}
	return files, err
}

func (g *gtidDirSource) Primary(context.Context) (Primary, error) {
	if g.primary == nil {
		return Primary{}, nil
	}
	return *g.primary, nil
}

// dumped is what a client received from one COM_BINLOG_DUMP.
type dumped struct {
	events [][]byte // each event, without the OK byte
	eof    bool     // the stream ended with an EOF packet
	err    string   // or with this error
}

func (d dumped) types() string {
	var s []string
	for _, ev := range d.events {
		s = append(s, gomysql.EventType(ev[4]).String())
	}
	return strings.Join(s, ",")
}

// dumpWith connects, runs setup, sends COM_BINLOG_DUMP with flags for
// file, and reads until an EOF, an error or (blocking) a heartbeat.
func dumpWith(t *testing.T, addr string, setup []string, flags uint16, file string) dumped {
	t.Helper()
	c, err := client.Connect(addr, "u", "p", "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, q := range append([]string{"SET @master_heartbeat_period=100000000"}, setup...) {
		if _, err := c.Execute(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	c.ResetSequence()
	pkt := []byte{0, 0, 0, 0, mysql.COM_BINLOG_DUMP, 4, 0, 0, 0, byte(flags), byte(flags >> 8), 2, 0, 0, 0}
	if err := c.WritePacket(append(pkt, file...)); err != nil {
		t.Fatal(err)
	}
	var d dumped
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		p, err := c.ReadPacket()
		if err != nil {
			if me, ok := err.(*mysql.MyError); ok {
				d.err = me.Message
				return d
			}
			t.Fatal(err)
		}
		switch p[0] {
		case mysql.EOF_HEADER:
			d.eof = true
			// The connection stays usable, as after any command.
			c.ResetSequence()
			if _, err := c.Execute("SELECT 1"); err != nil {
				t.Errorf("query after the EOF: %v", err)
			}
			return d
		case mysql.ERR_HEADER:
			d.err = string(p[9:])
			return d
		}
		if gomysql.EventType(p[1+4]) == gomysql.HEARTBEAT_EVENT {
			return d
		}
		d.events = append(d.events, append([]byte(nil), p[1:]...))
	}
	t.Fatal("the dump neither ended nor idled")
	return d
}

// TestDumpFlags: the file name as MariaDB reads it, the non-blocking
// flag for file and GTID dumps (EOF after the last event), and
// Annotate_rows and MariaDB's other events sent, left out or replaced as
// the flags and @mariadb_slave_capability ask (sql_repl.cc,
// send_event_to_slave).
func TestDumpFlags(t *testing.T) {
	dir := t.TempDir()
	names := annotatedFiles(t, dir)
	src := &gtidDirSource{DirSource: DirSource{Dir: dir, Names: names}, last: []string{"0-1-2", "0-1-3"}}
	addr := startServer(t, Config{Source: src, User: "u", Password: "p", ServerID: 9, Log: zerolog.Nop()})
	replica := []string{"SET @master_binlog_checksum= @@global.binlog_checksum", "SET @mariadb_slave_capability=4"}
	const nonBlock, annotate = 1, 2

	full := "RotateEvent,FormatDescriptionEvent,MariadbGTIDListEvent,MariadbBinLogCheckPointEvent," +
		"MariadbGTIDEvent,QueryEvent,MariadbAnnotateRowsEvent,TableMapEvent,WriteRowsEventV1,XIDEvent," +
		"MariadbGTIDEvent,QueryEvent,RotateEvent," +
		"RotateEvent,FormatDescriptionEvent,MariadbGTIDListEvent,MariadbBinLogCheckPointEvent," +
		"MariadbGTIDEvent,QueryEvent,MariadbAnnotateRowsEvent,TableMapEvent,WriteRowsEventV1,XIDEvent"
	noAnnotate := strings.ReplaceAll(full, "MariadbAnnotateRowsEvent,", "")
	for _, c := range []struct {
		name  string
		setup []string
		flags uint16
		file  string
		want  string
		eof   bool
	}{
		{"NUL-terminated name", replica, nonBlock | annotate, names[0] + "\x00", full, true},
		{"empty name is the first file", replica, nonBlock | annotate, "", full, true},
		{"blocking: no EOF", replica, annotate, names[0], full, false},
		{"annotate not asked", replica, nonBlock, names[0], noAnnotate, true},
		{"GTID dump, non-blocking", append(replica, "SET @slave_connect_state='0-1-1'"), nonBlock, "",
			"RotateEvent,FormatDescriptionEvent,MariadbGTIDListEvent,MariadbBinLogCheckPointEvent,MariadbGTIDListEvent,MariadbGTIDEvent,QueryEvent,RotateEvent," +
				"RotateEvent,FormatDescriptionEvent,MariadbGTIDListEvent,MariadbBinLogCheckPointEvent,MariadbGTIDEvent,QueryEvent,TableMapEvent,WriteRowsEventV1,XIDEvent", true},
		{"capability 1 gets annotate", []string{"SET @master_binlog_checksum='NONE'", "SET @mariadb_slave_capability=1"}, nonBlock, names[1],
			"RotateEvent,FormatDescriptionEvent,QueryEvent,QueryEvent,QueryEvent,QueryEvent,MariadbAnnotateRowsEvent,TableMapEvent,WriteRowsEventV1,XIDEvent", true},
		{"capability 0: dummies and BEGIN", []string{"SET @master_binlog_checksum='NONE'"}, nonBlock, names[1],
			"RotateEvent,FormatDescriptionEvent,QueryEvent,QueryEvent,QueryEvent,QueryEvent,QueryEvent,TableMapEvent,WriteRowsEventV1,XIDEvent", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := dumpWith(t, addr, c.setup, c.flags, c.file)
			if d.err != "" || d.types() != c.want || d.eof != c.eof {
				t.Errorf("got %s (eof %v, error %q)\nwant %s (eof %v)", d.types(), d.eof, d.err, c.want, c.eof)
			}
			for i, ev := range d.events {
				if i > 0 && !replication.HasChecksum(ev) {
					t.Errorf("event %d (%s) has no valid checksum", i, gomysql.EventType(ev[4]))
				}
			}
			if strings.HasPrefix(c.name, "capability 0") {
				// Gtid_list, checkpoint, GTID 0-1-3, BEGIN, annotate
				var qs []string
				for _, ev := range d.events[2:7] {
					qs = append(qs, queryText(ev, true))
				}
				want := "# DUMM,# DUMM,BEGIN,BEGIN,# DUMMY EV" // the comment as long as the event it replaces
				if strings.Join(qs, ",") != want {
					t.Errorf("statements for an old client: %q\nwant %q", strings.Join(qs, ","), want)
				}
			}
		})
	}
}

// TestDummyEvent: an event too short for a comment becomes a NULL user
// variable, as in MariaDB, with the same size and a valid checksum.
func TestDummyEvent(t *testing.T) {
	ev := binlogtest.New("mysql-bin.000001").NextBody(gomysql.MARIADB_GTID_LIST_EVENT, make([]byte, 8)).Raw
	n := len(ev)
	if err := dummyEvent(ev, true); err != nil {
		t.Fatal(err)
	}
	if gomysql.EventType(ev[4]) != gomysql.USER_VAR_EVENT || len(ev) != n || !replication.HasChecksum(ev) {
		t.Errorf("dummy: %s, %d bytes, checksum %v", gomysql.EventType(ev[4]), len(ev), replication.HasChecksum(ev))
	}
	if name := string(ev[replication.HeaderLen+4 : replication.HeaderLen+4+3]); name != "!du" || ev[n-5] != 1 {
		t.Errorf("dummy variable %q, null flag %d", name, ev[n-5])
	}
	short := binlogtest.New("mysql-bin.000001").NextBody(gomysql.MARIADB_GTID_LIST_EVENT, make([]byte, 4)).Raw
	if err := dummyEvent(short, true); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("a 27-byte event: %v", err)
	}
}

// TestNonBlockAtStop: a non-blocking dump of a serve with --to ends with
// the EOF right after the stop's transaction.
func TestNonBlockAtStop(t *testing.T) {
	dir := t.TempDir()
	name, evs := testFile(t, dir)
	stop := replication.Position{File: name, Offset: evs[7].End} // after the DDL 0-1-2
	addr := startServer(t, Config{Source: &DirSource{Dir: dir, Names: []string{name}}, User: "u", Password: "p", ServerID: 9,
		Stop: Stop{Position: stop}, Log: zerolog.Nop()})
	d := dumpWith(t, addr, []string{"SET @master_binlog_checksum=@@global.binlog_checksum", "SET @mariadb_slave_capability=4"}, 1, name)
	want := "RotateEvent,FormatDescriptionEvent,MariadbGTIDListEvent,MariadbGTIDEvent,QueryEvent,WriteRowsEventV1,XIDEvent,MariadbGTIDEvent,QueryEvent"
	if !d.eof || d.types() != want {
		t.Errorf("got %s (eof %v, error %q)\nwant %s, then EOF", d.types(), d.eof, d.err, want)
	}
}
