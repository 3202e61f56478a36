package stream

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/replication"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/binarc/binarc/replication"
	"github.com/klauspost/compress/zstd"
)

// TestEndState: the GTID state at a timeline's durable end is its last
// file's Gtid_list plus the transactions archived whole after it; a
// transaction whose commit is not archived yet is not in it.
func TestEndState(t *testing.T) {
	mem := objstore.NewMemory()
	l := archive.Layout{Cluster: "c"}
	c := archive.Catalog{Store: mem, Layout: l}
	const tl = "000001-20261125T000000Z"
	ti := &archive.TimelineInfo{Version: archive.LayoutVersionPlain, Timeline: tl, StartFile: "mysql-bin.000001", SourceServerID: 1, Reason: "new archive"}
	if _, err := mem.Put(context.Background(), l.TimelineKey(tl), archive.MarshalJSON(ti), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	b := binlogtest.New("mysql-bin.000002")
	var file bytes.Buffer
	file.Write(replication.Magic)
	add := func(e replication.Event) { file.Write(e.Raw) }
	add(b.NextBody(gomysql.FORMAT_DESCRIPTION_EVENT, make([]byte, 80)))
	list := binary.LittleEndian.AppendUint32(nil, 1)
	list = binary.LittleEndian.AppendUint32(list, 0)
	list = binary.LittleEndian.AppendUint32(list, 1)
	list = binary.LittleEndian.AppendUint64(list, 5)
	add(b.NextBody(gomysql.MARIADB_GTID_LIST_EVENT, list))
	add(b.NextBody(gomysql.MARIADB_GTID_EVENT, binlogtest.MariaGTIDBody(6, 0)))
	add(b.NextBody(gomysql.QUERY_EVENT, binlogtest.QueryBody("BEGIN")))
	add(b.Next(gomysql.XID_EVENT, 31))
	add(b.NextBody(gomysql.MARIADB_GTID_EVENT, binlogtest.MariaGTIDBody(7, 0)))
	add(b.NextBody(gomysql.QUERY_EVENT, binlogtest.QueryBody("BEGIN")))
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	ctx := context.Background()
	if _, err := mem.Put(ctx, l.SegmentKey(tl, "mysql-bin.000002", 0, uint64(file.Len())), enc.EncodeAll(file.Bytes(), nil), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	st, ok, err := endState(ctx, c, tl)
	if err != nil || !ok {
		t.Fatalf("%v %v", ok, err)
	}
	if st.String() != "0-1-6" {
		t.Fatalf("end state %s, want 0-1-6 (0-1-7 is not committed in the archive)", st)
	}
}
