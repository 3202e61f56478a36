package archive

import (
	"bytes"
	"testing"

	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// TestScanFromMidFile: a scan that starts inside a checksummed file (a
// snapshot's coordinates) must still strip the CRC32 from statements, so
// that BEGIN … XID is one transaction and not one that ends at BEGIN.
func TestScanFromMidFile(t *testing.T) {
	b := binlogtest.New("mysql-bin.000001")
	var file bytes.Buffer
	file.Write(replication.Magic)
	add := func(e replication.Event) replication.Event { file.Write(e.Raw); return e }
	fde := add(b.NextBody(gomysql.FORMAT_DESCRIPTION_EVENT, make([]byte, 80)))
	if !replication.HasChecksum(fde.Raw) {
		t.Fatal("the fake format description must carry a CRC32")
	}
	add(b.NextBody(gomysql.MARIADB_GTID_EVENT, binlogtest.MariaGTIDBody(1, 0)))
	add(b.NextBody(gomysql.QUERY_EVENT, binlogtest.QueryBody("BEGIN")))
	add(b.Next(gomysql.WRITE_ROWS_EVENTv1, 100))
	add(b.Next(gomysql.XID_EVENT, 31))
	second := add(b.NextBody(gomysql.MARIADB_GTID_EVENT, binlogtest.MariaGTIDBody(2, 0)))
	add(b.NextBody(gomysql.QUERY_EVENT, binlogtest.QueryBody("BEGIN")))
	add(b.Next(gomysql.WRITE_ROWS_EVENTv1, 100))
	xid := add(b.Next(gomysql.XID_EVENT, 31))
	ddl := add(b.NextBody(gomysql.MARIADB_GTID_EVENT, binlogtest.MariaGTIDBody(3, 0x01))) // standalone
	add(b.NextBody(gomysql.QUERY_EVENT, binlogtest.QueryBody("CREATE TABLE t (x INT)")))

	for _, from := range []uint64{0, second.Start} {
		var got []*Transaction
		_, err := scanFile("mysql-bin.000001", bytes.NewReader(file.Bytes()), from, func(tx *Transaction) (bool, error) {
			got = append(got, tx)
			return true, nil
		})
		must(t, err)
		want := 3
		if from > 0 {
			want = 2
		}
		if len(got) != want {
			t.Fatalf("from %d: %d transactions, want %d: %+v", from, len(got), want, got)
		}
		mid := got[len(got)-2]
		if mid.GTID != "0-1-2" || mid.Start != second.Start || mid.End != xid.End {
			t.Errorf("from %d: transaction 0-1-2 is [%d,%d) %q, want [%d,%d)", from, mid.Start, mid.End, mid.GTID, second.Start, xid.End)
		}
		last := got[len(got)-1]
		if last.Start != ddl.Start || last.Summary() != "CREATE TABLE t (x INT)" {
			t.Errorf("from %d: DDL transaction %+v (summary %q)", from, last, last.Summary())
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestScanGroupsAsTheServerWritesThem: MariaDB writes no BEGIN after a
// transaction's GTID event (the GTID event is the BEGIN), so a
// statement-based transaction is GTID, its statements, then XID or a
// COMMIT query; an XA transaction's first half ends at XA PREPARE;
// MySQL's compressed transaction is one payload event. A group the scan
// does not know the end of ends where the next begins, and a group whose
// end is not in the file is not reported but said to be open.
func TestScanGroupsAsTheServerWritesThem(t *testing.T) {
	b := binlogtest.New("mysql-bin.000001")
	var file bytes.Buffer
	file.Write(replication.Magic)
	add := func(e replication.Event) replication.Event { file.Write(e.Raw); return e }
	add(b.NextBody(gomysql.FORMAT_DESCRIPTION_EVENT, make([]byte, 80)))
	type span struct {
		gtid       string
		start, end uint64
	}
	var want []span
	group := func(gtid string, seq uint64, flags byte, events ...func() replication.Event) {
		start := add(b.NextBody(gomysql.MARIADB_GTID_EVENT, binlogtest.MariaGTIDBody(seq, flags))).Start
		var last replication.Event
		for _, ev := range events {
			last = ev()
		}
		want = append(want, span{gtid, start, last.End})
	}
	query := func(q string) func() replication.Event {
		return func() replication.Event { return add(b.NextBody(gomysql.QUERY_EVENT, binlogtest.QueryBody(q))) }
	}
	event := func(typ gomysql.EventType, size int) func() replication.Event {
		return func() replication.Event { return add(b.Next(typ, size)) }
	}
	// Statement-based InnoDB: two statements, then the XID.
	group("0-1-1", 1, 0, query("INSERT INTO t VALUES (1)"), query("INSERT INTO t VALUES (2)"), event(gomysql.XID_EVENT, 31))
	// Statement-based MyISAM: the statement, then a COMMIT query.
	group("0-1-2", 2, 0, query("INSERT INTO m VALUES (1)"), query("COMMIT"))
	// Row-based CREATE TABLE … SELECT: the DDL, its rows, the XID.
	group("0-1-3", 3, 0, query("CREATE TABLE c SELECT * FROM t"), event(gomysql.TABLE_MAP_EVENT, 40), event(gomysql.WRITE_ROWS_EVENTv1, 60), event(gomysql.XID_EVENT, 31))
	// A DDL: FL_STANDALONE, the statement alone.
	group("0-1-4", 4, 0x01, query("CREATE TABLE d (x INT)"))
	// XA: the prepared half, then the commit.
	group("0-1-5", 5, 0, query("XA START 'x'"), event(gomysql.WRITE_ROWS_EVENTv1, 60), query("XA END 'x'"), event(gomysql.XA_PREPARE_LOG_EVENT, 40))
	group("0-1-6", 6, 0, query("XA COMMIT 'x'"))
	// MySQL's compressed transaction.
	group("0-1-7", 7, 0, event(gomysql.TRANSACTION_PAYLOAD_EVENT, 200))
	// A group of an event type the scan cannot end: it ends at the next.
	unknown := add(b.NextBody(gomysql.MARIADB_GTID_EVENT, binlogtest.MariaGTIDBody(8, 0))).Start
	add(b.Next(gomysql.WRITE_ROWS_EVENTv1, 60))
	want = append(want, span{"0-1-8", unknown, b.Pos})
	group("0-1-9", 9, 0, query("INSERT INTO t VALUES (3)"), event(gomysql.XID_EVENT, 31))
	// A statement-based LOAD DATA: its file's block, the statement, the XID.
	load := "LOAD DATA INFILE '/tmp/SQL_LOAD-1-2-3.data' INTO TABLE t"
	group("0-1-11", 11, 0, event(gomysql.BEGIN_LOAD_QUERY_EVENT, 30), func() replication.Event {
		return add(b.NextBody(gomysql.EXECUTE_LOAD_QUERY_EVENT, append(make([]byte, 26), append([]byte{0}, load...)...)))
	}, event(gomysql.XID_EVENT, 31))
	// The tail: a transaction whose commit the file does not hold.
	tail := add(b.NextBody(gomysql.MARIADB_GTID_EVENT, binlogtest.MariaGTIDBody(12, 0))).Start
	add(b.NextBody(gomysql.QUERY_EVENT, binlogtest.QueryBody("INSERT INTO t VALUES (4)")))

	var got []span
	var loadStatements []string
	open, err := scanFile("mysql-bin.000001", bytes.NewReader(file.Bytes()), 0, func(tx *Transaction) (bool, error) {
		got = append(got, span{tx.GTID, tx.Start, tx.End})
		if tx.GTID == "0-1-11" {
			loadStatements = tx.Statements
		}
		return true, nil
	})
	must(t, err)
	if len(got) != len(want) {
		t.Fatalf("%d transactions %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("transaction %d is %+v, want %+v", i, got[i], want[i])
		}
	}
	if len(loadStatements) != 1 || loadStatements[0] != load {
		t.Errorf("the LOAD DATA transaction's statements are %q, want [%q]", loadStatements, load)
	}
	if open != tail {
		t.Errorf("open transaction at %d, want %d (0-1-12's start)", open, tail)
	}
}
