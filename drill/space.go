package drill

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/archive/sign"
	"github.com/binarc/binarc/internal/progs"
	"github.com/binarc/binarc/snapshot"
)

// checkSpace refuses a drill whose scratch directory's file system cannot
// hold the newest complete snapshot (its raw size) and the archived
// binlog from its coordinates on (fetched, then replayed): a drill that
// fills the disk fails late and may hurt what else runs there.
// It returns the snapshot.
func checkSpace(ctx context.Context, store objstore.Store, layout archive.Layout, trust *sign.Trust, dir string) (*snapshot.Manifest, error) {
	entries, err := snapshot.List(ctx, store, layout, trust)
	if err != nil {
		return nil, err
	}
	var m *snapshot.Manifest
	for i := len(entries) - 1; i >= 0 && m == nil; i-- {
		if entries[i].Complete {
			m = entries[i].Manifest
		}
	}
	if m == nil {
		return nil, fmt.Errorf("cluster %q has no complete snapshot to drill: take one with binarc snapshot", layout.Cluster)
	}
	binlog, err := binlogAfter(ctx, archive.Catalog{Store: store, Layout: layout}, m.Coordinates.File)
	if err != nil {
		return nil, err
	}
	need := uint64(m.RawSize) + binlog
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return nil, fmt.Errorf("scratch directory %s: %w", dir, err)
	}
	free := st.Bavail * uint64(st.Bsize)
	if free < need {
		return nil, fmt.Errorf("not enough space for the drill in %s: it needs %d MiB (snapshot %s restores to %d MiB, and %d MiB of binlog follow it), and %d MiB are free: free space there or give --scratch-dir on a larger file system",
			dir, need>>20, m.ID, m.RawSize>>20, binlog>>20, free>>20)
	}
	return m, nil
}

// binlogAfter is the size of the archived binlog of the newest timeline
// from file on (file names sort in order): an upper bound of what a
// restore from a snapshot at file fetches.
func binlogAfter(ctx context.Context, cat archive.Catalog, file string) (uint64, error) {
	tls, err := cat.Describe(ctx)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, tl := range tls {
		for _, f := range tl.Files {
			if f.File >= file {
				n += f.Size
			}
		}
	}
	return n, nil
}

// toolVersions are the versions of the programs the restore ran, and the
// backup tool that took the snapshot.
func toolVersions(ctx context.Context, m *snapshot.Manifest) map[string]string {
	out := map[string]string{"snapshot taken with": strings.TrimSpace(m.Tool + " " + m.ToolVersion)}
	for _, names := range [][]string{{"mariadbd", "mysqld"}, {"mariabackup", "mariadb-backup"}, {"mbstream"}, {"mariadb", "mysql"}, {"mariadb-binlog", "mysqlbinlog"}} {
		path, err := progs.Find(names...)
		if err != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		b, err := exec.CommandContext(cctx, path, "--version").CombinedOutput()
		cancel()
		if err == nil {
			out[names[0]] = firstLine(strings.TrimSpace(string(b)))
		}
	}
	return out
}
