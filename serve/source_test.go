package serve

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/stream"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
	"github.com/rs/zerolog"
)

// TestReadAcrossCompaction: a read of a file still in segments goes on
// from the compacted object when a compaction deletes the segments under
// it, every event once and in order; the file's state is read again.
func TestReadAcrossCompaction(t *testing.T) {
	ctx := context.Background()
	const tl = "000001-20261125T000000Z"
	mem := objstore.NewMemory()
	layout := archive.Layout{Cluster: "c"}
	cat := archive.Catalog{Store: mem, Layout: layout}
	put := func(key string, v any) {
		b, _ := json.Marshal(v)
		if _, err := mem.Put(ctx, key, b, objstore.PutOptions{IfAbsent: true}); err != nil {
			t.Fatal(err)
		}
	}
	put(layout.LayoutKey(), archive.LayoutInfo{Version: archive.LayoutVersionPlain})
	put(layout.TimelineKey(tl), &archive.TimelineInfo{Version: archive.LayoutVersionPlain, Timeline: tl, StartFile: "mysql-bin.000001", SourceServerID: 1, Reason: "new archive"})
	up, err := stream.NewUploader(stream.UploaderConfig{Concurrency: 2, MaxBufferedBytes: 1 << 20}, mem, layout, stream.Durable{Timeline: tl}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	seg := stream.NewSegmenter(stream.SegmenterConfig{FlushInterval: time.Hour, SegmentSize: 4096}, tl, replication.Position{File: "mysql-bin.000001"}, up)
	b := binlogtest.New("mysql-bin.000001")
	fde := b.Next(gomysql.FORMAT_DESCRIPTION_EVENT, 120)
	fde.Raw[len(fde.Raw)-5] = 1
	binary.LittleEndian.PutUint16(fde.Raw[replication.HeaderLen:], 4)
	binary.LittleEndian.PutUint32(fde.Raw[len(fde.Raw)-4:], crc32.ChecksumIEEE(fde.Raw[:len(fde.Raw)-4]))
	want := []uint64{fde.Start}
	if err := seg.Add(fde); err != nil {
		t.Fatal(err)
	}
	for range 30 {
		ev := b.Next(gomysql.WRITE_ROWS_EVENTv1, 1000)
		want = append(want, ev.Start)
		if err := seg.Add(ev); err != nil {
			t.Fatal(err)
		}
	}
	rot := b.Next(gomysql.ROTATE_EVENT, binlogtest.RotateSize)
	want = append(want, rot.Start)
	for _, step := range []func() error{func() error { return seg.Add(rot) }, func() error { return seg.FileDone(b.File, b.NextName()) }, seg.Flush} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := up.Drain(dctx); err != nil {
		t.Fatal(err)
	}

	src := &ArchiveSource{Catalog: cat, ReadSlots: 2}
	files, err := src.Files(ctx)
	if err != nil || len(files) != 1 || !files[0].Complete {
		t.Fatalf("files %+v, %v", files, err)
	}
	var got []uint64
	compacted := false
	err = src.Read(ctx, files[0], replication.MagicLen, func(off uint64, h replication.Header, raw []byte) error {
		got = append(got, off)
		if !compacted && len(got) == 2 {
			compacted = true
			res, err := cat.Compact(ctx, tl, files[0].Name)
			if err != nil || res.SegmentsDeleted < 4 {
				t.Fatalf("compaction: %+v %v", res, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read across the compaction: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d at %d, want %d", i, got[i], want[i])
		}
	}
}
