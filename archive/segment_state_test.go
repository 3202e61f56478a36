package archive

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/binlogtest"
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
	f := binlogtest.NewFile("mysql-bin.000002", "0-1-5")
	f.Tx("0-1-6", time.Date(2026, 11, 25, 0, 0, 1, 0, time.UTC))
	file := bytes.NewBuffer(f.Bytes())
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
