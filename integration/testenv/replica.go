package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ReplicaOptions configures StartReplica.
type ReplicaOptions struct {
	// ServerID must differ from the primary's and every other replica's.
	ServerID uint32
	// FromStart replicates by file and position from the primary's first
	// binlog file and does not start the replica: the caller runs START
	// SLAVE UNTIL. Otherwise the replica uses GTIDs (MASTER_USE_GTID=
	// slave_pos) and is started and waited for.
	FromStart bool
}

// The replication account StartReplica creates on the primary.
const (
	replicaUser = "repl"
	replicaPass = "repl-Pa55-testenv"
)

// StartReplica starts a fresh MariaDB (with a binlog and
// log_slave_updates, as real replicas have) replicating from primary. Both
// datadirs start as copies of the same template, so the replica applies
// the primary's whole binlog from its first file.
func StartReplica(t testing.TB, primary *MariaDB, opts ReplicaOptions) *MariaDB {
	t.Helper()
	if n := primary.Rows(t, "SELECT COUNT(*) FROM mysql.user WHERE user = '"+replicaUser+"'"); n[0][0] == "0" {
		primary.Exec(t,
			"CREATE USER "+sqlString(replicaUser)+"@'127.0.0.1' IDENTIFIED BY "+sqlString(replicaPass),
			"GRANT REPLICATION SLAVE ON *.* TO "+sqlString(replicaUser)+"@'127.0.0.1'")
	}
	r := StartMariaDB(t, MariaDBOptions{
		ServerID:  opts.ServerID,
		ExtraArgs: []string{"--log-slave-updates=ON", "--relay-log=relay-bin", "--skip-slave-start", "--read-only=ON"},
	})
	change := fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER=%s, MASTER_PASSWORD=%s, MASTER_CONNECT_RETRY=1",
		primary.Port, sqlString(replicaUser), sqlString(replicaPass))
	if opts.FromStart {
		files := primary.Rows(t, "SHOW BINARY LOGS")
		r.Exec(t, change+", MASTER_USE_GTID=no, MASTER_LOG_FILE="+sqlString(files[0][0])+", MASTER_LOG_POS=4")
		return r
	}
	r.Exec(t, "SET GLOBAL gtid_slave_pos = ''", change+", MASTER_USE_GTID=slave_pos", "START SLAVE")
	r.WaitReplicating(t, 60*time.Second)
	return r
}

// SlaveStatus returns SHOW SLAVE STATUS as column name to value, or nil
// when the server is not a replica.
func (m *MariaDB) SlaveStatus(t testing.TB) map[string]string {
	t.Helper()
	conn, err := m.dial()
	if err != nil {
		t.Fatalf("testenv: connect to %s: %v", m.Addr(), err)
	}
	defer quit(conn)
	res, err := conn.Execute("SHOW SLAVE STATUS")
	if err != nil {
		t.Fatalf("testenv: SHOW SLAVE STATUS on %s: %v", m.Addr(), err)
	}
	defer res.Close()
	if res.RowNumber() == 0 {
		return nil
	}
	row := map[string]string{}
	for i, f := range res.Fields {
		v, _ := textValue(res.Resultset, 0, i)
		row[string(f.Name)] = strings.Clone(v)
	}
	return row
}

// Rows is Query: both copy every value out of the driver's buffers
// (go-mysql v1.16's GetString aliases a pooled packet buffer that a later
// query reuses).
func (m *MariaDB) Rows(t testing.TB, sql string) [][]string {
	t.Helper()
	return m.Query(t, sql)
}

// WaitReplicating waits until both replication threads run.
func (m *MariaDB) WaitReplicating(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := m.SlaveStatus(t)
		if st != nil && st["Slave_IO_Running"] == "Yes" && st["Slave_SQL_Running"] == "Yes" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: replica %s not replicating after %s: IO=%s SQL=%s, IO error %q, SQL error %q",
				m.Addr(), timeout, st["Slave_IO_Running"], st["Slave_SQL_Running"], st["Last_IO_Error"], st["Last_SQL_Error"])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitCaughtUp waits until the replica has applied everything the primary
// has written (its gtid_slave_pos reaches the primary's gtid_binlog_pos).
func (m *MariaDB) WaitCaughtUp(t testing.TB, primary *MariaDB, timeout time.Duration) {
	t.Helper()
	want := primary.Rows(t, "SELECT @@GLOBAL.gtid_binlog_pos")[0][0]
	got := m.Rows(t, fmt.Sprintf("SELECT MASTER_GTID_WAIT(%s, %d)", sqlString(want), int(timeout.Seconds())))[0][0]
	if got != "0" {
		st := m.SlaveStatus(t)
		t.Fatalf("testenv: replica %s did not reach the primary's %s within %s (at %s; SQL running %s, error %q)",
			m.Addr(), want, timeout, m.Rows(t, "SELECT @@GLOBAL.gtid_slave_pos")[0][0], st["Slave_SQL_Running"], st["Last_SQL_Error"])
	}
}

// StopAt runs START SLAVE UNTIL the primary's file and position on a
// replica made with FromStart (or stopped), and waits until the SQL thread
// has stopped there.
func (m *MariaDB) StopAt(t testing.TB, file string, pos uint64, timeout time.Duration) {
	t.Helper()
	m.Exec(t, fmt.Sprintf("START SLAVE UNTIL MASTER_LOG_FILE=%s, MASTER_LOG_POS=%d", sqlString(file), pos))
	deadline := time.Now().Add(timeout)
	for {
		st := m.SlaveStatus(t)
		if st["Slave_SQL_Running"] == "No" {
			if st["Relay_Master_Log_File"] != file || st["Exec_Master_Log_Pos"] != fmt.Sprint(pos) {
				t.Fatalf("testenv: replica %s stopped at %s:%s, not at %s:%d (SQL error %q)",
					m.Addr(), st["Relay_Master_Log_File"], st["Exec_Master_Log_Pos"], file, pos, st["Last_SQL_Error"])
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: replica %s did not stop at %s:%d within %s (at %s:%s)",
				m.Addr(), file, pos, timeout, st["Relay_Master_Log_File"], st["Exec_Master_Log_Pos"])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StartMariaDBOn starts mariadbd on an existing datadir, such as one
// restored from a backup, with the same flags as StartMariaDB, no binlog
// and replication not started. The server is killed in t.Cleanup.
func StartMariaDBOn(t testing.TB, dataDir string, serverID uint32) *MariaDB {
	t.Helper()
	mariadbd, err := BinaryPath("mariadbd", "mysqld")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	socketDir, err := os.MkdirTemp(shortTempDir(), "binarc-")
	if err != nil {
		t.Fatalf("testenv: socket directory: %v", err)
	}
	m := &MariaDB{
		Socket:    filepath.Join(socketDir, "mariadbd.sock"),
		DataDir:   dataDir,
		BinlogDir: dataDir,
		BaseName:  "mysql-bin",
		ServerID:  serverID,
		RootUser:  "root",
		opts:      MariaDBOptions{ServerID: serverID, NoLogBin: true, ExtraArgs: []string{"--skip-slave-start"}},
		mariadbd:  mariadbd,
		socketDir: socketDir,
	}
	t.Cleanup(func() {
		m.mu.Lock()
		if m.proc != nil {
			m.proc.kill()
			m.proc = nil
		}
		m.mu.Unlock()
		os.RemoveAll(socketDir)
	})
	for attempt := 1; ; attempt++ {
		m.Port = FreePort(t)
		err := m.start()
		if err == nil {
			return m
		}
		if attempt < 3 && strings.Contains(tailFile(m.errorLog(), 20), "Address already in use") {
			continue
		}
		t.Fatalf("testenv: %v", err)
	}
}
