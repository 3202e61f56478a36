package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/crypt"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/archive/sign"
	"github.com/binarc/binarc/snapshot"
)

// Check is one thing Snapshot looked at.
type Check struct {
	What string `json:"what"`
	OK   bool   `json:"ok"`
	Note string `json:"note"`
}

// ErrSnapshot is matched by Snapshot's error when a check failed.
var ErrSnapshot = errors.New("snapshot failed verification")

// Snapshot re-reads a snapshot's data object and checks it against the
// manifest: stored size and SHA-256, that every zstd frame decodes with its
// content checksum, the decoded size, and for a physical snapshot that the
// xbstream is whole. It returns every check made; the error, if a check
// failed, matches ErrSnapshot and names the first failure.
func Snapshot(ctx context.Context, store objstore.Store, layout archive.Layout, id string) ([]Check, error) {
	return SnapshotWith(ctx, store, layout, id, nil, nil)
}

// SnapshotWith is Snapshot of a snapshot that may be encrypted: with an
// identity (opener) the contents are checked as for a plain one; without,
// only the stored object's size and SHA-256, and a note says so. With
// trust (--trust-key) the manifest must be signed by a trusted key.
func SnapshotWith(ctx context.Context, store objstore.Store, layout archive.Layout, id string, opener *crypt.Opener, trust *sign.Trust) ([]Check, error) {
	m, err := snapshot.ReadManifest(ctx, store, layout, id, trust)
	if err != nil {
		if errors.Is(err, objstore.ErrNotExist) {
			return nil, fmt.Errorf("snapshot %s has no manifest: it is incomplete (failed or still running) or the id is wrong (binarc ls lists snapshots): %w", id, err)
		}
		return nil, err
	}
	var checks []Check
	add := func(what string, ok bool, format string, args ...any) {
		checks = append(checks, Check{What: what, OK: ok, Note: fmt.Sprintf(format, args...)})
	}
	add("manifest", true, "%s snapshot of %s (%s %s) at %s", m.Method, m.SourceAddr, m.Flavor, m.ServerVersion, m.Coordinates)
	rc, info, err := store.Get(ctx, m.DataKey)
	if err != nil {
		add("data object", false, "%s: %v", m.DataKey, err)
		return checks, fmt.Errorf("%w: snapshot %s: data object %s: %v", ErrSnapshot, id, m.DataKey, err)
	}
	defer rc.Close()
	h := sha256.New()
	stored := &countWriter{}
	// Bounded: a stored object past its size, or data decoding past its
	// raw size (a zstd bomb), fails here in bounded memory.
	body := objstore.BoundedBody(rc, m.DataKey, m.StoredSize)
	tee := io.TeeReader(body, io.MultiWriter(h, stored))
	if m.Encryption != nil && opener == nil {
		_, err := io.Copy(io.Discard, tee)
		sum := hex.EncodeToString(h.Sum(nil))
		add("stored size", err == nil && stored.n == m.StoredSize, "%d bytes read, manifest says %d (store lists %d)", stored.n, m.StoredSize, info.Size)
		add("sha256", sum == m.SHA256, "%s, manifest says %s", sum, m.SHA256)
		add("encryption", true, "encrypted to %v: contents not checked (pass --identity to check them)", m.Encryption.Recipients)
		return checks, firstFailed(checks, id)
	}
	src, err := snapshot.OpenData(tee, m, opener)
	if err != nil {
		add("encryption", false, "%v", err)
		return checks, firstFailed(checks, id)
	}
	if m.Encryption != nil {
		add("encryption", true, "encrypted to %v; opened with the identity given", m.Encryption.Recipients)
	}
	dec, err := archive.NewBoundedDecoder(src)
	if err != nil {
		return checks, err
	}
	defer dec.Close()
	raw := &countWriter{}
	var xb *snapshot.XbstreamScanner
	sink := io.Writer(raw)
	if m.Method == snapshot.Physical {
		xb = snapshot.NewXbstreamScanner()
		sink = io.MultiWriter(raw, xb)
	}
	_, decErr := io.Copy(sink, io.LimitReader(dec, m.RawSize+1))
	if decErr == nil && raw.n > m.RawSize {
		decErr = fmt.Errorf("%w (%d bytes): a zstd bomb or a damaged object", archive.ErrOversize, m.RawSize)
	}
	if decErr == nil {
		// Read what the decoder left (nothing, for a whole object), so
		// the hash covers every stored byte.
		_, decErr = io.Copy(io.Discard, tee)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	add("stored size", stored.n == m.StoredSize, "%d bytes read, manifest says %d (store lists %d)", stored.n, m.StoredSize, info.Size)
	add("sha256", sum == m.SHA256, "%s, manifest says %s", sum, m.SHA256)
	if decErr != nil {
		add("zstd", false, "decoding failed after %d bytes: %v", raw.n, decErr)
	} else {
		add("zstd", true, "every frame decodes and its content checksum matches")
	}
	add("raw size", raw.n == m.RawSize, "%d bytes decoded, manifest says %d", raw.n, m.RawSize)
	if xb != nil && decErr == nil {
		if err := xb.Err(true); err != nil {
			add("xbstream", false, "%v", err)
		} else {
			add("xbstream", true, "%d chunks, %d files, ends on a chunk boundary", xb.Chunks(), xb.Files())
		}
	}
	return checks, firstFailed(checks, id)
}

// firstFailed is Snapshot's error: nil, or the first failed check.
func firstFailed(checks []Check, id string) error {
	for _, c := range checks {
		if !c.OK {
			return fmt.Errorf("%w: snapshot %s: %s: %s", ErrSnapshot, id, c.What, c.Note)
		}
	}
	return nil
}

// countWriter counts what is written through it.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// snapshotProblem checks one complete snapshot and names every failed
// check, or returns nil.
func snapshotProblem(ctx context.Context, c archive.Catalog, id string) error {
	checks, err := SnapshotWith(ctx, c.Store, c.Layout, id, c.Opener, c.Trust)
	if err == nil {
		return nil
	}
	var failed []string
	for _, ch := range checks {
		if !ch.OK {
			failed = append(failed, ch.What+": "+ch.Note)
		}
	}
	if len(failed) == 0 || !errors.Is(err, ErrSnapshot) {
		return err
	}
	return fmt.Errorf("failed verification: %s", strings.Join(failed, "; "))
}
