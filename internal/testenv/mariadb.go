package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
)

// mariadbStartTimeout bounds start-up and clean shutdown. A lean server on an
// idle machine takes well under a second; a loaded CI runner may take many.
const mariadbStartTimeout = 60 * time.Second

// MariaDBOptions configures LaunchMariaDB. The zero value is a binlogging
// primary with server_id 1, default-sized binlog files and a small InnoDB.
type MariaDBOptions struct {
	// ServerID is the server's server_id; 0 means 1.
	ServerID uint32
	// NoLogBin starts the server without a binary log (--skip-log-bin).
	NoLogBin bool
	// MaxBinlogSize is --max-binlog-size in bytes; 0 keeps the server default
	// (1 GiB). MariaDB clamps values below 4096 up to 4096 and rounds down to
	// a multiple of 4096. The server rotates only between transactions, so
	// files overshoot it by up to one transaction.
	MaxBinlogSize int64
	// GTIDStrict sets --gtid-strict-mode=ON.
	GTIDStrict bool
	// BufferPoolSize is --innodb-buffer-pool-size in bytes; 0 means 64 MiB,
	// enough for tests. The bench sizes it for its working set.
	BufferPoolSize int64
	// RedoLogSize is --innodb-log-file-size in bytes; 0 means 48 MiB. The
	// datadir is initialised with the same size, so the first start does
	// not resize the redo log.
	RedoLogSize int64
	// ExtraArgs are appended to the mariadbd command line, after (and so
	// overriding) the options testenv sets.
	ExtraArgs []string
}

// MariaDB is a mariadbd started by LaunchMariaDB on a datadir of its own.
//
// Root access: mariadb-install-db --auth-root-authentication-method=normal
// creates root@localhost, root@127.0.0.1 and root@::1 with no password, so
// RootUser/RootPassword ("root", "") work over TCP on 127.0.0.1 and over the
// unix socket. Exec, Query and Dial use them.
type MariaDB struct {
	Port      int    // TCP port on 127.0.0.1; the same across Stop/Kill/Start
	Socket    string // unix socket path (kept short: sun_path is 108 bytes)
	DataDir   string
	BinlogDir string // directory holding the binlog files and their index
	BaseName  string // binlog base name: files are BaseName.000001, ...
	ServerID  uint32
	Version   string // the server's version, without the 5.5.5- prefix

	RootUser     string
	RootPassword string

	opts      MariaDBOptions
	mariadbd  string
	socketDir string

	running
}

// LaunchMariaDB initialises a fresh datadir at dataDir (which must not
// exist), starts mariadbd on it and waits until it accepts connections.
// Close kills the server; the datadir is the caller's to remove.
func LaunchMariaDB(ctx context.Context, dataDir string, opts MariaDBOptions) (*MariaDB, error) {
	installDB, err := BinaryPath("mariadb-install-db", "mysql_install_db")
	if err != nil {
		return nil, err
	}
	m, err := newMariaDB(dataDir, opts)
	if err != nil {
		return nil, err
	}
	// --cross-bootstrap ("for internal use": MariaDB builds portable
	// datadirs with it) leaves out root@<hostname>, which --skip-name-resolve
	// servers warn about on every start, and skips resolving the hostname.
	// The InnoDB sizes match the server's, so the first start does not
	// resize the redo log.
	installArgs := append([]string{
		"--auth-root-authentication-method=normal",
		"--skip-test-db",
		"--cross-bootstrap",
	}, m.innodbArgs()...)
	if err := initDataDir(m.mariadbd, installDB, installArgs, dataDir); err != nil {
		m.Close()
		return nil, fmt.Errorf("initialise datadir %s: %w", dataDir, err)
	}
	if err := m.launch(ctx); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// LaunchMariaDBOn starts mariadbd on an existing datadir, such as one
// restored from a backup, and waits until it accepts connections.
func LaunchMariaDBOn(ctx context.Context, dataDir string, opts MariaDBOptions) (*MariaDB, error) {
	m, err := newMariaDB(dataDir, opts)
	if err != nil {
		return nil, err
	}
	if err := m.launch(ctx); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func newMariaDB(dataDir string, opts MariaDBOptions) (*MariaDB, error) {
	mariadbd, err := BinaryPath("mariadbd", "mysqld")
	if err != nil {
		return nil, err
	}
	socketDir, err := os.MkdirTemp(shortTempDir(), "binarc-")
	if err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	serverID := opts.ServerID
	if serverID == 0 {
		serverID = 1
	}
	return &MariaDB{
		Socket:    filepath.Join(socketDir, "mariadbd.sock"),
		DataDir:   dataDir,
		BinlogDir: dataDir,
		BaseName:  "mysql-bin",
		ServerID:  serverID,
		RootUser:  "root",
		opts:      opts,
		mariadbd:  mariadbd,
		socketDir: socketDir,
	}, nil
}

// launch starts the server on a free port.
func (m *MariaDB) launch(ctx context.Context) error {
	return onFreePort(func(port int) error {
		m.Port = port
		return m.Start(ctx)
	}, func() bool {
		if !strings.Contains(TailFile(m.errorLog(), 20), "Address already in use") {
			return false
		}
		os.Remove(m.errorLog()) // so the next attempt is judged on its own log
		return true
	})
}

// Close kills the server if it runs and removes its socket directory.
func (m *MariaDB) Close() error {
	m.kill()
	return os.RemoveAll(m.socketDir)
}

// Addr is the server's TCP address, 127.0.0.1:Port.
func (m *MariaDB) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(m.Port))
}

// SourceURL is a mysql:// URL for binarc's --source flag.
func (m *MariaDB) SourceURL(user, pass string) string {
	u := url.URL{Scheme: "mysql", User: url.UserPassword(user, pass), Host: m.Addr()}
	if pass == "" {
		u.User = url.User(user)
	}
	return u.String()
}

// MariadbBinlog returns the path of mariadb-binlog (or mysqlbinlog), or ""
// when neither is installed.
func (m *MariaDB) MariadbBinlog() string {
	p, _ := BinaryPath("mariadb-binlog", "mysqlbinlog")
	return p
}

// Stop shuts the server down cleanly (SIGTERM) and waits for it to exit.
func (m *MariaDB) Stop() error {
	if err := m.stop(syscall.SIGTERM, mariadbStartTimeout); err != nil {
		return fmt.Errorf("stop mariadbd on port %d: %w\nerror.log:\n%s", m.Port, err, TailFile(m.errorLog(), 30))
	}
	return nil
}

// Kill crashes the server (SIGKILL) and waits for it to be reaped.
func (m *MariaDB) Kill() error {
	if !m.kill() {
		return fmt.Errorf("kill mariadbd on port %d: %w", m.Port, errNotRunning)
	}
	return nil
}

// Start starts a stopped or killed server again on the same datadir, socket
// and port, and waits until it accepts connections.
func (m *MariaDB) Start(ctx context.Context) error {
	// A root login over TCP is the test of readiness.
	err := m.start(ctx, "mariadbd", exec.Command(m.mariadbd, m.serverArgs()...), mariadbStartTimeout, func() error {
		conn, err := m.Dial(ctx)
		if err != nil {
			return err
		}
		// MariaDB prefixes its version with 5.5.5- for old MySQL clients.
		m.Version = strings.TrimPrefix(conn.GetServerVersion(), "5.5.5-")
		Quit(conn)
		return nil
	})
	if err != nil {
		return fmt.Errorf("mariadbd on port %d (datadir %s): %w\nerror.log:\n%s",
			m.Port, m.DataDir, err, TailFile(m.errorLog(), 30))
	}
	return nil
}

func (m *MariaDB) errorLog() string { return filepath.Join(m.DataDir, "error.log") }

// innodbArgs are shared by mariadb-install-db and mariadbd.
func (m *MariaDB) innodbArgs() []string {
	pool, redo := m.opts.BufferPoolSize, m.opts.RedoLogSize
	if pool == 0 {
		pool = 64 << 20
	}
	if redo == 0 {
		redo = 48 << 20
	}
	return []string{
		"--innodb-buffer-pool-size=" + sizeArg(pool),
		"--innodb-log-file-size=" + sizeArg(redo),
		// Torn pages only happen on an OS crash, never on a SIGKILL (Kill).
		// innodb_flush_log_at_trx_commit stays at its default of 1: with 2,
		// each binlog rotation leaves a binlog checkpoint waiting for
		// InnoDB's once-a-second log flush, and a clean shutdown after a
		// rotation takes ~1 s instead of ~25 ms (MariaDB 10.11).
		"--innodb-doublewrite=0",
	}
}

// sizeArg writes a size in whole MiB where it can (64M), as the options are
// usually written.
func sizeArg(n int64) string {
	if n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + "M"
	}
	return strconv.FormatInt(n, 10)
}

func (m *MariaDB) serverArgs() []string {
	args := []string{
		"--no-defaults", // must come first
		"--datadir=" + m.DataDir,
		"--socket=" + m.Socket,
		"--port=" + strconv.Itoa(m.Port),
		"--bind-address=127.0.0.1",
		"--server-id=" + strconv.FormatUint(uint64(m.ServerID), 10),
		"--pid-file=" + filepath.Join(m.DataDir, "mariadbd.pid"),
		"--log-error=" + m.errorLog(),
		// A private tmpdir: in the shared /tmp, a server's internal
		// temporary tables once collided with another process's files
		// (Error on delete of '/tmp/#sql-temptable-…').
		"--tmpdir=" + filepath.Dir(m.Socket),
		"--max-allowed-packet=1G",
		"--skip-name-resolve",
		// The binlog is still write()n at every commit, so Kill loses
		// nothing; only an OS crash could.
		"--sync-binlog=0",
		"--innodb-buffer-pool-dump-at-shutdown=0",
		"--innodb-buffer-pool-load-at-startup=0",
	}
	args = append(args, m.innodbArgs()...)
	if m.opts.NoLogBin {
		args = append(args, "--skip-log-bin")
	} else {
		args = append(args,
			"--log-bin="+filepath.Join(m.BinlogDir, m.BaseName),
			"--binlog-format=ROW")
		if m.opts.MaxBinlogSize > 0 {
			args = append(args, "--max-binlog-size="+strconv.FormatInt(m.opts.MaxBinlogSize, 10))
		}
	}
	if m.opts.GTIDStrict {
		args = append(args, "--gtid-strict-mode=ON")
	}
	if os.Geteuid() == 0 {
		// mariadbd refuses to run as root unless told to.
		args = append(args, "--user=root")
	}
	return append(args, m.opts.ExtraArgs...)
}

// Dial opens a root connection over TCP. Close it with Quit.
func (m *MariaDB) Dial(ctx context.Context) (*client.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := client.ConnectWithContext(ctx, m.Addr(), m.RootUser, m.RootPassword, "", 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connect to mariadbd at %s as %s: %w", m.Addr(), m.RootUser, err)
	}
	return conn, nil
}

// Quit ends a session with COM_QUIT: a bare close makes the server log
// "Aborted connection ... Got an error reading communication packets".
func Quit(conn *client.Conn) {
	if conn.Quit() != nil {
		conn.Close()
	}
}

// Exec runs each statement as root on one connection, in order, stopping at
// the first error.
func (m *MariaDB) Exec(ctx context.Context, sql ...string) error {
	conn, err := m.Dial(ctx)
	if err != nil {
		return err
	}
	defer Quit(conn)
	for _, stmt := range sql {
		res, err := conn.Execute(stmt)
		if err != nil {
			// Bounded: the bench sends statements of megabytes.
			return fmt.Errorf("exec %.200q on %s: %w", stmt, m.Addr(), err)
		}
		res.Close()
	}
	return nil
}

// Query runs one statement as root and returns its rows as text. A NULL
// comes back as the string "NULL", the way the mariadb client prints it.
func (m *MariaDB) Query(ctx context.Context, sql string) ([][]string, error) {
	conn, err := m.Dial(ctx)
	if err != nil {
		return nil, err
	}
	defer Quit(conn)
	res, err := conn.Execute(sql)
	if err != nil {
		return nil, fmt.Errorf("query %q on %s: %w", sql, m.Addr(), err)
	}
	defer res.Close()
	if res.Resultset == nil {
		return nil, nil
	}
	rows := make([][]string, 0, res.RowNumber())
	for r := range res.RowNumber() {
		row := make([]string, res.ColumnNumber())
		for c := range row {
			row[c], err = textValue(res.Resultset, r, c)
			if err != nil {
				return nil, fmt.Errorf("query %q: row %d column %d: %w", sql, r, c, err)
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// textValue copies one value out of the driver's buffers: go-mysql v1.16's
// GetString returns a view of a pooled packet buffer that a later query
// reuses.
func textValue(rs *mysql.Resultset, row, col int) (string, error) {
	if null, err := rs.IsNull(row, col); err != nil || null {
		return "NULL", err
	}
	s, err := rs.GetString(row, col)
	return strings.Clone(s), err
}

// CreateReplicationUser creates user@'127.0.0.1' and user@'localhost' with
// the grants a binlog archiver needs: REPLICATION SLAVE for the binlog dump,
// and REPLICATION CLIENT for SHOW BINARY LOGS / SHOW MASTER STATUS. Since
// MariaDB 10.5.2 those two statements need BINLOG MONITOR, of which
// REPLICATION CLIENT is an alias (SHOW GRANTS prints BINLOG MONITOR).
func (m *MariaDB) CreateReplicationUser(ctx context.Context, user, pass string) error {
	var stmts []string
	for _, host := range []string{"127.0.0.1", "localhost"} {
		account := SQLString(user) + "@" + SQLString(host)
		stmts = append(stmts,
			"CREATE USER "+account+" IDENTIFIED BY "+SQLString(pass),
			"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO "+account)
	}
	return m.Exec(ctx, stmts...)
}

// BinlogFiles returns the absolute paths of the binlog files on disk, in the
// order of the binlog index (oldest first).
func (m *MariaDB) BinlogFiles() ([]string, error) {
	if m.opts.NoLogBin {
		return nil, errors.New("binlog files: server was started with NoLogBin")
	}
	index := filepath.Join(m.BinlogDir, m.BaseName+".index")
	b, err := os.ReadFile(index)
	if err != nil {
		return nil, fmt.Errorf("read binlog index: %w", err)
	}
	var files []string
	for _, line := range strings.Split(string(b), "\n") {
		name := strings.TrimSpace(line)
		if name == "" {
			continue
		}
		// The index holds paths as given to --log-bin: absolute here, but
		// "./mysql-bin.000001" (relative to the datadir) for a bare name.
		if !filepath.IsAbs(name) {
			name = filepath.Join(m.DataDir, name)
		}
		files = append(files, name)
	}
	return files, nil
}

// SQLString quotes s as an SQL string literal.
func SQLString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// shortTempDir is a directory whose paths stay well inside the 108-byte
// sun_path limit for unix sockets, even when $TMPDIR is deep.
func shortTempDir() string {
	if dir := os.TempDir(); len(dir) <= 60 {
		return dir
	}
	return "/tmp"
}
