package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/binarc/binarc/archive/crypt"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/archive/sign"
	"github.com/klauspost/compress/zstd"
)

var testTime = time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)

// signedFile stores a timeline and one complete file of two segments, as
// the stream writes them with --sign-key (sealed when sealer is set), and
// its index; it returns the file's bytes.
func signedFile(t *testing.T, cat Catalog, sealer *crypt.Sealer, tl, file string) []byte {
	t.Helper()
	ctx := context.Background()
	if err := cat.PutOnce(ctx, cat.Layout.TimelineKey(tl), MarshalJSON(&TimelineInfo{Version: 2, Timeline: tl, StartFile: file, Encryption: EncryptionOf(sealer)})); err != nil {
		t.Fatal(err)
	}
	enc, _ := zstd.NewWriter(nil)
	var all []byte
	var infos []SegmentInfo
	for i, part := range [][]byte{bytes.Repeat([]byte("first segment "), 50), bytes.Repeat([]byte("second segment "), 70)} {
		start := uint64(len(all))
		all = append(all, part...)
		seg := &Segment{Timeline: tl, File: file, Start: start, End: uint64(len(all)), Data: objstore.Chunks{enc.EncodeAll(part, nil)}, Events: i + 1}
		key := cat.Layout.SegmentKey(tl, file, seg.Start, seg.End)
		data := seg.Data
		if sealer != nil {
			var err error
			if data, err = SealSegment(sealer, key, seg); err != nil {
				t.Fatal(err)
			}
		}
		data = cat.Signer.SignChunks(key, data)
		if _, err := cat.Store.Put(ctx, key, data.Bytes(), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		infos = append(infos, SegmentInfoOf(seg, int64(data.Len())))
	}
	if err := cat.WriteFileIndex(ctx, tl, file, "", infos); err != nil {
		t.Fatal(err)
	}
	return all
}

// rebuild reads the file back through cat, as fetch and restore do.
func rebuild(cat Catalog, tl, file string) ([]byte, error) {
	ctx := context.Background()
	refs, err := cat.Files(ctx, tl)
	if err != nil || len(refs) != 1 || refs[0].Name != file {
		return nil, fmt.Errorf("files of %s: %v, %v", tl, refs, err)
	}
	fs, err := cat.FileState(ctx, tl, refs[0])
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	_, err = cat.Rebuild(ctx, fs, &out)
	b := out.Bytes()
	if len(b) > 21 {
		b[21] = 0 // the in-use flag Rebuild sets
	}
	return b, err
}

func TestSignedCatalog(t *testing.T) {
	for _, sealed := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "sealed"}[sealed]
		t.Run(name, func(t *testing.T) { testSignedCatalog(t, sealed) })
	}
}

func testSignedCatalog(t *testing.T, sealed bool) {
	ctx := context.Background()
	signer, other := newSigner(t), newSigner(t)
	var sealer *crypt.Sealer
	var opener *crypt.Opener
	if sealed {
		id, _ := age.GenerateX25519Identity()
		sealer, _ = crypt.NewSealer([]string{id.Recipient().String()})
		opener = crypt.NewOpener(id)
	}
	store := objstore.NewMemory()
	layout := Layout{Cluster: "c"}
	tl, file := FormatTimeline(1, testTime), "mysql-bin.000001"
	writer := Catalog{Store: store, Layout: layout, Signer: signer}
	want := signedFile(t, writer, sealer, tl, file)
	want[21] = 0
	reader := Catalog{Store: store, Layout: layout, Opener: opener, Trust: trustOf(t, signer)}
	if got, err := rebuild(reader, tl, file); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("trusted read of the signed segments: %v", err)
	}
	if got, err := rebuild(Catalog{Store: store, Layout: layout, Opener: opener}, tl, file); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read without trust: %v", err)
	}
	if _, err := (Catalog{Store: store, Layout: layout, Trust: trustOf(t, other)}).ReadTimeline(ctx, tl); !errors.Is(err, sign.ErrUntrustedKey) {
		t.Fatalf("timeline.json read trusting only another key: %v", err)
	}

	// Compaction re-signs; the compacted file reads with trust, and
	// without.
	if _, err := writer.Compact(ctx, tl, file); err != nil {
		t.Fatal(err)
	}
	if got, err := rebuild(reader, tl, file); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("trusted read of the compacted file: %v", err)
	}
	if got, err := rebuild(Catalog{Store: store, Layout: layout, Opener: opener}, tl, file); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("compacted file read without trust: %v", err)
	}

	// A part of the compacted file changed (its segment's bytes and
	// signature copied from elsewhere): refused, naming the segment.
	ckey := layout.CompactedKey(tl, file)
	orig, _, _ := objstore.ReadSmall(ctx, store, ckey)
	forged := append([]byte(nil), orig...)
	forged[len(forged)/3] ^= 0x40
	store.Put(ctx, ckey, forged, objstore.PutOptions{})
	_, err := rebuild(reader, tl, file)
	if !errors.Is(err, sign.ErrForged) || !strings.Contains(err.Error(), layout.FilePrefix(tl, file)) {
		t.Fatalf("changed compacted file: %v; want sign.ErrForged naming a segment", err)
	}
	// The compacted file without its own signature: its end is then the
	// last segment's signature, which is not the compacted file's.
	store.Put(ctx, ckey, orig[:len(orig)-sign.TrailerSize], objstore.PutOptions{})
	if _, err := rebuild(reader, tl, file); !errors.Is(err, sign.ErrForged) || !strings.Contains(err.Error(), "object "+ckey) {
		t.Fatalf("compacted file without its signature: %v", err)
	}
}

func TestSignedSegmentRefusals(t *testing.T) {
	ctx := context.Background()
	signer, other := newSigner(t), newSigner(t)
	store := objstore.NewMemory()
	layout := Layout{Cluster: "c"}
	tl, file := FormatTimeline(1, testTime), "mysql-bin.000001"
	signedFile(t, Catalog{Store: store, Layout: layout, Signer: signer}, nil, tl, file)
	reader := Catalog{Store: store, Layout: layout, Trust: trustOf(t, signer)}
	fs, err := reader.FileState(ctx, tl, FileRef{Name: file, Indexed: true})
	if err != nil {
		t.Fatal(err)
	}
	key := fs.Segments[1].Key
	good, _, _ := objstore.ReadSmall(ctx, store, key)
	body, _ := sign.SplitSigned(good)
	for _, c := range []struct {
		name   string
		stored []byte
		want   error
	}{
		{"unsigned", body, sign.ErrNotSigned},
		{"signed by another key", other.Sign(key, body), sign.ErrUntrustedKey},
		{"signed for another key", signer.Sign(fs.Segments[0].Key, body), sign.ErrForged},
	} {
		store.Put(ctx, key, c.stored, objstore.PutOptions{})
		_, err := reader.ReadSegment(ctx, key)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: ReadSegment err = %v; want %v naming %s", c.name, err, c.want, key)
		}
		if _, err := reader.Rebuild(ctx, fs, &bytes.Buffer{}); !errors.Is(err, c.want) {
			t.Errorf("%s: Rebuild err = %v; want %v", c.name, err, c.want)
		}
	}
	// Notes without trust: the unsigned object is read, and reported.
	var noted []string
	store.Put(ctx, key, body, objstore.PutOptions{})
	noting := Catalog{Store: store, Layout: layout, Trust: sign.NoteUnsigned(func(k string) { noted = append(noted, k) })}
	if _, err := noting.ReadSegment(ctx, key); err != nil || len(noted) != 1 || noted[0] != key {
		t.Errorf("NoteUnsigned: err %v, noted %v", err, noted)
	}
}

// TestUpgradeLayoutSigns: a writer with a signing key re-signs a
// layout.json written unsigned or with another key, keeps its version, and
// then leaves it alone.
func TestUpgradeLayoutSigns(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewMemory()
	layout := Layout{Cluster: "c"}
	key := layout.LayoutKey()
	store.Put(ctx, key, MarshalJSON(LayoutInfo{Version: LayoutVersionEncrypted}), objstore.PutOptions{})
	for _, s := range []*sign.Signer{newSigner(t), newSigner(t)} {
		if err := UpgradeLayout(ctx, store, layout, LayoutVersionPlain, s); err != nil {
			t.Fatal(err)
		}
		c := Catalog{Store: store, Layout: layout, Trust: trustOf(t, s)}
		if err := c.CheckLayoutVersion(ctx); err != nil {
			t.Fatalf("layout.json after UpgradeLayout with key %s: %v", s.KeyID(), err)
		}
		data, info, _ := objstore.ReadSmall(ctx, store, key)
		if li, err := CheckLayoutInfo(layout, data); err != nil || li.Version != LayoutVersionEncrypted {
			t.Fatalf("layout.json says %+v (%v): the version went down", li, err)
		}
		if err := UpgradeLayout(ctx, store, layout, LayoutVersionPlain, s); err != nil {
			t.Fatal(err)
		}
		if _, again, _ := objstore.ReadSmall(ctx, store, key); again.ETag != info.ETag {
			t.Fatal("layout.json rewritten though it was already signed with the key")
		}
	}
}

func newSigner(t *testing.T) *sign.Signer {
	t.Helper()
	s, err := sign.GenerateSigner(filepath.Join(t.TempDir(), "sign.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func trustOf(t *testing.T, ss ...*sign.Signer) *sign.Trust {
	t.Helper()
	var keys []string
	for _, s := range ss {
		keys = append(keys, s.PublicKey())
	}
	tr, err := sign.ParseTrust(keys)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}
