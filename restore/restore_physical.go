package restore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/binarc/binarc/snapshot"
)

// restorePhysical extracts a physical snapshot into req.Datadir, prepares
// it, starts a temporary server on it (socket only, no networking, no
// binary log, no replication), replays the binlog into it, and stops it
// cleanly, leaving the directory ready for a server to start on.
//
// binlog returns the binlog plan; it is called once the snapshot is
// prepared, so the plan's fetch may run meanwhile (restoreOverlapped). Its
// error fails the restore (and empties the directory) before the server
// starts: nothing is replayed before the whole plan is fetched and checked.
func restorePhysical(ctx context.Context, req RestoreRequest, m *snapshot.Manifest, binlog func() (*Plan, error), tools ReplayTools) (err error) {
	log := req.Log
	sb, err := NewSandbox()
	if err != nil {
		return err
	}
	var pt physicalTools
	if pt.mbstream, err = findBinary("mariadb-backup", "mbstream"); err != nil {
		return err
	}
	if pt.backup, err = findBinary("mariadb-backup", "mariabackup", "mariadb-backup"); err != nil {
		return err
	}
	mariadbd, err := findBinary("mariadb-server", "mariadbd", "mysqld")
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(req.Datadir)
	if err != nil {
		return err
	}
	if err := sb.CheckReachable(dir); err != nil {
		return fmt.Errorf("--datadir %w", err)
	}
	created := false
	if _, statErr := os.Stat(dir); os.IsNotExist(statErr) {
		created = true
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("--datadir: %w", err)
	}
	defer func() {
		if err != nil {
			wipeDir(dir, created)
			log.Error().Str("datadir", dir).Msg("restore failed; the data directory was emptied")
		}
	}()
	if err := sb.Own(dir); err != nil {
		return fmt.Errorf("--datadir: give it to the %s user: %w", sb.User, err)
	}
	if err := prepareSnapshot(ctx, sb, req.Store, m, req.Opener, dir, pt, log, req.timed); err != nil {
		return err
	}
	bp, err := binlog()
	if err != nil {
		return err
	}

	// The server's private directory: its socket, its pid file, and an
	// empty directory that is all SELECT … INTO OUTFILE and LOAD DATA
	// INFILE may touch (--secure-file-priv).
	runDir, err := os.MkdirTemp("", "binarc-rs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(runDir)
	filesDir := filepath.Join(runDir, "files")
	if err := os.Mkdir(filesDir, 0o700); err != nil {
		return err
	}
	if err := sb.Own(runDir); err != nil {
		return err
	}
	sock := filepath.Join(runDir, "s")
	errLog := filepath.Join(dir, "binarc-restore.err")
	args := []string{"--no-defaults", "--datadir=" + dir, "--socket=" + sock, "--pid-file=" + filepath.Join(runDir, "pid"),
		"--skip-networking", "--skip-log-bin", "--skip-slave-start", "--skip-grant-tables",
		"--secure-file-priv=" + filesDir, "--local-infile=0",
		// Replayed through serve: apply events whatever server_id they carry.
		"--replicate-same-server-id",
		"--max-allowed-packet=1G", "--tmpdir=" + runDir, "--log-error=" + errLog}
	// Not the request's context: stop shuts it down cleanly.
	server, err := startProcess(sb.Command(context.Background(), mariadbd, args...))
	if err != nil {
		return fmt.Errorf("start the temporary server: %w", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = server.stop(time.Minute)
		}
	}()
	if err := server.waitSocket(ctx, sock, 2*time.Minute); err != nil {
		return fmt.Errorf("the temporary server on %s did not start: %w (see %s)", dir, err, errLog)
	}
	log.Info().Str("datadir", dir).Str("user", sb.User).
		Msg("temporary server up (as an unprivileged user, socket only, no networking, no binary log, no file access); replaying the binlog")
	if req.AfterServerUp != nil {
		req.AfterServerUp(ctx)
	}
	client := ReplayClient{Socket: sock, User: "root",
		// --skip-grant-tables keeps the restored users out of the way of
		// our connection; loading the grant tables again lets the replayed
		// CREATE USER and GRANT statements run.
		Preamble: "FLUSH PRIVILEGES;"}
	replayStarted := time.Now()
	if err := replayPlan(ctx, req, bp, client, tools); err != nil {
		return err
	}
	req.timed(PhaseReplay, replayStarted)
	stopped = true
	if err := server.stop(5 * time.Minute); err != nil {
		return fmt.Errorf("stop the temporary server: %w", err)
	}
	os.Remove(errLog)
	log.Info().Str("datadir", dir).Str("owner", sb.User).Stringer("stopped_at", bp.Stop).
		Msg("restore done: the data directory is ready, owned by the server's user; start a server on it with --skip-slave-start (it holds the source's replication settings)")
	return nil
}

// loadDump loads a logical snapshot into the target server.
func loadDump(ctx context.Context, req RestoreRequest, m *snapshot.Manifest, tools ReplayTools) error {
	req.Log.Info().Str("snapshot", m.ID).Int64("bytes", m.RawSize).Msg("downloading the SQL dump and checking its digest")
	path, err := fetchCheckedDump(ctx, req.Store, m, req.Opener, req.WorkDir)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	req.Log.Info().Str("snapshot", m.ID).Int64("bytes", m.RawSize).Msg("loading the SQL dump into the target server")
	return LoadSQL(ctx, f, *req.Server, tools)
}
