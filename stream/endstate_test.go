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
	// 0-1-6 committed, 0-1-7 begun but not committed in the archive.
	f := binlogtest.NewFile("mysql-bin.000002", "0-1-5")
	f.Tx("0-1-6", time.Date(2026, 11, 25, 0, 0, 1, 0, time.UTC))
	f.Begin("0-1-7", time.Date(2026, 11, 25, 0, 0, 2, 0, time.UTC))
	file := bytes.NewBuffer(f.Bytes())
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
