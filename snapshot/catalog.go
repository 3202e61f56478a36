package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/crypt"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/klauspost/compress/zstd"
)

// Entry is a snapshot found in the store.
type Entry struct {
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	// Complete is true when the manifest is there and reads; Manifest is
	// then set. An incomplete snapshot failed, or is still running.
	Complete bool      `json:"complete"`
	Manifest *Manifest `json:"manifest,omitempty"`
	// Problem says why a snapshot with a manifest is not complete.
	Problem string `json:"problem,omitempty"`
	// Objects is the size of everything in the snapshot's folder.
	Objects int64 `json:"objects_bytes"`
}

// List returns the cluster's snapshots, oldest first.
func List(ctx context.Context, store objstore.Store, layout archive.Layout) ([]Entry, error) {
	dirs, err := store.List(ctx, layout.SnapshotsPrefix())
	if err != nil {
		return nil, fmt.Errorf("list snapshots of cluster %q: %w", layout.Cluster, err)
	}
	var out []Entry
	for _, d := range dirs {
		if !d.Dir {
			continue
		}
		id := strings.TrimSuffix(strings.TrimPrefix(d.Key, layout.SnapshotsPrefix()), "/")
		at, method, err := archive.ParseSnapshotID(id)
		if err != nil {
			continue // not ours
		}
		e := Entry{ID: id, Time: at, Method: method}
		objs, err := store.List(ctx, layout.SnapshotPrefix(id))
		if err != nil {
			return nil, fmt.Errorf("list snapshot %s: %w", id, err)
		}
		hasManifest := false
		for _, o := range objs {
			e.Objects += o.Size
			if o.Key == layout.SnapshotManifestKey(id) {
				hasManifest = true
			}
		}
		if hasManifest {
			m, err := ReadManifest(ctx, store, layout, id)
			if err != nil {
				e.Problem = err.Error()
			} else {
				e.Manifest, e.Complete = m, true
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// ReadManifest reads one snapshot's manifest. A snapshot without one gives
// an error matching objstore.ErrNotExist.
func ReadManifest(ctx context.Context, store objstore.Store, layout archive.Layout, id string) (*Manifest, error) {
	b, _, err := objstore.ReadAll(ctx, store, layout.SnapshotManifestKey(id))
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: read manifest: %w", id, err)
	}
	m, err := UnmarshalManifest(b)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	if m.ID != id {
		return nil, fmt.Errorf("snapshot %s: its manifest names snapshot %s", id, m.ID)
	}
	return m, nil
}

// Check is one thing Verify looked at.
type Check struct {
	What string `json:"what"`
	OK   bool   `json:"ok"`
	Note string `json:"note"`
}

// ErrVerify is matched by Verify's error when a check failed.
var ErrVerify = errors.New("snapshot failed verification")

// Verify re-reads a snapshot's data object and checks it against the
// manifest: stored size and SHA-256, that every zstd frame decodes with its
// content checksum, the decoded size, and for a physical snapshot that the
// xbstream is whole. It returns every check made; the error, if a check
// failed, matches ErrVerify and names the first failure.
func Verify(ctx context.Context, store objstore.Store, layout archive.Layout, id string) ([]Check, error) {
	return VerifyWith(ctx, store, layout, id, nil)
}

// VerifyWith is Verify of a snapshot that may be encrypted: with an
// identity (opener) the contents are checked as for a plain one; without,
// only the stored object's size and SHA-256, and a note says so.
func VerifyWith(ctx context.Context, store objstore.Store, layout archive.Layout, id string, opener *crypt.Opener) ([]Check, error) {
	m, err := ReadManifest(ctx, store, layout, id)
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
		return checks, fmt.Errorf("%w: snapshot %s: data object %s: %v", ErrVerify, id, m.DataKey, err)
	}
	defer rc.Close()
	h := sha256.New()
	stored := &countWriter{}
	tee := io.TeeReader(rc, io.MultiWriter(h, stored))
	if m.Encryption != nil && opener == nil {
		_, err := io.Copy(io.Discard, tee)
		sum := hex.EncodeToString(h.Sum(nil))
		add("stored size", err == nil && stored.n == m.StoredSize, "%d bytes read, manifest says %d (store lists %d)", stored.n, m.StoredSize, info.Size)
		add("sha256", sum == m.SHA256, "%s, manifest says %s", sum, m.SHA256)
		add("encryption", true, "encrypted to %v: contents not checked (pass --identity to check them)", m.Encryption.Recipients)
		return checks, firstFailed(checks, id)
	}
	src, err := openData(tee, m, opener)
	if err != nil {
		add("encryption", false, "%v", err)
		return checks, firstFailed(checks, id)
	}
	if m.Encryption != nil {
		add("encryption", true, "encrypted to %v; opened with the identity given", m.Encryption.Recipients)
	}
	dec, err := zstd.NewReader(src)
	if err != nil {
		return checks, err
	}
	defer dec.Close()
	raw := &countWriter{}
	var xb *xbstreamScanner
	sink := io.Writer(raw)
	if m.Method == Physical {
		xb = newXbstreamScanner()
		sink = io.MultiWriter(raw, xb)
	}
	_, decErr := io.Copy(sink, dec)
	if decErr == nil {
		// Read what the decoder left (nothing, for a whole object), so
		// the hash covers every stored byte.
		_, decErr = io.Copy(io.Discard, io.TeeReader(rc, io.MultiWriter(h, stored)))
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
			add("xbstream", true, "%d chunks, %d files, ends on a chunk boundary", xb.chunks, xb.files)
		}
	}
	return checks, firstFailed(checks, id)
}

// firstFailed is Verify's error: nil, or the first failed check.
func firstFailed(checks []Check, id string) error {
	for _, c := range checks {
		if !c.OK {
			return fmt.Errorf("%w: snapshot %s: %s: %s", ErrVerify, id, c.What, c.Note)
		}
	}
	return nil
}
