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
		err := scanFile("mysql-bin.000001", bytes.NewReader(file.Bytes()), from, func(tx *Transaction) (bool, error) {
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
