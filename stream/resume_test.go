package stream

import (
	"bytes"
	"context"
	"testing"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/crypt"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
	"github.com/rs/zerolog"
)

// buildArchive archives two files: the first ends with a ROTATE, the
// second is live. It returns the store and the end of each file.
func buildArchive(t *testing.T) (*objstore.Memory, []uint64, []byte) {
	return buildArchiveSealed(t, nil)
}

// buildArchiveSealed is buildArchive with the segments encrypted by
// sealer (nil: plain).
func buildArchiveSealed(t *testing.T, sealer *crypt.Sealer) (*objstore.Memory, []uint64, []byte) {
	t.Helper()
	mem := objstore.NewMemory()
	ctx := context.Background()
	must(t, archive.PutOnce(ctx, mem, archive.Layout{Cluster: "c"}.TimelineKey("tl"), archive.MarshalJSON(&archive.TimelineInfo{Timeline: "tl", StartFile: "mysql-bin.000001", SourceServerID: 1, Encryption: archive.EncryptionOf(sealer)})))
	seg, up := newPipeline(t, mem, UploaderConfig{Concurrency: 3, MaxBufferedBytes: 1 << 20, Sealer: sealer}, 4096)
	end1 := addClosedFile(t, seg)
	b2 := binlogtest.New("mysql-bin.000002")
	fde2 := b2.Next(gomysql.FORMAT_DESCRIPTION_EVENT, 120)
	must(t, seg.Add(fde2))
	for i := 0; i < 10; i++ {
		must(t, seg.Add(b2.Next(gomysql.WRITE_ROWS_EVENTv1, 1000)))
	}
	must(t, seg.Flush())
	drain(t, up)
	return mem, []uint64{end1, b2.Pos}, fde2.Raw
}

func segmentKeys(t *testing.T, cat archive.Catalog, file string) []archive.SegmentRef {
	t.Helper()
	refs, err := cat.Segments(context.Background(), "tl", file)
	must(t, err)
	return refs
}

func TestResumeAtDurableEnd(t *testing.T) {
	mem, ends, fde2 := buildArchive(t)
	cat := archive.Catalog{Store: mem, Layout: archive.Layout{Cluster: "c"}}
	rp, err := findResume(context.Background(), cat, "tl", zerolog.Nop())
	must(t, err)
	want := replication.Position{File: "mysql-bin.000002", Offset: ends[1]}
	if rp.Position != want {
		t.Fatalf("resume at %v, want %v", rp.Position, want)
	}
	if !bytes.Equal(rp.ExpectFDE, fde2) {
		t.Fatal("resume inside a file must carry its archived format description")
	}
}

// TestResumeAfterHole: a crash left a later segment stored while an
// earlier one never was. The durable position is the hole; what is past
// it was never durable and is removed so it can be cut afresh.
func TestResumeAfterHole(t *testing.T) {
	mem, _, _ := buildArchive(t)
	ctx := context.Background()
	cat := archive.Catalog{Store: mem, Layout: archive.Layout{Cluster: "c"}}
	segs := segmentKeys(t, cat, "mysql-bin.000002")
	if len(segs) < 3 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	must(t, mem.Delete(ctx, segs[1].Key))
	rp, err := findResume(ctx, cat, "tl", zerolog.Nop())
	must(t, err)
	if want := (replication.Position{File: "mysql-bin.000002", Offset: segs[1].Start}); rp.Position != want {
		t.Fatalf("resume at %v, want the hole at %v", rp.Position, want)
	}
	if left := segmentKeys(t, cat, "mysql-bin.000002"); len(left) != 1 {
		t.Fatalf("segments past the hole not removed: %d left", len(left))
	}
}

// TestResumeIndexesCompleteFile: the archiver died after storing a file's
// last segment (ending in ROTATE) but before writing its index, while the
// next file had already begun.
func TestResumeIndexesCompleteFile(t *testing.T) {
	mem, ends, _ := buildArchive(t)
	ctx := context.Background()
	layout := archive.Layout{Cluster: "c"}
	cat := archive.Catalog{Store: mem, Layout: layout}
	must(t, mem.Delete(ctx, layout.IndexKey("tl", "mysql-bin.000001")))
	rp, err := findResume(ctx, cat, "tl", zerolog.Nop())
	must(t, err)
	if rp.Position.File != "mysql-bin.000002" || rp.Position.Offset != ends[1] {
		t.Fatalf("resume at %v", rp.Position)
	}
	ix, err := cat.ReadIndex(ctx, "tl", "mysql-bin.000001")
	if err != nil {
		t.Fatalf("index not rewritten: %v", err)
	}
	if ix.Size != ends[0] || !ix.Closed || ix.Next != "mysql-bin.000002" {
		t.Fatalf("rewritten index: size %d closed %v next %q", ix.Size, ix.Closed, ix.Next)
	}
}

// TestResumeIncompleteEarlierFile: a file whose tail never got stored,
// while the next file's segments did: the durable position is in the
// first file, and the next file's segments are orphans.
func TestResumeIncompleteEarlierFile(t *testing.T) {
	mem, _, _ := buildArchive(t)
	ctx := context.Background()
	layout := archive.Layout{Cluster: "c"}
	cat := archive.Catalog{Store: mem, Layout: layout}
	must(t, mem.Delete(ctx, layout.IndexKey("tl", "mysql-bin.000001")))
	segs := segmentKeys(t, cat, "mysql-bin.000001")
	last := segs[len(segs)-1]
	must(t, mem.Delete(ctx, last.Key))
	rp, err := findResume(ctx, cat, "tl", zerolog.Nop())
	must(t, err)
	if want := (replication.Position{File: "mysql-bin.000001", Offset: last.Start}); rp.Position != want {
		t.Fatalf("resume at %v, want %v", rp.Position, want)
	}
	if left := segmentKeys(t, cat, "mysql-bin.000002"); len(left) != 0 {
		t.Fatalf("next file's segments past the hole kept: %d", len(left))
	}
}

func TestRebuildSetsInUseFlagOnlyForOpenFiles(t *testing.T) {
	mem, _, _ := buildArchive(t)
	ctx := context.Background()
	cat := archive.Catalog{Store: mem, Layout: archive.Layout{Cluster: "c"}}
	for file, wantFlag := range map[string]byte{"mysql-bin.000001": 0, "mysql-bin.000002": 1} {
		files, err := cat.Files(ctx, "tl")
		must(t, err)
		var ref archive.FileRef
		for _, f := range files {
			if f.Name == file {
				ref = f
			}
		}
		fs, err := cat.FileState(ctx, "tl", ref)
		must(t, err)
		var buf bytes.Buffer
		_, err = cat.Rebuild(ctx, fs, &buf)
		must(t, err)
		if got := buf.Bytes()[replication.InUseFlagOffset]; got != wantFlag {
			t.Errorf("%s: in-use flag byte %d, want %d", file, got, wantFlag)
		}
		if uint64(buf.Len()) != fs.Size || !bytes.Equal(buf.Bytes()[:4], replication.Magic) {
			t.Errorf("%s: rebuilt %d bytes, want %d with magic", file, buf.Len(), fs.Size)
		}
	}
}

func TestNextFileAfterStop(t *testing.T) {
	if got := archive.NextFile(&archive.FileIndex{File: "mysql-bin.000009"}); got != "mysql-bin.000010" {
		t.Fatal(got)
	}
	if got := archive.NextFile(&archive.FileIndex{File: "b.999999"}); got != "b.1000000" {
		t.Fatal(got)
	}
	if got := archive.NextFile(&archive.FileIndex{File: "x.000001", Next: "x.000007"}); got != "x.000007" {
		t.Fatal(got)
	}
}

// addClosedFile adds mysql-bin.000001 to seg, closed by its rotation to
// mysql-bin.000002: a format description, ten 1,000-byte row events and
// the ROTATE; it returns the file's size.
func addClosedFile(t *testing.T, seg *Segmenter) uint64 {
	t.Helper()
	b1 := binlogtest.New("mysql-bin.000001")
	must(t, seg.Add(b1.Next(gomysql.FORMAT_DESCRIPTION_EVENT, 120)))
	for i := 0; i < 10; i++ {
		must(t, seg.Add(b1.Next(gomysql.WRITE_ROWS_EVENTv1, 1000)))
	}
	must(t, seg.Add(b1.Next(gomysql.ROTATE_EVENT, binlogtest.RotateSize)))
	must(t, seg.FileDone("mysql-bin.000001", "mysql-bin.000002"))
	return b1.Pos
}
