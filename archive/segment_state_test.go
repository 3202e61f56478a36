package archive

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/replication"

	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/binarc/binarc/replication"
	"github.com/klauspost/compress/zstd"
)

// TestSegmentStartState: a segment at a file's start describes the file's
// starting GTID state (its Gtid_list) for the file's index.
func TestSegmentStartState(t *testing.T) {
	mem := objstore.NewMemory()
	l := Layout{Cluster: "c"}
	c := Catalog{Store: mem, Layout: l}
	const tl = "000001-20261125T000000Z"
	plainTimeline(t, mem, l, tl)
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
	// The segment describes the file's starting state for its index.
	refs, _ := c.Segments(ctx, tl, "mysql-bin.000002")
	si, err := c.segmentInfoFromStore(ctx, refs[0])
	if err != nil || si.StartGTIDState == nil || *si.StartGTIDState != "0-1-5" {
		t.Fatalf("segment start state %v, %v", si.StartGTIDState, err)
	}
}
