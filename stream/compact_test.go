package stream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/rs/zerolog"
)

// rebuildAll returns every file of the timeline as binlog fetch writes it.
func rebuildAll(t *testing.T, cat archive.Catalog) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	files, err := cat.Files(ctx, "tl")
	must(t, err)
	out := map[string][]byte{}
	for _, f := range files {
		fs, err := cat.FileState(ctx, "tl", f)
		must(t, err)
		var buf bytes.Buffer
		_, err = cat.Rebuild(ctx, fs, &buf)
		must(t, err)
		out[f.Name] = buf.Bytes()
	}
	return out
}

func TestCompact(t *testing.T) {
	mem, _, _ := buildArchive(t)
	ctx := context.Background()
	cat := archive.Catalog{Store: mem, Layout: archive.Layout{Cluster: "c"}}
	before := rebuildAll(t, cat)
	nsegs := len(segmentKeys(t, cat, "mysql-bin.000001"))

	res, err := cat.Compact(ctx, "tl", "mysql-bin.000001")
	must(t, err)
	if res.SegmentsDeleted != nsegs || res.Bytes == 0 {
		t.Fatalf("compact: %+v (file had %d segments)", res, nsegs)
	}
	if left := segmentKeys(t, cat, "mysql-bin.000001"); len(left) != 0 {
		t.Fatalf("%d segments left after compaction", len(left))
	}
	after := rebuildAll(t, cat)
	for f, b := range before {
		if !bytes.Equal(after[f], b) {
			t.Fatalf("%s rebuilt differently after compaction", f)
		}
	}
	// Resume still finds its place with a compacted file behind it.
	rp, err := findResume(ctx, cat, "tl", zerolog.Nop())
	must(t, err)
	if rp.Position.File != "mysql-bin.000002" {
		t.Fatalf("resume at %v after compaction", rp.Position)
	}
	// The live file is not compacted.
	if _, err := cat.Compact(ctx, "tl", "mysql-bin.000002"); !errors.Is(err, archive.ErrNotCompactable) {
		t.Fatalf("compacting a live file: %v", err)
	}
	// Compacting again is harmless.
	if _, err := cat.Compact(ctx, "tl", "mysql-bin.000001"); err != nil {
		t.Fatalf("second compaction: %v", err)
	}
}

// TestCompactStoppedAtEachStep stops compaction at each step with a failing
// store: the archive must read the same after each, and a later run
// finishes the job.
func TestCompactStoppedAtEachStep(t *testing.T) {
	for _, step := range []string{"upload", "read back", "first delete", "a later delete"} {
		t.Run(step, func(t *testing.T) {
			mem, _, _ := buildArchive(t)
			ctx := context.Background()
			f := objstore.NewFaulty(mem)
			cat := archive.Catalog{Store: f, Layout: archive.Layout{Cluster: "c"}}
			before := rebuildAll(t, cat)
			compacted := cat.Layout.CompactedKey("tl", "mysql-bin.000001")
			var deletes atomic.Int32
			f.SetHook(func(op, key string) error {
				switch {
				case step == "upload" && op == objstore.OpPut && key == compacted,
					step == "read back" && op == objstore.OpGet && key == compacted,
					step == "first delete" && op == objstore.OpDelete,
					step == "a later delete" && op == objstore.OpDelete && deletes.Add(1) > 1:
					return errors.New("injected: process stopped here")
				}
				return nil
			})
			if _, err := cat.Compact(ctx, "tl", "mysql-bin.000001"); err == nil {
				t.Fatal("compaction did not stop at the injected failure")
			}
			f.SetHook(nil)
			if got := rebuildAll(t, cat); !equalFiles(got, before) {
				t.Fatal("the archive reads differently after a stopped compaction")
			}
			if _, err := cat.Compact(ctx, "tl", "mysql-bin.000001"); err != nil {
				t.Fatalf("the next compaction did not finish the job: %v", err)
			}
			if left := segmentKeys(t, cat, "mysql-bin.000001"); len(left) != 0 {
				t.Fatalf("%d segments left", len(left))
			}
			if got := rebuildAll(t, cat); !equalFiles(got, before) {
				t.Fatal("the archive reads differently after compaction")
			}
		})
	}
}

// TestCompactRefusesDamagedObject: a compacted object that does not decode
// to the file must not cost the segments.
func TestCompactRefusesDamagedObject(t *testing.T) {
	mem, _, _ := buildArchive(t)
	ctx := context.Background()
	cat := archive.Catalog{Store: mem, Layout: archive.Layout{Cluster: "c"}}
	_, err := mem.Put(ctx, cat.Layout.CompactedKey("tl", "mysql-bin.000001"), []byte("not zstd"), objstore.PutOptions{})
	must(t, err)
	n := len(segmentKeys(t, cat, "mysql-bin.000001"))
	if _, err := cat.Compact(ctx, "tl", "mysql-bin.000001"); err == nil || !strings.Contains(err.Error(), "segments are kept") {
		t.Fatalf("damaged compacted object: %v", err)
	}
	if left := segmentKeys(t, cat, "mysql-bin.000001"); len(left) != n {
		t.Fatal("segments deleted next to a damaged compacted object")
	}
}

func equalFiles(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(b[k], v) {
			return false
		}
	}
	return true
}

// TestRebuildDuringCompaction: a reader that started on the segments of a
// file the compactor then deletes carries on from the compacted object.
func TestRebuildDuringCompaction(t *testing.T) {
	mem, _, _ := buildArchive(t)
	ctx := context.Background()
	f := objstore.NewFaulty(mem)
	cat := archive.Catalog{Store: f, Layout: archive.Layout{Cluster: "c"}}
	want := rebuildAll(t, cat)["mysql-bin.000001"]
	files, err := cat.Files(ctx, "tl")
	must(t, err)
	fs, err := cat.FileState(ctx, "tl", files[0]) // listed before compaction
	must(t, err)
	if fs.CompactedKey != "" || len(fs.Segments) < 3 {
		t.Fatalf("want a segmented file: %+v", fs)
	}
	// Compact between the reader's first and later segment reads.
	var reads atomic.Int32
	f.SetHook(func(op, key string) error {
		if op == objstore.OpGet && strings.Contains(key, "/mysql-bin.000001/") && reads.Add(1) == 2 {
			f.SetHook(nil)
			if _, err := (archive.Catalog{Store: mem, Layout: cat.Layout}).Compact(ctx, "tl", "mysql-bin.000001"); err != nil {
				t.Errorf("compact: %v", err)
			}
			return objstore.ErrNotExist
		}
		return nil
	})
	var buf bytes.Buffer
	if _, err := cat.Rebuild(ctx, fs, &buf); err != nil {
		t.Fatalf("rebuild across a compaction: %v", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatal("rebuild across a compaction gave other bytes")
	}
}

// blockingCompacted is a store whose compacted objects read slowly: their
// reader blocks until the Get's context ends, as a multi-GiB read would
// still be running when the operator presses Ctrl-C.
type blockingCompacted struct {
	objstore.Store
	compacted string // the key that reads slowly
}

func (b blockingCompacted) Get(ctx context.Context, key string) (io.ReadCloser, objstore.ObjectInfo, error) {
	if key != b.compacted {
		return b.Store.Get(ctx, key)
	}
	return io.NopCloser(ctxBlockedReader{ctx}), objstore.ObjectInfo{Key: key}, nil
}

type ctxBlockedReader struct{ ctx context.Context }

func (r ctxBlockedReader) Read([]byte) (int, error) {
	<-r.ctx.Done()
	return 0, r.ctx.Err()
}

// TestRebuildCompactedWhileReadKeepsCancellation: a file compacted while
// it is read goes on from the compacted object, and a cancelled caller
// still stops that read (it once ran on a context without cancellation).
func TestRebuildCompactedWhileReadKeepsCancellation(t *testing.T) {
	mem, _, _ := buildArchive(t)
	ctx := context.Background()
	cat := archive.Catalog{Store: mem, Layout: archive.Layout{Cluster: "c"}}
	files, err := cat.Files(ctx, "tl")
	must(t, err)
	fs, err := cat.FileState(ctx, "tl", files[0])
	must(t, err)
	if _, err := cat.Compact(ctx, "tl", files[0].Name); err != nil {
		t.Fatal(err)
	}
	// fs still lists the segments, now gone: the read must switch over.
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := archive.Catalog{Store: blockingCompacted{mem, cat.Layout.CompactedKey("tl", fs.File)}, Layout: cat.Layout}.Rebuild(rctx, fs, io.Discard)
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Rebuild after cancel = %v; want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Rebuild ignored the caller's cancellation while reading the compacted object")
	}
}

// TestCompactOrphanDeleteFailure: a prune removes the file's index while
// its compacted object is being stored; the orphan is deleted, and when
// that delete fails the error says so instead of dropping it.
func TestCompactOrphanDeleteFailure(t *testing.T) {
	mem, _, _ := buildArchive(t)
	ctx := context.Background()
	f := objstore.NewFaulty(mem)
	cat := archive.Catalog{Store: f, Layout: archive.Layout{Cluster: "c"}}
	const file = "mysql-bin.000001"
	key := cat.Layout.CompactedKey("tl", file)
	f.SetHook(func(op, k string) error {
		switch {
		case op == objstore.OpPut && k == key:
			// The prune runs while the object is stored.
			must(t, mem.Delete(ctx, cat.Layout.IndexKey("tl", file)))
		case op == objstore.OpDelete && k == key:
			return errors.New("store down")
		}
		return nil
	})
	_, err := cat.Compact(ctx, "tl", file)
	if !errors.Is(err, archive.ErrNotCompactable) || !strings.Contains(err.Error(), "could not be deleted") || !strings.Contains(err.Error(), "store down") {
		t.Fatalf("Compact = %v; want the failed orphan delete named", err)
	}
}
