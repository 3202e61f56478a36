package archive

import (
	"bytes"
	"testing"

	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// TestScanFromMidFile: a scan that starts inside a checksummed file (a
// snapshot's coordinates) must still strip the CRC32 from statements, so
// that BEGIN … XID is one transaction and not one that ends at BEGIN.
func TestScanFromMidFile(t *testing.T) {
	b := newFakeBinlog("mysql-bin.000001")
	var file bytes.Buffer
	file.Write(replication.Magic)
	add := func(e replication.Event) replication.Event { file.Write(e.Raw); return e }
	fde := add(b.nextBody(gomysql.FORMAT_DESCRIPTION_EVENT, make([]byte, 80)))
	if !replication.HasChecksum(fde.Raw) {
		t.Fatal("the fake format description must carry a CRC32")
	}
	add(b.nextBody(gomysql.MARIADB_GTID_EVENT, mariaGTIDBody(1, 0)))
	add(b.nextBody(gomysql.QUERY_EVENT, queryBody("BEGIN")))
	add(b.next(gomysql.WRITE_ROWS_EVENTv1, 100))
	add(b.next(gomysql.XID_EVENT, 31))
	second := add(b.nextBody(gomysql.MARIADB_GTID_EVENT, mariaGTIDBody(2, 0)))
	add(b.nextBody(gomysql.QUERY_EVENT, queryBody("BEGIN")))
	add(b.next(gomysql.WRITE_ROWS_EVENTv1, 100))
	xid := add(b.next(gomysql.XID_EVENT, 31))
	ddl := add(b.nextBody(gomysql.MARIADB_GTID_EVENT, mariaGTIDBody(3, 0x01))) // standalone
	add(b.nextBody(gomysql.QUERY_EVENT, queryBody("CREATE TABLE t (x INT)")))

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
