package snapshot

import (
	"strings"
	"testing"

	"github.com/binarc/binarc/archive"
)

// TestManifestNames: names in a manifest come from the bucket; one that
// leads outside the snapshot is refused.
func TestManifestNames(t *testing.T) {
	l := archive.Layout{Cluster: "c"}
	id := "20260101T000000Z-physical"
	good := func() *Manifest {
		return &Manifest{ID: id, Method: Physical, DataKey: l.SnapshotDataKey(id, archive.SnapshotDataPhysical),
			Coordinates: Coordinates{File: "mysql-bin.000001", Pos: 4}}
	}
	if err := checkManifestNames(l, good()); err != nil {
		t.Fatalf("a manifest binarc writes: %v", err)
	}
	for name, edit := range map[string]func(*Manifest){
		"file ..":          func(m *Manifest) { m.Coordinates.File = ".." },
		"file path":        func(m *Manifest) { m.Coordinates.File = "../../etc/mysql-bin.000001" },
		"file not binlog":  func(m *Manifest) { m.Coordinates.File = "passwd" },
		"data key outside": func(m *Manifest) { m.DataKey = "other/snapshot/x/backup.xbstream.zst" },
		"data key dotdot":  func(m *Manifest) { m.DataKey = l.SnapshotPrefix(id) + "../../../lease.json" },
		"data key method":  func(m *Manifest) { m.DataKey = l.SnapshotDataKey(id, archive.SnapshotDataLogical) },
	} {
		m := good()
		edit(m)
		err := checkManifestNames(l, m)
		if err == nil || !strings.Contains(err.Error(), "manifest") {
			t.Errorf("%s: %v; want a refusal naming the manifest", name, err)
		}
	}
}
