package fetch

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// TestEachTransaction: the transactions of a timeline's files, filtered
// by time and text, in order, until the callback stops; a file wholly
// outside the times is not read.
func TestEachTransaction(t *testing.T) {
	a := newFetchArchive(t, ftl1)
	seq := uint64(0)
	// Three transactions of four events, one second each: GTID, BEGIN,
	// INSERT, XID. archive.Transaction n of a file begins at second 1+4n.
	txs := func(b *binlogtest.Binlog, add func(replication.Event)) {
		for i := 0; i < 3; i++ {
			seq++
			add(b.NextBody(gomysql.MARIADB_GTID_EVENT, binlogtest.MariaGTIDBody(seq, 0)))
			add(b.NextBody(gomysql.QUERY_EVENT, binlogtest.QueryBody("BEGIN")))
			add(b.NextBody(gomysql.QUERY_EVENT, binlogtest.QueryBody(fmt.Sprintf("INSERT INTO shop.orders%d VALUES (1)", seq))))
			add(b.Next(gomysql.XID_EVENT, 31))
		}
	}
	one := a.fileOf(ftl1, "mysql-bin.000001", replication.ChecksumCRC32, true, txs)
	a.shift = 24 * 3600
	a.fileOf(ftl1, "mysql-bin.000002", replication.ChecksumCRC32, false, txs)
	t0 := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	list := func(f TransactionFilter, stopAfter int) (string, error) {
		var got []string
		err := EachTransaction(context.Background(), a.cat, ftl1, f, func(tx *archive.Transaction) bool {
			if tx.Timeline != ftl1 {
				t.Errorf("transaction %s has timeline %q", tx.GTID, tx.Timeline)
			}
			got = append(got, tx.File[len(tx.File)-1:]+"/"+tx.GTID)
			return stopAfter == 0 || len(got) < stopAfter
		})
		return strings.Join(got, " "), err
	}
	cases := []struct {
		name      string
		f         TransactionFilter
		stopAfter int
		want      string
	}{
		{"all", TransactionFilter{}, 0, "1/0-1-1 1/0-1-2 1/0-1-3 2/0-1-4 2/0-1-5 2/0-1-6"},
		{"grep in a statement", TransactionFilter{Grep: "ORDERS5"}, 0, "2/0-1-5"},
		{"grep nothing", TransactionFilter{Grep: "customers"}, 0, ""},
		{"from", TransactionFilter{From: t0.Add(5 * time.Second)}, 0, "1/0-1-2 1/0-1-3 2/0-1-4 2/0-1-5 2/0-1-6"},
		{"to", TransactionFilter{To: t0.Add(5 * time.Second)}, 0, "1/0-1-1 1/0-1-2"},
		{"from and to", TransactionFilter{From: t0.Add(day), To: t0.Add(day + 5*time.Second)}, 0, "2/0-1-4 2/0-1-5"},
		{"stop", TransactionFilter{}, 4, "1/0-1-1 1/0-1-2 1/0-1-3 2/0-1-4"},
	}
	for _, c := range cases {
		got, err := list(c.f, c.stopAfter)
		if err != nil || got != c.want {
			t.Errorf("%s: %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	// With a segment of file 1 gone, reading it fails, and a filter that
	// leaves it out does not read it.
	must(t, a.mem.Delete(context.Background(), a.segmentKey(one, one.events[5])))
	if _, err := list(TransactionFilter{}, 0); err == nil {
		t.Fatal("a file with a segment missing was read without an error")
	}
	if got, err := list(TransactionFilter{From: t0.Add(day)}, 0); err != nil || got != "2/0-1-4 2/0-1-5 2/0-1-6" {
		t.Fatalf("from the second file's day: %q, %v; want its transactions, the first file unread", got, err)
	}
}
