package drill

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/binarc/binarc/internal/progs"
	"github.com/binarc/binarc/restore"
	"github.com/go-mysql-org/go-mysql/client"
)

// server is the temporary server a drill starts on the restored data
// directory: as the restore's sandbox user, on a private socket, with no
// networking, no binary log, no replication and no file access.
type server struct {
	sock   string
	runDir string
	jailed bool // in the restore's jail: its own network namespace
	cmd    *exec.Cmd
	done   chan struct{}
	err    error
}

// drillServerID is the temporary server's server_id.
const drillServerID = 4_294_960_023

// startServer starts mariadbd on datadir and waits until it answers.
func startServer(ctx context.Context, datadir string, noJail bool) (*server, error) {
	sb, mariadbd, err := sandboxed(noJail, "mariadbd", "mysqld")
	if err != nil {
		return nil, err
	}
	runDir, err := os.MkdirTemp("", "binarc-drill-run-")
	if err != nil {
		return nil, err
	}
	files, plugins := filepath.Join(runDir, "files"), filepath.Join(runDir, "plugins")
	if err := os.Mkdir(files, 0o700); err != nil {
		return nil, err
	}
	// An empty plugin directory, as restore's temporary server has: the
	// archive's INSTALL SONAME loads nothing.
	if err := os.Mkdir(plugins, 0o755); err != nil {
		return nil, err
	}
	if err := sb.Own(runDir); err != nil {
		return nil, err
	}
	s := &server{sock: filepath.Join(runDir, "s"), runDir: runDir, jailed: sb.Jailed, done: make(chan struct{})}
	errLog := filepath.Join(runDir, "error.log")
	// --skip-slave-start: the data directory holds the snapshot source's
	// replication settings; the temporary server must not replicate them.
	// Its own server_id, unlike any a cluster uses, lets it apply the
	// archive's events through its applier (catchUp).
	s.cmd = sb.Command(context.Background(), restore.Paths{Writable: []string{datadir, runDir}}, mariadbd, "--no-defaults", "--datadir="+datadir, "--socket="+s.sock,
		"--server-id="+strconv.FormatUint(uint64(drillServerID), 10),
		"--pid-file="+filepath.Join(runDir, "pid"), "--skip-networking", "--skip-log-bin", "--skip-slave-start",
		"--skip-grant-tables", "--secure-file-priv="+files, "--local-infile=0", "--skip-symbolic-links", "--plugin-dir="+plugins,
		"--tmpdir="+runDir, "--log-error="+errLog)
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(runDir)
		return nil, fmt.Errorf("start the drill's temporary server: %w", err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	if err := s.waitSocket(ctx, 2*time.Minute); err != nil {
		s.stop()
		return nil, fmt.Errorf("the drill's temporary server on %s did not start: %w", datadir, err)
	}
	return s, nil
}

// startEmptyServer makes a new data directory (mariadb-install-db, as
// the sandbox user) and starts the temporary server on it: a logical
// snapshot is loaded into a running server.
func startEmptyServer(ctx context.Context, datadir string, noJail bool) (*server, error) {
	sb, installDB, err := sandboxed(noJail, "mariadb-install-db", "mysql_install_db")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(datadir, 0o750); err != nil {
		return nil, err
	}
	if err := sb.Own(datadir); err != nil {
		return nil, err
	}
	// Its bootstrap server's temporary files go to a directory of its own:
	// the rest of the host, /tmp included, is read-only in the jail.
	tmp, err := os.MkdirTemp("", "binarc-drill-install-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := sb.Own(tmp); err != nil {
		return nil, err
	}
	cmd := sb.Command(ctx, restore.Paths{Writable: []string{datadir, tmp}}, installDB, "--no-defaults", "--datadir="+datadir,
		"--auth-root-authentication-method=normal", "--skip-test-db", "--cross-bootstrap", "--tmpdir="+tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", installDB, err, firstError(string(out)))
	}
	return startServer(ctx, datadir, noJail)
}

// sandboxed is the restore's sandbox a drill runs a program of the
// mariadb-server package in, and that program: the first of names found.
func sandboxed(noJail bool, names ...string) (*restore.Sandbox, string, error) {
	sb, err := restore.NewSandbox(restore.SandboxOptions{NoJail: noJail})
	if err != nil {
		return nil, "", err
	}
	prog, err := progs.Find(names...)
	if err != nil {
		return nil, "", fmt.Errorf("%w: install the Debian package mariadb-server", err)
	}
	return sb, prog, nil
}

// firstError is the first "[ERROR]" line of a tool's output, or its last
// line (mariadb-install-db ends with a long boilerplate after the error).
func firstError(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "[ERROR]") {
			return strings.TrimSpace(l)
		}
	}
	return lastLine(s)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func (s *server) waitSocket(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("it exited: %v", s.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if c, err := net.DialTimeout("unix", s.sock, time.Second); err == nil {
			c.Close()
			return nil
		}
	}
	return fmt.Errorf("no answer on %s after %s", s.sock, timeout)
}

// connect opens a session as root over the socket (the grant tables are
// skipped).
func (s *server) connect() (*client.Conn, error) {
	c, err := client.Connect(s.sock, "root", "", "")
	if err != nil {
		return nil, fmt.Errorf("connect to the drill's temporary server: %w", err)
	}
	return c, nil
}

// stop shuts the server down (SIGTERM, then SIGKILL after a minute) and
// removes its private directory.
func (s *server) stop() {
	defer os.RemoveAll(s.runDir)
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// client is how a restore replays into the server: its socket, and, when
// it is jailed, its network namespace (where the private serve it
// replicates from must listen).
func (s *server) client() *restore.ReplayClient {
	c := &restore.ReplayClient{Socket: s.sock, User: "root"}
	if s.jailed {
		c.NetnsOf = s.cmd.Process.Pid
	}
	return c
}
