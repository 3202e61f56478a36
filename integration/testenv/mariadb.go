package testenv

import (
	"context"
	"testing"
	"time"

	core "github.com/binarc/binarc/internal/testenv"
	"github.com/go-mysql-org/go-mysql/client"
)

// MariaDBOptions configures StartMariaDB; see internal/testenv.
type MariaDBOptions = core.MariaDBOptions

// ReplicaOptions configures StartReplica; see internal/testenv.
type ReplicaOptions = core.ReplicaOptions

// MariaDB is a mariadbd started by StartMariaDB on a datadir of its own. Its
// fields (Port, Socket, DataDir, ...), Addr, SourceURL and MariadbBinlog are
// the core's.
//
// Root access: RootUser/RootPassword ("root", "") work over TCP on 127.0.0.1
// and over the unix socket. Exec, Query and Connect use them.
type MariaDB struct {
	*core.MariaDB
}

// StartMariaDB initialises a fresh datadir under t.TempDir(), starts mariadbd
// on it and waits until it accepts connections. The server is killed and its
// socket directory removed in t.Cleanup.
func StartMariaDB(t testing.TB, opts MariaDBOptions) *MariaDB {
	t.Helper()
	m, err := core.LaunchMariaDB(context.Background(), tempDataDir(t), opts)
	return started(t, m, err)
}

// StartMariaDBOn starts mariadbd on an existing datadir, such as one
// restored from a backup, with the same flags as StartMariaDB, no binlog
// and replication not started. The server is killed in t.Cleanup.
func StartMariaDBOn(t testing.TB, dataDir string, serverID uint32) *MariaDB {
	t.Helper()
	m, err := core.LaunchMariaDBOn(context.Background(), dataDir,
		MariaDBOptions{ServerID: serverID, NoLogBin: true, ExtraArgs: []string{"--skip-slave-start"}})
	return started(t, m, err)
}

// StartReplica starts a fresh MariaDB (with a binlog and
// log_slave_updates, as real replicas have) replicating from primary. Both
// datadirs start as copies of the same template, so the replica applies
// the primary's whole binlog from its first file.
func StartReplica(t testing.TB, primary *MariaDB, opts ReplicaOptions) *MariaDB {
	t.Helper()
	m, err := core.LaunchReplica(context.Background(), tempDataDir(t), primary.MariaDB, opts)
	return started(t, m, err)
}

// started fails t on a launch error, else registers the server's Close.
func started(t testing.TB, m *core.MariaDB, err error) *MariaDB {
	t.Helper()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return &MariaDB{MariaDB: m}
}

// Stop shuts the server down cleanly (SIGTERM) and waits for it to exit.
func (m *MariaDB) Stop(t testing.TB) {
	t.Helper()
	check(t, m.MariaDB.Stop())
}

// Kill crashes the server (SIGKILL) and waits for it to be reaped.
func (m *MariaDB) Kill(t testing.TB) {
	t.Helper()
	check(t, m.MariaDB.Kill())
}

// Start starts a stopped or killed server again on the same datadir, socket
// and port, and waits until it accepts connections.
func (m *MariaDB) Start(t testing.TB) {
	t.Helper()
	check(t, m.MariaDB.Start(context.Background()))
}

// Connect returns a root connection over TCP, closed in t.Cleanup. Use it to
// hold a session open (a transaction, a lock); Exec and Query suit the rest.
func (m *MariaDB) Connect(t testing.TB) *client.Conn {
	t.Helper()
	conn, err := m.MariaDB.Dial(context.Background())
	check(t, err)
	t.Cleanup(func() { core.Quit(conn) })
	return conn
}

// Exec runs each statement as root on one connection, in order, failing the
// test on the first error.
func (m *MariaDB) Exec(t testing.TB, sql ...string) {
	t.Helper()
	check(t, m.MariaDB.Exec(context.Background(), sql...))
}

// Query runs one statement as root and returns its rows as text. A NULL
// comes back as the string "NULL", the way the mariadb client prints it.
func (m *MariaDB) Query(t testing.TB, sql string) [][]string {
	t.Helper()
	rows, err := m.MariaDB.Query(context.Background(), sql)
	check(t, err)
	return rows
}

// Rows is Query: both copy every value out of the driver's buffers
// (go-mysql v1.16's GetString aliases a pooled packet buffer that a later
// query reuses).
func (m *MariaDB) Rows(t testing.TB, sql string) [][]string {
	t.Helper()
	return m.Query(t, sql)
}

// CreateReplicationUser creates user@'127.0.0.1' and user@'localhost' with
// the grants a binlog archiver needs (REPLICATION SLAVE, REPLICATION CLIENT).
func (m *MariaDB) CreateReplicationUser(t testing.TB, user, pass string) {
	t.Helper()
	check(t, m.MariaDB.CreateReplicationUser(context.Background(), user, pass))
}

// BinlogFiles returns the absolute paths of the binlog files on disk, in the
// order of the binlog index (oldest first).
func (m *MariaDB) BinlogFiles(t testing.TB) []string {
	t.Helper()
	files, err := m.MariaDB.BinlogFiles()
	check(t, err)
	return files
}

// SlaveStatus returns SHOW SLAVE STATUS as column name to value, or nil
// when the server is not a replica.
func (m *MariaDB) SlaveStatus(t testing.TB) map[string]string {
	t.Helper()
	st, err := m.MariaDB.SlaveStatus(context.Background())
	check(t, err)
	return st
}

// WaitReplicating waits until both replication threads run.
func (m *MariaDB) WaitReplicating(t testing.TB, timeout time.Duration) {
	t.Helper()
	check(t, m.MariaDB.WaitReplicating(context.Background(), timeout))
}

// WaitCaughtUp waits until the replica has applied everything the primary
// has written (its gtid_slave_pos reaches the primary's gtid_binlog_pos).
func (m *MariaDB) WaitCaughtUp(t testing.TB, primary *MariaDB, timeout time.Duration) {
	t.Helper()
	check(t, m.MariaDB.WaitCaughtUp(context.Background(), primary.MariaDB, timeout))
}

// StopAt runs START SLAVE UNTIL the primary's file and position on a
// replica made with FromStart (or stopped), and waits until the SQL thread
// has stopped there.
func (m *MariaDB) StopAt(t testing.TB, file string, pos uint64, timeout time.Duration) {
	t.Helper()
	check(t, m.MariaDB.StopAt(context.Background(), file, pos, timeout))
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
}
