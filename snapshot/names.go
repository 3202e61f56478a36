package snapshot

import (
	"fmt"
	"strings"

	"github.com/binarc/binarc/internal/redact"

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
	// Digits, hex uuids, MySQL 8.4 tags, separators.
	if strings.Trim(m.Coordinates.GTIDSet, "0123456789abcdefghijklmnopqrstuvwxyzABCDEF_:-, \n") != "" {
		return fmt.Errorf("manifest coordinates: gtid_set %q is not a GTID set", redact.Control(m.Coordinates.GTIDSet))
	}
	// Free text, printed by ls and the restore plan.
	for _, f := range []*string{&m.Flavor, &m.ServerVersion, &m.SourceAddr, &m.Tool, &m.ToolVersion, &m.Coordinates.From} {
		*f = redact.Control(*f)
	}
	return nil
}
