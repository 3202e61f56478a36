package restore

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/binarc/binarc/snapshot"
)

// restorePhysical extracts a physical snapshot into req.Datadir, prepares
// it, starts a temporary server on it (socket only, no networking, no
// binary log, no replication), replays the binlog into it, and stops it
// cleanly, leaving the directory ready for a server to start on.
func restorePhysical(ctx context.Context, req RestoreRequest, plan *RestorePlan, tools ReplayTools) (err error) {
	m := plan.Snapshot
	log := req.Log
	mbstream, err := findBinary("mariadb-backup", "mbstream")
	if err != nil {
		return err
	}
	backup, err := findBinary("mariadb-backup", "mariabackup", "mariadb-backup")
	if err != nil {
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
	created := false
	if _, statErr := os.Stat(dir); os.IsNotExist(statErr) {
		created = true
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("--datadir: %w", err)
	}
	defer func() {
		if err != nil {
			// A half-restored directory must not be mistaken for a restore.
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				os.RemoveAll(filepath.Join(dir, e.Name()))
			}
			if created {
				os.Remove(dir)
			}
			log.Error().Str("datadir", dir).Msg("restore failed; the data directory was emptied")
		}
	}()

	log.Info().Str("snapshot", m.ID).Int64("bytes", m.StoredSize).Msg("downloading and extracting the snapshot")
	started := time.Now()
	data, err := openSnapshotData(ctx, req.Store, m)
	if err != nil {
		return err
	}
	extract := exec.CommandContext(ctx, mbstream, "-x", "-C", dir)
	extract.Stdin = data
	err = runLogged(extract)
	data.Close()
	if err != nil {
		return fmt.Errorf("extract snapshot %s: %w", m.ID, err)
	}
	log.Info().Dur("took", time.Since(started).Round(time.Millisecond)).Msg("snapshot extracted; preparing it (mariabackup --prepare)")
	if err := runLogged(exec.CommandContext(ctx, backup, "--prepare", "--target-dir="+dir)); err != nil {
		return fmt.Errorf("prepare snapshot %s: %w", m.ID, err)
	}

	sockDir, err := os.MkdirTemp("", "binarc-rs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(sockDir)
	sock := filepath.Join(sockDir, "s")
	args := []string{"--no-defaults", "--datadir=" + dir, "--socket=" + sock, "--pid-file=" + filepath.Join(sockDir, "pid"),
		"--skip-networking", "--skip-log-bin", "--skip-slave-start", "--skip-grant-tables",
		// Replayed through serve: apply events whatever server_id they carry.
		"--replicate-same-server-id",
		"--max-allowed-packet=1G", "--log-error=" + filepath.Join(dir, "binarc-restore.err")}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	server := exec.Command(mariadbd, args...)
	if err := server.Start(); err != nil {
		return fmt.Errorf("start the temporary server: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- server.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = stopServer(server, exited, time.Minute)
		}
	}()
	if err := waitSocket(ctx, sock, exited, 2*time.Minute); err != nil {
		return fmt.Errorf("the temporary server on %s did not start: %w (see %s)", dir, err, filepath.Join(dir, "binarc-restore.err"))
	}
	log.Info().Str("datadir", dir).Msg("temporary server up (socket only, no networking, no binary log); replaying the binlog")
	client := ReplayClient{Socket: sock, User: "root",
		// --skip-grant-tables keeps the restored users out of the way of
		// our connection; loading the grant tables again lets the replayed
		// CREATE USER and GRANT statements run.
		Preamble: "FLUSH PRIVILEGES;"}
	if err := replayPlan(ctx, req, plan.Binlog, client, tools); err != nil {
		return err
	}
	stopped = true
	if err := stopServer(server, exited, 5*time.Minute); err != nil {
		return fmt.Errorf("stop the temporary server: %w", err)
	}
	os.Remove(filepath.Join(dir, "binarc-restore.err"))
	log.Info().Str("datadir", dir).Stringer("stopped_at", plan.Binlog.Stop).
		Msg("restore done: the data directory is ready; start a server on it with --skip-slave-start (it holds the source's replication settings) and chown it to the server's user")
	return nil
}

// waitSocket waits until the server accepts connections on its socket.
func waitSocket(ctx context.Context, sock string, exited <-chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("it exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if c, err := dialUnix(sock); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no answer on %s after %s", sock, timeout)
}

// loadDump loads a logical snapshot into the target server.
func loadDump(ctx context.Context, req RestoreRequest, m *snapshot.Manifest, tools ReplayTools) error {
	data, err := openSnapshotData(ctx, req.Store, m)
	if err != nil {
		return err
	}
	defer data.Close()
	req.Log.Info().Str("snapshot", m.ID).Int64("bytes", m.RawSize).Msg("loading the SQL dump into the target server")
	return LoadSQL(ctx, data, *req.Server, tools)
}

func dialUnix(sock string) (net.Conn, error) {
	return net.DialTimeout("unix", sock, time.Second)
}
