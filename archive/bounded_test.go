package archive

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"testing"

	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/klauspost/compress/zstd"
)

// plainTimeline stores the manifest of a clear-text timeline tl: readers
// check a data object against its timeline's encryption.
func plainTimeline(t testing.TB, s objstore.Store, l Layout, tl string) {
	t.Helper()
	ti := &TimelineInfo{Version: LayoutVersionPlain, Timeline: tl, StartFile: "mysql-bin.000001", SourceServerID: 1, Reason: "new archive"}
	if _, err := s.Put(context.Background(), l.TimelineKey(tl), MarshalJSON(ti), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

// allocated runs fn and returns the bytes it allocated.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestZstdBombSegment: a bomb stored as a segment of 1 MiB fails as
// oversize, having decoded little more than the segment's range.
func TestZstdBombSegment(t *testing.T) {
	bomb := binlogtest.ZstdBomb(t)
	mem := objstore.NewMemory()
	c := Catalog{Store: mem, Layout: Layout{Cluster: "c"}}
	plainTimeline(t, mem, c.Layout, "000001-20260101T000000Z")
	key := c.Layout.SegmentKey("000001-20260101T000000Z", "mysql-bin.000001", 0, 1<<20)
	if _, err := mem.Put(context.Background(), key, bomb, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	var err error
	n := allocated(func() { _, err = c.ReadSegment(context.Background(), key) })
	if !errors.Is(err, ErrOversize) {
		t.Fatalf("ReadSegment of a bomb: %v; want ErrOversize", err)
	}
	if n > 64<<20 {
		t.Fatalf("ReadSegment of a bomb allocated %d MiB; want under 64", n>>20)
	}
	t.Logf("bomb of %d KiB: %v (allocated %d MiB)", len(bomb)>>10, err, n>>20)

	// A stored object larger than its range could compress to is not
	// even read whole.
	big := make([]byte, 4<<20)
	if _, err := mem.Put(context.Background(), key, big, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadSegment(context.Background(), key); !errors.Is(err, objstore.ErrTooLarge) {
		t.Fatalf("ReadSegment of a 4 MiB object named 1 MiB: %v; want ErrTooLarge", err)
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// TestZstdBombCompacted: a bomb stored as a compacted file writes no more
// than the indexed size, and fails.
func TestZstdBombCompacted(t *testing.T) {
	mem := objstore.NewMemory()
	c := Catalog{Store: mem, Layout: Layout{Cluster: "c"}}
	tl, file := "000001-20260101T000000Z", "mysql-bin.000001"
	plainTimeline(t, mem, c.Layout, tl)
	fs := &FileState{Timeline: tl, File: file, Size: 1 << 20, Complete: true, Closed: true,
		CompactedKey: c.Layout.CompactedKey(tl, file),
		Segments:     []SegmentRef{{Key: c.Layout.SegmentKey(tl, file, 0, 1<<20), Start: 0, End: 1 << 20}}}
	if _, err := mem.Put(context.Background(), fs.CompactedKey, binlogtest.ZstdBomb(t), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	var w countWriter
	var err error
	n := allocated(func() { _, err = c.Rebuild(context.Background(), fs, &w) })
	if !errors.Is(err, ErrOversize) {
		t.Fatalf("Rebuild of a compacted bomb: %v; want ErrOversize", err)
	}
	if w.n > int64(fs.Size) {
		t.Fatalf("Rebuild wrote %d bytes, past the indexed size %d", w.n, fs.Size)
	}
	if n > 64<<20 {
		t.Fatalf("Rebuild of a bomb allocated %d MiB; want under 64", n>>20)
	}
	ix := &FileIndex{Size: fs.Size}
	if _, err := c.checkCompacted(context.Background(), fs.CompactedKey, ix, nil); !errors.Is(err, ErrOversize) {
		t.Fatalf("checkCompacted of a bomb: %v; want ErrOversize", err)
	}
}

// TestDecodeSegmentExact: a segment decodes to its range, no more, no less.
func TestDecodeSegmentExact(t *testing.T) {
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	plain := bytes.Repeat([]byte("binlog"), 1000)
	z := enc.EncodeAll(plain, nil)
	got, err := DecodeSegment(z, uint64(len(plain)))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("DecodeSegment: %v", err)
	}
	if _, err := DecodeSegment(z, uint64(len(plain)-1)); !errors.Is(err, ErrOversize) {
		t.Fatalf("DecodeSegment one byte short: %v; want ErrOversize", err)
	}
	if _, err := DecodeSegment(append(z, z...), uint64(len(plain))); !errors.Is(err, ErrOversize) {
		t.Fatalf("DecodeSegment of two frames: %v; want ErrOversize", err)
	}
}

// TestTimelineInfoChecked: names in timeline.json are validated and its
// free text made safe to print.
func TestTimelineInfoChecked(t *testing.T) {
	ti := TimelineInfo{StartFile: "mysql-bin.000001", Reason: "new\x1b[2Karchive", SourceAddr: "db1:3306"}
	if err := ti.check(); err != nil || ti.Reason != `new\x1b[2Karchive` {
		t.Fatalf("check: %v %q", err, ti.Reason)
	}
	// A previous timeline that archived no binlog (a switch, and another
	// before anything was archived) ends nowhere: binarc stream writes
	// that, and every reader must take it (the campaign's seed 44 found
	// ls, verify and restore refusing such an archive).
	empty := TimelineInfo{StartFile: "mysql-bin.000001", Previous: &TimelineEnd{Timeline: "000006-20261206T205758Z"}}
	if err := empty.check(); err != nil {
		t.Fatalf("a previous timeline that archived nothing: %v", err)
	}
	for _, bad := range []TimelineInfo{
		{StartFile: ".."},
		{Previous: &TimelineEnd{Timeline: "", File: "mysql-bin.000001"}},
		{Previous: &TimelineEnd{Timeline: "000001-20260101T000000Z", File: "../../x"}},
		{Previous: &TimelineEnd{Timeline: "../x", File: "mysql-bin.000001"}},
	} {
		if err := bad.check(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
