package snapshot_test

import (
	"context"
	"testing"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/xbstreamtest"
	"github.com/binarc/binarc/snapshot"
	"github.com/binarc/binarc/snapshot/snapshottest"
)

func TestList(t *testing.T) {
	ctx := context.Background()
	l := archive.Layout{Cluster: "c"}
	s := objstore.NewMemory()
	snapshottest.Store(t, s, l, "20261125T031500Z-physical", xbstreamtest.Sample())
	// A snapshot that died before its manifest, and junk.
	s.Put(ctx, l.SnapshotDataKey("20261125T041500Z-logical", archive.SnapshotDataLogical), []byte("x"), objstore.PutOptions{})
	s.Put(ctx, l.SnapshotsPrefix()+"not-a-snapshot/x", []byte("x"), objstore.PutOptions{})
	s.Put(ctx, l.SnapshotManifestKey("20261125T051500Z-physical"), []byte("{"), objstore.PutOptions{})
	got, err := snapshot.List(ctx, s, l, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("List = %+v; want 3 snapshots", got)
	}
	if !got[0].Complete || got[0].Manifest == nil || got[1].Complete || got[1].Objects != 1 || got[2].Complete || got[2].Problem == "" {
		t.Errorf("List = %+v", got)
	}
}
