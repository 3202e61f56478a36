package stream

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/archive/sign"
	"github.com/rs/zerolog"
)

// TestSignedUploadsAndResume: the uploader signs every segment and index
// with its Signer; an index written at resume (the archiver stopped
// between the last segment and the index) is signed too, and all of it
// reads with the key trusted and is refused with another.
func TestSignedUploadsAndResume(t *testing.T) {
	ctx := context.Background()
	signer, err := sign.GenerateSigner(filepath.Join(t.TempDir(), "k.pem"))
	must(t, err)
	other, err := sign.GenerateSigner(filepath.Join(t.TempDir(), "o.pem"))
	must(t, err)
	mem := objstore.NewMemory()
	layout := archive.Layout{Cluster: "c"}
	writer := archive.Catalog{Store: mem, Layout: layout, Signer: signer}
	must(t, writer.PutOnce(ctx, layout.TimelineKey("tl"), archive.MarshalJSON(&archive.TimelineInfo{Timeline: "tl", StartFile: "mysql-bin.000001", SourceServerID: 1})))
	seg, up := newPipeline(t, mem, UploaderConfig{Concurrency: 3, MaxBufferedBytes: 1 << 20, Signer: signer}, 4096)
	size := addClosedFile(t, seg)
	must(t, seg.Flush())
	drain(t, up)

	trust, err := sign.ParseTrust([]string{signer.PublicKey()})
	must(t, err)
	reader := archive.Catalog{Store: mem, Layout: layout, Trust: trust}
	check := func(when string) {
		t.Helper()
		fs, err := reader.FileState(ctx, "tl", archive.FileRef{Name: "mysql-bin.000001", Indexed: true})
		if err != nil {
			t.Fatalf("%s: the signed index: %v", when, err)
		}
		if len(fs.Segments) < 3 {
			t.Fatalf("%s: %d segments; the test wants several", when, len(fs.Segments))
		}
		if n, err := reader.Rebuild(ctx, fs, &discard{}); err != nil || uint64(n) != size {
			t.Fatalf("%s: rebuild of the signed segments: %d bytes, %v", when, n, err)
		}
	}
	check("uploaded")
	must(t, mem.Delete(ctx, layout.IndexKey("tl", "mysql-bin.000001")))
	_, err = findResume(ctx, writer, "tl", zerolog.Nop())
	must(t, err)
	check("index rewritten at resume")
	otherTrust, _ := sign.ParseTrust([]string{other.PublicKey()})
	if _, err := (archive.Catalog{Store: mem, Layout: layout, Trust: otherTrust}).ReadIndex(ctx, "tl", "mysql-bin.000001"); !errors.Is(err, sign.ErrUntrustedKey) {
		t.Fatalf("the index read trusting another key: %v", err)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
