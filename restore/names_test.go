package restore

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/xbstreamtest"
	"github.com/binarc/binarc/snapshot"
	"github.com/binarc/binarc/snapshot/snapshottest"
	"github.com/rs/zerolog"
)

// TestManifestDotDot: a manifest from the bucket whose coordinates name
// the file ".." is refused, by a dry run and a restore alike, and nothing
// is written outside the work directory, nor in the data directory.
func TestManifestDotDot(t *testing.T) {
	mem := objstore.NewMemory()
	l := archive.Layout{Cluster: "c"}
	id := "20260101T000000Z-physical"
	m := snapshottest.Store(t, mem, l, id, xbstreamtest.Sample())
	m.Coordinates.File = ".."
	if _, err := mem.Put(context.Background(), l.SnapshotManifestKey(id), snapshot.MarshalManifest(m), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{true, false} {
		root := reachableDir(t)
		work := filepath.Join(root, "work")
		datadir := filepath.Join(root, "data")
		if err := os.Mkdir(work, 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := Restore(context.Background(), RestoreRequest{Store: mem, Layout: l, Target: Target{Kind: TargetLatest},
			Datadir: datadir, DryRun: dry, WorkDir: work, Log: zerolog.Nop()})
		if err == nil || !strings.Contains(err.Error(), `".."`) {
			t.Fatalf("dry run %v: %v; want a refusal naming \"..\"", dry, err)
		}
		var found []string
		_ = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() {
				found = append(found, p)
			}
			return nil
		})
		if len(found) > 0 {
			t.Fatalf("dry run %v: refused, yet wrote %v", dry, found)
		}
		if _, err := os.Stat(datadir); !os.IsNotExist(err) {
			t.Fatalf("dry run %v: the data directory was created", dry)
		}
	}
}
