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
	m := good()
	m.Coordinates.GTIDSet = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:tag_a:1-2,0-1-42"
	m.SourceAddr = "db1\x1b]0;owned\x07:3306"
	if err := checkManifestNames(l, m); err != nil || strings.ContainsAny(m.SourceAddr, "\x1b\x07") {
		t.Fatalf("GTID set with tags, source with escapes: %v, %q", err, m.SourceAddr)
	}
	for name, edit := range map[string]func(*Manifest){
		"file ..":          func(m *Manifest) { m.Coordinates.File = ".." },
		"file path":        func(m *Manifest) { m.Coordinates.File = "../../etc/mysql-bin.000001" },
		"file not binlog":  func(m *Manifest) { m.Coordinates.File = "passwd" },
		"data key outside": func(m *Manifest) { m.DataKey = "other/snapshot/x/backup.xbstream.zst" },
		"data key dotdot":  func(m *Manifest) { m.DataKey = l.SnapshotPrefix(id) + "../../../lease.json" },
		"data key method":  func(m *Manifest) { m.DataKey = l.SnapshotDataKey(id, archive.SnapshotDataLogical) },
		"gtid escape":      func(m *Manifest) { m.Coordinates.GTIDSet = "0-1-5\x1b[2K" },
	} {
		m := good()
		edit(m)
		err := checkManifestNames(l, m)
		if err == nil || !strings.Contains(err.Error(), "manifest") {
			t.Errorf("%s: %v; want a refusal naming the manifest", name, err)
		}
	}
}
