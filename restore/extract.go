package restore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/binarc/binarc/archive/crypt"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/snapshot"
	"github.com/rs/zerolog"
)

// physicalTools are the programs that turn a physical snapshot into a
// data directory.
type physicalTools struct {
	mbstream string // extracts the xbstream
	backup   string // mariabackup: --prepare
}

// prepareSnapshot extracts a physical snapshot into dir (the sandbox
// user's, empty) and prepares it. The stream is read to its end and its
// size and SHA-256 checked after the extraction and before --prepare: a
// stream that mbstream stops reading early, or that is not the one the
// manifest names, is never prepared.
func prepareSnapshot(ctx context.Context, sb *Sandbox, store objstore.Store, m *snapshot.Manifest, opener *crypt.Opener, dir string, pt physicalTools, log zerolog.Logger, timed func(string, time.Time)) error {
	log.Info().Str("snapshot", m.ID).Int64("bytes", m.StoredSize).Msg("downloading and extracting the snapshot")
	started := time.Now()
	data, err := openSnapshotData(ctx, store, m, opener)
	if err != nil {
		return err
	}
	extract := sb.Command(ctx, Paths{Writable: []string{dir}}, pt.mbstream, "-x", "-C", dir)
	extract.Stdin = data
	err = runLogged(extract)
	if err == nil {
		// mbstream may stop reading early and still exit 0.
		err = data.Finish()
	}
	data.Close()
	if err != nil {
		return fmt.Errorf("extract snapshot %s: %w", m.ID, err)
	}
	log.Info().Dur("took", time.Since(started).Round(time.Millisecond)).Msg("snapshot extracted and its digest checked; preparing it (mariabackup --prepare)")
	timed(PhaseDownload, started)
	started = time.Now()
	if err := runLogged(sb.Command(ctx, Paths{Writable: []string{dir}}, pt.backup, "--prepare", "--target-dir="+dir, "--tmpdir="+dir)); err != nil {
		return fmt.Errorf("prepare snapshot %s: %w", m.ID, err)
	}
	timed(PhasePrepare, started)
	return nil
}

// wipeDir empties dir, and removes it if the restore created it: a
// half-restored directory must not be mistaken for a restore.
func wipeDir(dir string, created bool) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
	if created {
		os.Remove(dir)
	}
}
