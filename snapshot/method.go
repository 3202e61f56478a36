package snapshot

import (
	"context"
	"io"
	"os/exec"
	"path/filepath"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
)

// dataName is the name of a method's data object.
func dataName(m Method) string {
	if m == Physical {
		return archive.SnapshotDataPhysical
	}
	return archive.SnapshotDataLogical
}

// backupCommand is the tool's command line for method.
func backupCommand(ctx context.Context, method Method, t tool, w *workDir, info ServerInfo, fromPrimary bool) *exec.Cmd {
	if method == Physical {
		return physicalCommand(ctx, t, w, info)
	}
	return logicalCommand(ctx, t, w, info, fromPrimary)
}

// coordinateScanner reads a primary's coordinates out of the tool's output
// as it streams past (see XbstreamScanner and dumpScanner).
type coordinateScanner interface {
	io.Writer
	coordinates() (Coordinates, error)
}

func newCoordinateScanner(method Method) coordinateScanner {
	if method == Physical {
		return NewXbstreamScanner()
	}
	return &dumpScanner{}
}

// physicalCommand is mariabackup (xtrabackup) streaming an xbstream of the
// server's datadir to stdout. The option file must come first: the tools
// read --defaults-extra-file only as their first argument. --target-dir
// holds the tool's temp files; --datadir is the server's, so a my.cnf on
// this host that names another datadir cannot redirect the copy.
func physicalCommand(ctx context.Context, t tool, w *workDir, info ServerInfo) *exec.Cmd {
	cmd := exec.CommandContext(ctx, t.Path,
		"--defaults-extra-file="+w.DefaultsFile,
		"--backup",
		"--stream=xbstream",
		"--target-dir="+filepath.Join(w.Dir, "target"),
		"--datadir="+info.DataDir,
	)
	cmd.Env = w.toolEnv()
	cmd.Dir = w.Dir
	return cmd
}

// logicalCommand is mariadb-dump (mysqldump) of every database in one
// consistent transaction, with routines, triggers and events. From a
// replica whose SQL thread binarc stopped, the coordinates come from SHOW
// SLAVE STATUS; from a primary, --master-data=2 writes them into the dump
// as a comment (and MariaDB's --gtid adds the GTID position), read back by
// dumpScanner. --dump-slave is not used: it would start the SQL thread
// again itself, behind binarc's back.
func logicalCommand(ctx context.Context, t tool, w *workDir, info ServerInfo, fromPrimary bool) *exec.Cmd {
	args := []string{
		"--defaults-extra-file=" + w.DefaultsFile,
		"--single-transaction",
		"--routines", "--triggers", "--events",
		"--all-databases",
		"--max-allowed-packet=1G",
	}
	if fromPrimary {
		if info.Flavor == replication.FlavorMariaDB {
			args = append(args, "--master-data=2", "--gtid")
		} else if versionAtLeast(info.Version, 8, 0, 26) {
			args = append(args, "--source-data=2")
		} else {
			args = append(args, "--master-data=2")
		}
	}
	cmd := exec.CommandContext(ctx, t.Path, args...)
	cmd.Env = w.toolEnv()
	cmd.Dir = w.Dir
	return cmd
}
