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
	sb := req.sandbox
	pt, mariadbd, err := findPhysicalTools()
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
	ts, err := startTempServer(ctx, sb, mariadbd, dir)
	if ts != nil {
		defer ts.cleanup()
	}
	if err != nil {
		return err
	}
	log.Info().Str("datadir", dir).Str("user", sb.User).Bool("jailed", sb.Jailed).
		Msg("temporary server up (as an unprivileged user, in the jail, socket only, no binary log, no file access, no plugins); replaying the binlog")
	if req.AfterServerUp != nil {
		req.AfterServerUp(ctx)
	}
	client := ReplayClient{Socket: ts.sock, User: "root",
		// --skip-grant-tables keeps the restored users out of the way of
		// our connection; loading the grant tables again lets the replayed
		// CREATE USER and GRANT statements run.
		Preamble: "FLUSH PRIVILEGES;"}
	if sb.Jailed {
		// The server has only its own loopback: binarc's serve listens
		// there.
		client.NetnsOf = ts.server.cmd.Process.Pid
	}
	replayStarted := time.Now()
	if err := replayPlan(ctx, req, bp, client, tools); err != nil {
		return err
	}
	req.timed(PhaseReplay, replayStarted)
	if err := ts.stop(); err != nil {
		return err
	}
	log.Info().Str("datadir", dir).Str("owner", sb.User).Stringer("stopped_at", bp.Stop).
		Msg("restore done: the data directory is ready, owned by the server's user; start a server on it with --skip-slave-start (it holds the source's replication settings)")
	return nil
}

// findPhysicalTools finds mbstream, mariabackup and mariadbd.
func findPhysicalTools() (pt physicalTools, mariadbd string, err error) {
	if pt.mbstream, err = findBinary("mariadb-backup", "mbstream"); err != nil {
		return pt, "", err
	}
	if pt.backup, err = findBinary("mariadb-backup", "mariabackup", "mariadb-backup"); err != nil {
		return pt, "", err
	}
	mariadbd, err = findBinary("mariadb-server", "mariadbd", "mysqld")
	return pt, mariadbd, err
}

// tempServer is the temporary mariadbd a physical restore replays into,
// in the jail, as the sandbox user, on the restored data directory.
type tempServer struct {
	runDir, sock, errLog string
	server               *process
	stopped              bool
}

// startTempServer starts the temporary server on dir and waits for its
// socket. Its private directory holds its socket, its pid file, an empty
// directory that is all SELECT … INTO OUTFILE and LOAD DATA INFILE may
// touch (--secure-file-priv), and an empty --plugin-dir: INSTALL SONAME in
// the archive loads nothing (FederatedX, CONNECT or Spider would open
// connections out). The caller calls cleanup, even on an error.
func startTempServer(ctx context.Context, sb *Sandbox, mariadbd, dir string) (*tempServer, error) {
	runDir, err := os.MkdirTemp("", "binarc-rs-")
	if err != nil {
		return nil, err
	}
	ts := &tempServer{runDir: runDir, sock: filepath.Join(runDir, "s"), errLog: filepath.Join(dir, "binarc-restore.err")}
	filesDir, pluginDir := filepath.Join(runDir, "files"), filepath.Join(runDir, "plugins")
	if err := os.Mkdir(filesDir, 0o700); err != nil {
		return ts, err
	}
	if err := os.Mkdir(pluginDir, 0o755); err != nil {
		return ts, err
	}
	if err := sb.Own(runDir); err != nil {
		return ts, err
	}
	args := []string{"--no-defaults", "--datadir=" + dir, "--socket=" + ts.sock, "--pid-file=" + filepath.Join(runDir, "pid"),
		"--skip-networking", "--skip-log-bin", "--skip-slave-start", "--skip-grant-tables",
		// LOAD DATA LOCAL on: a client replay (--replay client) sends the
		// binlog's own LOAD DATA as LOAD DATA LOCAL of the file
		// mariadb-binlog wrote, and the only client on this socket is
		// binarc's, which reads no file but those (client_session.go).
		"--secure-file-priv=" + filesDir, "--local-infile=1",
		// No DATA DIRECTORY or INDEX DIRECTORY outside the data directory
		// (ignored, with a warning), no plugin from the host.
		"--skip-symbolic-links", "--plugin-dir=" + pluginDir,
		// Replayed through serve: apply events whatever server_id they carry.
		"--replicate-same-server-id",
		"--max-allowed-packet=1G", "--tmpdir=" + runDir, "--log-error=" + ts.errLog}
	// Not the request's context: stop shuts it down cleanly.
	if ts.server, err = startProcess(sb.Command(context.Background(), Paths{Writable: []string{dir, runDir}}, mariadbd, args...)); err != nil {
		return ts, fmt.Errorf("start the temporary server: %w", err)
	}
	if err := ts.server.waitSocket(ctx, ts.sock, 2*time.Minute); err != nil {
		return ts, fmt.Errorf("the temporary server on %s did not start: %w (see %s)", dir, err, ts.errLog)
	}
	return ts, nil
}

// stop shuts the server down cleanly and removes its error log.
func (ts *tempServer) stop() error {
	ts.stopped = true
	if err := ts.server.stop(5 * time.Minute); err != nil {
		return fmt.Errorf("stop the temporary server: %w", err)
	}
	os.Remove(ts.errLog)
	return nil
}

// cleanup stops a server still running and removes its directory.
func (ts *tempServer) cleanup() {
	if ts.server != nil && !ts.stopped {
		_ = ts.server.stop(time.Minute)
	}
	os.RemoveAll(ts.runDir)
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
