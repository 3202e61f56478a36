package snapshot

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/archive/sign"
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

// List returns the cluster's snapshots, oldest first. With trust, a
// manifest not signed by a trusted key makes its snapshot incomplete
// (Problem says why).
func List(ctx context.Context, store objstore.Store, layout archive.Layout, trust *sign.Trust) ([]Entry, error) {
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
			m, err := ReadManifest(ctx, store, layout, id, trust)
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
// an error matching objstore.ErrNotExist. With trust, an unsigned
// manifest or one signed by another key is refused; the data object is
// covered by the manifest's sha256, which readers check.
func ReadManifest(ctx context.Context, store objstore.Store, layout archive.Layout, id string, trust *sign.Trust) (*Manifest, error) {
	b, _, err := objstore.ReadSmall(ctx, store, layout.SnapshotManifestKey(id))
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: read manifest: %w", id, err)
	}
	if b, err = trust.Check(layout.SnapshotManifestKey(id), b); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	m, err := UnmarshalManifest(b)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	if m.ID != id {
		return nil, fmt.Errorf("snapshot %s: its manifest names snapshot %s", id, m.ID)
	}
	if err := checkManifestNames(layout, m); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	return m, nil
}
