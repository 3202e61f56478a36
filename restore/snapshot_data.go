package restore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/crypt"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/snapshot"
	"github.com/klauspost/compress/zstd"
)

// snapshotData streams a snapshot's data object, decompressed, bounded by
// the manifest's sizes: no more than StoredSize bytes are read from the
// store and no more than RawSize are decoded, whatever the object holds.
// Nothing read through it is trusted until Finish has read the stream to
// its end and checked the SHA-256: a consumer that stops reading early
// (mbstream exits 0 on a cut stream) does not skip the check.
type snapshotData struct {
	m      *snapshot.Manifest
	body   io.ReadCloser
	h      hash.Hash
	stored *countingReader
	dec    *zstd.Decoder
	raw    int64
	decErr error
}

func openSnapshotData(ctx context.Context, store objstore.Store, m *snapshot.Manifest, opener *crypt.Opener) (*snapshotData, error) {
	if m.StoredSize <= 0 || m.RawSize <= 0 {
		return nil, fmt.Errorf("snapshot %s: its manifest gives no stored_size or raw_size, so its data cannot be read within bounds; take a new snapshot", m.ID)
	}
	rc, _, err := store.Get(ctx, m.DataKey)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: read %s: %w", m.ID, m.DataKey, err)
	}
	d := &snapshotData{m: m, body: rc, h: sha256.New()}
	d.stored = &countingReader{r: io.TeeReader(objstore.BoundedBody(rc, m.DataKey, m.StoredSize), d.h)}
	src, err := snapshot.OpenData(d.stored, m, opener)
	if err != nil {
		rc.Close()
		return nil, err
	}
	if d.dec, err = archive.NewBoundedDecoder(src); err != nil {
		rc.Close()
		return nil, err
	}
	return d, nil
}

// Read reads decoded bytes, at most RawSize of them.
func (d *snapshotData) Read(p []byte) (int, error) {
	if d.decErr != nil {
		return 0, d.decErr
	}
	if d.raw >= d.m.RawSize {
		var one [1]byte
		if n, _ := io.ReadFull(d.dec, one[:]); n > 0 {
			d.decErr = fmt.Errorf("snapshot %s: %s %w (%d bytes, the manifest's raw_size): a zstd bomb or a damaged object", d.m.ID, d.m.DataKey, archive.ErrOversize, d.m.RawSize)
			return 0, d.decErr
		}
		return 0, io.EOF
	}
	if int64(len(p)) > d.m.RawSize-d.raw {
		p = p[:d.m.RawSize-d.raw]
	}
	n, err := d.dec.Read(p)
	d.raw += int64(n)
	if err != nil && err != io.EOF {
		d.decErr = fmt.Errorf("snapshot %s: %s does not decode after %d bytes: %w", d.m.ID, d.m.DataKey, d.raw, err)
		return n, d.decErr
	}
	return n, err
}

// Finish reads what the consumer left to the end of the stream and of the
// object, then checks sizes and SHA-256 against the manifest. Only after it
// returns nil may what was read be used.
func (d *snapshotData) Finish() error {
	if _, err := io.Copy(io.Discard, d); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, d.stored); err != nil {
		return fmt.Errorf("snapshot %s: %w", d.m.ID, err)
	}
	got := hex.EncodeToString(d.h.Sum(nil))
	if d.stored.n != d.m.StoredSize || got != d.m.SHA256 || d.raw != d.m.RawSize {
		return fmt.Errorf("snapshot %s: %s is %d bytes with SHA-256 %s, decoding to %d; the manifest says %d bytes, %s, decoding to %d: the object is damaged or was changed (binarc verify --snapshot %s)",
			d.m.ID, d.m.DataKey, d.stored.n, got, d.raw, d.m.StoredSize, d.m.SHA256, d.m.RawSize, d.m.ID)
	}
	return nil
}

func (d *snapshotData) Close() error {
	d.dec.Close()
	return d.body.Close()
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// fetchCheckedDump downloads a logical snapshot, decompressed, to a private
// file in dir and checks its digest: the dump reaches a server only once
// it is known to be the one the manifest names. The caller removes the
// file.
func fetchCheckedDump(ctx context.Context, store objstore.Store, m *snapshot.Manifest, opener *crypt.Opener, dir string) (string, error) {
	data, err := openSnapshotData(ctx, store, m, opener)
	if err != nil {
		return "", err
	}
	defer data.Close()
	return writeTempFile(dir, "dump-*.sql", func(w io.Writer) error {
		if _, err := io.Copy(w, data); err != nil {
			return err
		}
		return data.Finish()
	})
}
