package testenv

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
)

// mariadbStartTimeout bounds start-up and clean shutdown. A lean server on an
// idle machine takes well under a second; a loaded CI runner may take many.
const mariadbStartTimeout = 60 * time.Second

// MariaDBOptions configures StartMariaDB. The zero value is a binlogging
// primary with server_id 1 and default-sized binlog files.
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
	// ExtraArgs are appended to the mariadbd command line, after (and so
	// overriding) the options testenv sets.
	ExtraArgs []string
}

// MariaDB is a mariadbd started by StartMariaDB on a datadir of its own.
//
// Root access: mariadb-install-db --auth-root-authentication-method=normal
// creates root@localhost, root@127.0.0.1 and root@::1 with no password, so
// RootUser/RootPassword ("root", "") work over TCP on 127.0.0.1 and over the
// unix socket. Exec, Query and Connect use them.
type MariaDB struct {
	Port      int    // TCP port on 127.0.0.1; the same across Stop/Kill/Start
	Socket    string // unix socket path (kept short: sun_path is 108 bytes)
	DataDir   string
	BinlogDir string // directory holding the binlog files and their index
	BaseName  string // binlog base name: files are BaseName.000001, ...
	ServerID  uint32

	RootUser     string
	RootPassword string

	opts      MariaDBOptions
	mariadbd  string
	socketDir string

	mu   sync.Mutex
	proc *process // nil while stopped
}

// StartMariaDB initialises a fresh datadir under t.TempDir(), starts mariadbd
// on it and waits until it accepts connections. The server is killed and its
// socket directory removed in t.Cleanup.
func StartMariaDB(t testing.TB, opts MariaDBOptions) *MariaDB {
	t.Helper()
	mariadbd, err := BinaryPath("mariadbd", "mysqld")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	installDB, err := BinaryPath("mariadb-install-db", "mysql_install_db")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}

	dataDir := filepath.Join(t.TempDir(), "data")
	socketDir, err := os.MkdirTemp(shortTempDir(), "binarc-")
	if err != nil {
		t.Fatalf("testenv: socket directory: %v", err)
	}
	serverID := opts.ServerID
	if serverID == 0 {
		serverID = 1
	}
	m := &MariaDB{
		Socket:    filepath.Join(socketDir, "mariadbd.sock"),
		DataDir:   dataDir,
		BinlogDir: dataDir,
		BaseName:  "mysql-bin",
		ServerID:  serverID,
		RootUser:  "root",
		opts:      opts,
		mariadbd:  mariadbd,
		socketDir: socketDir,
	}
	// Registered after t.TempDir, so it runs before the datadir is removed.
	t.Cleanup(func() {
		m.mu.Lock()
		if m.proc != nil {
			m.proc.kill()
			m.proc = nil
		}
		m.mu.Unlock()
		os.RemoveAll(socketDir)
	})

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
	if err := initDataDir(mariadbd, installDB, installArgs, dataDir); err != nil {
		t.Fatalf("testenv: initialise datadir: %v", err)
	}

	// FreePort cannot reserve a port against other processes (parallel test
	// binaries), so a lost race is retried with another port.
	for attempt := 1; ; attempt++ {
		m.Port = FreePort(t)
		err := m.start()
		if err == nil {
			return m
		}
		if attempt < 3 && strings.Contains(tailFile(m.errorLog(), 20), "Address already in use") {
			os.Remove(m.errorLog()) // so the next attempt is judged on its own log
			continue
		}
		t.Fatalf("testenv: %v", err)
	}
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
func (m *MariaDB) Stop(t testing.TB) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc == nil {
		t.Fatal("testenv: MariaDB.Stop: server is not running")
	}
	if err := m.proc.stop(syscall.SIGTERM, mariadbStartTimeout); err != nil {
		t.Fatalf("testenv: stop mariadbd: %v\nerror.log:\n%s", err, tailFile(m.errorLog(), 30))
	}
	m.proc = nil
}

// Kill crashes the server (SIGKILL) and waits for it to be reaped.
func (m *MariaDB) Kill(t testing.TB) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc == nil {
		t.Fatal("testenv: MariaDB.Kill: server is not running")
	}
	m.proc.kill()
	m.proc = nil
}

// Start starts a stopped or killed server again on the same datadir, socket
// and port, and waits until it accepts connections.
func (m *MariaDB) Start(t testing.TB) {
	t.Helper()
	if err := m.start(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

func (m *MariaDB) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil {
		return fmt.Errorf("start mariadbd on port %d: already running", m.Port)
	}
	cmd := exec.Command(m.mariadbd, m.serverArgs()...)
	proc, err := startProcess(cmd)
	if err != nil {
		return fmt.Errorf("start %s: %w", m.mariadbd, err)
	}
	if err := m.waitReady(proc); err != nil {
		proc.kill()
		return fmt.Errorf("mariadbd on port %d (datadir %s): %w\nerror.log:\n%s",
			m.Port, m.DataDir, err, tailFile(m.errorLog(), 30))
	}
	m.proc = proc
	return nil
}

// waitReady polls with a root login over TCP until one succeeds, the process
// exits, or mariadbStartTimeout passes.
func (m *MariaDB) waitReady(proc *process) error {
	deadline := time.Now().Add(mariadbStartTimeout)
	for {
		conn, err := m.dial()
		if err == nil {
			quit(conn)
			return nil
		}
		if proc.exited() {
			return fmt.Errorf("exited during start-up: %v", proc.err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not accepting connections after %v: %v", mariadbStartTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (m *MariaDB) errorLog() string { return filepath.Join(m.DataDir, "error.log") }

// innodbArgs are shared by mariadb-install-db and mariadbd.
func (m *MariaDB) innodbArgs() []string {
	return []string{
		"--innodb-buffer-pool-size=64M",
		"--innodb-log-file-size=48M",
		// Torn pages only happen on an OS crash, never on a SIGKILL (Kill).
		// innodb_flush_log_at_trx_commit stays at its default of 1: with 2,
		// each binlog rotation leaves a binlog checkpoint waiting for
		// InnoDB's once-a-second log flush, and a clean shutdown after a
		// rotation takes ~1 s instead of ~25 ms (MariaDB 10.11).
		"--innodb-doublewrite=0",
	}
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

// dial opens a root connection over TCP.
func (m *MariaDB) dial() (*client.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return client.ConnectWithContext(ctx, m.Addr(), m.RootUser, m.RootPassword, "", 5*time.Second)
}

// quit ends a session with COM_QUIT: a bare close makes the server log
// "Aborted connection ... Got an error reading communication packets".
func quit(conn *client.Conn) {
	if conn.Quit() != nil {
		conn.Close()
	}
}

// Connect returns a root connection over TCP, closed in t.Cleanup. Use it to
// hold a session open (a transaction, a lock); Exec and Query suit the rest.
func (m *MariaDB) Connect(t testing.TB) *client.Conn {
	t.Helper()
	conn, err := m.dial()
	if err != nil {
		t.Fatalf("testenv: connect to mariadbd at %s as %s: %v", m.Addr(), m.RootUser, err)
	}
	t.Cleanup(func() { quit(conn) })
	return conn
}

// Exec runs each statement as root on one connection, in order, failing the
// test on the first error.
func (m *MariaDB) Exec(t testing.TB, sql ...string) {
	t.Helper()
	conn, err := m.dial()
	if err != nil {
		t.Fatalf("testenv: connect to mariadbd at %s as %s: %v", m.Addr(), m.RootUser, err)
	}
	defer quit(conn)
	for _, stmt := range sql {
		res, err := conn.Execute(stmt)
		if err != nil {
			t.Fatalf("testenv: exec %q on %s: %v", stmt, m.Addr(), err)
		}
		res.Close()
	}
}

// Query runs one statement as root and returns its rows as text. A NULL
// comes back as the string "NULL", the way the mariadb client prints it.
func (m *MariaDB) Query(t testing.TB, sql string) [][]string {
	t.Helper()
	conn, err := m.dial()
	if err != nil {
		t.Fatalf("testenv: connect to mariadbd at %s as %s: %v", m.Addr(), m.RootUser, err)
	}
	defer quit(conn)
	res, err := conn.Execute(sql)
	if err != nil {
		t.Fatalf("testenv: query %q on %s: %v", sql, m.Addr(), err)
	}
	defer res.Close()
	if res.Resultset == nil {
		return nil
	}
	rows := make([][]string, 0, res.RowNumber())
	for r := range res.RowNumber() {
		row := make([]string, res.ColumnNumber())
		for c := range row {
			row[c], err = textValue(res.Resultset, r, c)
			if err != nil {
				t.Fatalf("testenv: query %q: row %d column %d: %v", sql, r, c, err)
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func textValue(rs *mysql.Resultset, row, col int) (string, error) {
	if null, err := rs.IsNull(row, col); err != nil || null {
		return "NULL", err
	}
	// A copy: GetString returns a view of the row buffer, which the
	// driver reuses once the result is closed.
	s, err := rs.GetString(row, col)
	return strings.Clone(s), err
}

// CreateReplicationUser creates user@'127.0.0.1' and user@'localhost' with
// the grants a binlog archiver needs: REPLICATION SLAVE for the binlog dump,
// and REPLICATION CLIENT for SHOW BINARY LOGS / SHOW MASTER STATUS. Since
// MariaDB 10.5.2 those two statements need BINLOG MONITOR, of which
// REPLICATION CLIENT is an alias (SHOW GRANTS prints BINLOG MONITOR).
func (m *MariaDB) CreateReplicationUser(t testing.TB, user, pass string) {
	t.Helper()
	var stmts []string
	for _, host := range []string{"127.0.0.1", "localhost"} {
		account := sqlString(user) + "@" + sqlString(host)
		stmts = append(stmts,
			"CREATE USER "+account+" IDENTIFIED BY "+sqlString(pass),
			"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO "+account)
	}
	m.Exec(t, stmts...)
}

// BinlogFiles returns the absolute paths of the binlog files on disk, in the
// order of the binlog index (oldest first).
func (m *MariaDB) BinlogFiles(t testing.TB) []string {
	t.Helper()
	if m.opts.NoLogBin {
		t.Fatal("testenv: BinlogFiles: server was started with NoLogBin")
	}
	index := filepath.Join(m.BinlogDir, m.BaseName+".index")
	b, err := os.ReadFile(index)
	if err != nil {
		t.Fatalf("testenv: read binlog index: %v", err)
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
	return files
}

// sqlString quotes s as an SQL string literal.
func sqlString(s string) string {
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
