package snapshot

import (
	"fmt"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
)

// checkManifestNames refuses a manifest whose names could lead a reader
// outside the snapshot: a data key that is not one of the snapshot's own
// data objects, or coordinates whose file is not a binlog file name ("..",
// a path). A manifest comes from the bucket, and whoever can write there
// must not choose what a restore reads or writes.
func checkManifestNames(layout archive.Layout, m *Manifest) error {
	want := layout.SnapshotDataKey(m.ID, dataName(m.Method))
	if m.DataKey != want {
		return fmt.Errorf("manifest names data object %q; a %s snapshot's is %q: the manifest was not written by binarc", m.DataKey, m.Method, want)
	}
	if err := archive.ValidateName("binlog file", m.Coordinates.File); err != nil {
		return fmt.Errorf("manifest coordinates: %w", err)
	}
	if _, _, ok := replication.SplitBinlogName(m.Coordinates.File); !ok {
		return fmt.Errorf("manifest coordinates: %q is not a binlog file name (base.NNNNNN)", m.Coordinates.File)
	}
	return nil
}
