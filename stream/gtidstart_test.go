package stream

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/binlogtest"
)

// TestDumpStarts: after the archived end state, a new primary is asked
// for the states at the start of the timeline's last files, newest first,
// each once, at most maxDumpStarts of them.
func TestDumpStarts(t *testing.T) {
	mem := objstore.NewMemory()
	l := archive.Layout{Cluster: "c"}
	c := archive.Catalog{Store: mem, Layout: l}
	ctx := context.Background()
	const tl = "000001-20261125T000000Z"
	ti := &archive.TimelineInfo{Version: archive.LayoutVersionPlain, Timeline: tl, StartFile: "mysql-bin.000001", SourceServerID: 1, Reason: "new archive"}
	if _, err := mem.Put(ctx, l.TimelineKey(tl), archive.MarshalJSON(ti), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	at := time.Date(2026, 11, 25, 0, 0, 1, 0, time.UTC)
	// Files 1..5 start at 0-1-1, 0-1-2, 0-1-3, 0-1-3 (3 is empty) and 0-1-4.
	files := []struct{ start, tx string }{{"0-1-1", "0-1-2"}, {"0-1-2", "0-1-3"}, {"0-1-3", ""}, {"0-1-3", "0-1-4"}, {"0-1-4", "0-1-5"}}
	for i, fl := range files {
		name := fmt.Sprintf("mysql-bin.%06d", i+1)
		f := binlogtest.NewFile(name, fl.start)
		if fl.tx != "" {
			f.Tx(fl.tx, at)
		}
		b := f.Bytes()
		if _, err := mem.Put(ctx, l.SegmentKey(tl, name, 0, uint64(len(b))), enc.EncodeAll(b, nil), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	end, ok, err := endState(ctx, c, tl)
	if err != nil || !ok {
		t.Fatalf("end state: %v %v", ok, err)
	}
	var got []string
	for _, st := range dumpStarts(ctx, c, tl, end) {
		got = append(got, st.String())
	}
	// The end state, then the starts of files 5 and 4; file 3 starts
	// where 4 does (asked once); file 2 is past the bound.
	if want := "0-1-5 0-1-4 0-1-3"; strings.Join(got, " ") != want {
		t.Fatalf("dump starts %v, want %s", got, want)
	}
}
