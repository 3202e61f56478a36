package drill

import (
	"context"
	"strings"
	"testing"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/restore"
	"github.com/binarc/binarc/snapshot"
	"github.com/binarc/binarc/snapshot/snapshottest"
)

func TestCheckSpace(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewMemory()
	l := archive.Layout{Cluster: "main"}
	if _, err := checkSpace(ctx, store, l, nil, t.TempDir()); err == nil || !strings.Contains(err.Error(), "no complete snapshot") {
		t.Errorf("no snapshot: %v", err)
	}
	m := snapshottest.Store(t, store, l, "20261201T040000Z-physical", []byte("small xbstream"))
	if got, err := checkSpace(ctx, store, l, nil, t.TempDir()); err != nil || got.ID != m.ID {
		t.Errorf("a small snapshot: %v, %v", got, err)
	}
	// A snapshot that restores to a PiB fits on no test machine.
	m.RawSize = 1 << 50
	if _, err := store.Put(ctx, l.SnapshotManifestKey(m.ID), snapshot.MarshalManifest(m), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := checkSpace(ctx, store, l, nil, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "not enough space") || !strings.Contains(err.Error(), m.ID) || !strings.Contains(err.Error(), "--scratch-dir") {
		t.Errorf("a PiB snapshot: %v; want a refusal naming the snapshot and --scratch-dir", err)
	}
}

func TestOneDomainTarget(t *testing.T) {
	st := func(s string) *replication.GTIDState {
		g, err := replication.ParseGTIDState(s)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	tg, err := oneDomainTarget(st("0-1-10,1-2-5"), st("0-1-17,1-2-5"))
	if err != nil || tg.Kind != restore.TargetGTID || tg.GTID != "0-1-17" {
		t.Errorf("one domain ahead: %v, %v; want 0-1-17", tg, err)
	}
	if _, err := oneDomainTarget(st("0-1-10,1-2-5"), st("0-1-17,1-2-6")); err == nil || !strings.Contains(err.Error(), "2 replication domains") {
		t.Errorf("two domains ahead: %v", err)
	}
}
