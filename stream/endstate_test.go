package stream

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/klauspost/compress/zstd"
)

// TestEndState: the GTID state at a timeline's durable end is its last
// file's Gtid_list plus the transactions archived whole after it, whatever
// ends them (an XID, a DDL's one statement, a COMMIT query); a
// transaction whose commit is not archived yet is not in it.
func TestEndState(t *testing.T) {
	at := func(s int) time.Time { return time.Date(2026, 11, 25, 0, 0, s, 0, time.UTC) }
	for _, c := range []struct {
		name string
		last func(f *binlogtest.File)
		want string
	}{
		{"a transaction begun, not committed in the archive", func(f *binlogtest.File) { f.Begin("0-1-7", at(2)) }, "0-1-6"},
		{"a DDL last", func(f *binlogtest.File) { f.Group("0-1-7", at(2), true, "CREATE TABLE t (x INT)") }, "0-1-7"},
		{"a non-transactional statement group last", func(f *binlogtest.File) {
			f.Group("0-1-7", at(2), false, "INSERT INTO m VALUES (1)", "COMMIT")
		}, "0-1-7"},
		{"a statement-based transaction last", func(f *binlogtest.File) {
			f.TxStatements("0-1-7", at(2), "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (2)")
		}, "0-1-7"},
		{"GTIDs off: an empty start state, transactions without GTIDs", nil, "unknown"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := objstore.NewMemory()
			l := archive.Layout{Cluster: "c"}
			cat := archive.Catalog{Store: mem, Layout: l}
			const tl = "000001-20261125T000000Z"
			ti := &archive.TimelineInfo{Version: archive.LayoutVersionPlain, Timeline: tl, StartFile: "mysql-bin.000001", SourceServerID: 1, Reason: "new archive"}
			ctx := context.Background()
			if _, err := mem.Put(ctx, l.TimelineKey(tl), archive.MarshalJSON(ti), objstore.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			f := binlogtest.NewFile("mysql-bin.000002", "0-1-5")
			if c.last == nil {
				f = binlogtest.NewFile("mysql-bin.000002")
				f.TxNoGTID(at(1))
			} else {
				f.Tx("0-1-6", at(1))
				c.last(f)
			}
			file := bytes.NewBuffer(f.Bytes())
			enc, _ := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
			if _, err := mem.Put(ctx, l.SegmentKey(tl, "mysql-bin.000002", 0, uint64(file.Len())), enc.EncodeAll(file.Bytes(), nil), objstore.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			st, ok, err := endState(ctx, cat, tl)
			if c.want == "unknown" {
				if err != nil || ok {
					t.Fatalf("end state %v known %v (%v); want it unknown: the new timeline must start at the oldest binlog", st, ok, err)
				}
				return
			}
			if err != nil || !ok {
				t.Fatalf("%v %v", ok, err)
			}
			if st.String() != c.want {
				t.Fatalf("end state %s, want %s", st, c.want)
			}
		})
	}
}
