package testenv

import (
	"context"
	"fmt"
	"time"
)

// ReplicaOptions configures LaunchReplica.
type ReplicaOptions struct {
	// ServerID must differ from the primary's and every other replica's.
	ServerID uint32
	// FromStart replicates by file and position from the primary's first
	// binlog file and does not start the replica: the caller runs START
	// SLAVE UNTIL. Otherwise the replica uses GTIDs (MASTER_USE_GTID=
	// slave_pos) and is started and waited for.
	FromStart bool
}

// The replication account LaunchReplica creates on the primary.
const (
	replicaUser = "repl"
	replicaPass = "repl-Pa55-testenv"
)

// LaunchReplica launches a fresh MariaDB on dataDir (with a binlog and
// log_slave_updates, as real replicas have) replicating from primary. Both
// datadirs start as copies of the same template, so the replica applies the
// primary's whole binlog from its first file.
func LaunchReplica(ctx context.Context, dataDir string, primary *MariaDB, opts ReplicaOptions) (*MariaDB, error) {
	n, err := primary.Query(ctx, "SELECT COUNT(*) FROM mysql.user WHERE user = "+SQLString(replicaUser))
	if err != nil {
		return nil, err
	}
	if n[0][0] == "0" {
		if err := primary.Exec(ctx,
			"CREATE USER "+SQLString(replicaUser)+"@'127.0.0.1' IDENTIFIED BY "+SQLString(replicaPass),
			"GRANT REPLICATION SLAVE ON *.* TO "+SQLString(replicaUser)+"@'127.0.0.1'"); err != nil {
			return nil, err
		}
	}
	r, err := LaunchMariaDB(ctx, dataDir, MariaDBOptions{
		ServerID:  opts.ServerID,
		ExtraArgs: []string{"--log-slave-updates=ON", "--relay-log=relay-bin", "--skip-slave-start", "--read-only=ON"},
	})
	if err != nil {
		return nil, err
	}
	if err := r.replicateFrom(ctx, primary, opts); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (m *MariaDB) replicateFrom(ctx context.Context, primary *MariaDB, opts ReplicaOptions) error {
	change := fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER=%s, MASTER_PASSWORD=%s, MASTER_CONNECT_RETRY=1",
		primary.Port, SQLString(replicaUser), SQLString(replicaPass))
	if opts.FromStart {
		files, err := primary.Query(ctx, "SHOW BINARY LOGS")
		if err != nil {
			return err
		}
		return m.Exec(ctx, change+", MASTER_USE_GTID=no, MASTER_LOG_FILE="+SQLString(files[0][0])+", MASTER_LOG_POS=4")
	}
	if err := m.Exec(ctx, "SET GLOBAL gtid_slave_pos = ''", change+", MASTER_USE_GTID=slave_pos", "START SLAVE"); err != nil {
		return err
	}
	return m.WaitReplicating(ctx, 60*time.Second)
}

// SlaveStatus returns SHOW SLAVE STATUS as column name to value, or nil
// when the server is not a replica.
func (m *MariaDB) SlaveStatus(ctx context.Context) (map[string]string, error) {
	conn, err := m.Dial(ctx)
	if err != nil {
		return nil, err
	}
	defer Quit(conn)
	res, err := conn.Execute("SHOW SLAVE STATUS")
	if err != nil {
		return nil, fmt.Errorf("SHOW SLAVE STATUS on %s: %w", m.Addr(), err)
	}
	defer res.Close()
	if res.RowNumber() == 0 {
		return nil, nil
	}
	row := map[string]string{}
	for i, f := range res.Fields {
		v, _ := textValue(res.Resultset, 0, i)
		row[string(f.Name)] = v
	}
	return row, nil
}

// WaitReplicating waits until both replication threads run.
func (m *MariaDB) WaitReplicating(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := m.SlaveStatus(ctx)
		if err != nil {
			return err
		}
		if st != nil && st["Slave_IO_Running"] == "Yes" && st["Slave_SQL_Running"] == "Yes" {
			return nil
		}
		// 1236: the primary cannot send what the replica asks for (purged,
		// or the replica is ahead of it); the IO thread has stopped and
		// waiting changes nothing.
		if time.Now().After(deadline) || st != nil && st["Slave_IO_Running"] == "No" && st["Last_IO_Errno"] == "1236" {
			return fmt.Errorf("replica %s not replicating after %s: IO=%s SQL=%s, IO error %q, SQL error %q",
				m.Addr(), time.Since(deadline.Add(-timeout)).Round(time.Millisecond), st["Slave_IO_Running"], st["Slave_SQL_Running"], st["Last_IO_Error"], st["Last_SQL_Error"])
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// WaitCaughtUp waits until the replica has applied everything the primary
// has written (its gtid_slave_pos reaches the primary's gtid_binlog_pos).
func (m *MariaDB) WaitCaughtUp(ctx context.Context, primary *MariaDB, timeout time.Duration) error {
	want, err := primary.Query(ctx, "SELECT @@GLOBAL.gtid_binlog_pos")
	if err != nil {
		return err
	}
	got, err := m.Query(ctx, fmt.Sprintf("SELECT MASTER_GTID_WAIT(%s, %d)", SQLString(want[0][0]), int(timeout.Seconds())))
	if err != nil {
		return err
	}
	if got[0][0] == "0" {
		return nil
	}
	at, err := m.Query(ctx, "SELECT @@GLOBAL.gtid_slave_pos")
	if err != nil {
		return err
	}
	st, err := m.SlaveStatus(ctx)
	if err != nil {
		return err
	}
	return fmt.Errorf("replica %s did not reach the primary's %s within %s (at %s; SQL running %s, error %q)",
		m.Addr(), want[0][0], timeout, at[0][0], st["Slave_SQL_Running"], st["Last_SQL_Error"])
}

// WaitApplied waits until the replica's SQL thread has applied every event
// its IO thread received (whether or not the primary is still there).
func (m *MariaDB) WaitApplied(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := m.SlaveStatus(ctx)
		if err != nil {
			return err
		}
		if st == nil {
			return fmt.Errorf("%s is not a replica", m.Addr())
		}
		if st["Master_Log_File"] == st["Relay_Master_Log_File"] && st["Read_Master_Log_Pos"] == st["Exec_Master_Log_Pos"] {
			return nil
		}
		if st["Slave_SQL_Running"] != "Yes" || time.Now().After(deadline) {
			return fmt.Errorf("replica %s has not applied what it received (read %s:%s, applied %s:%s; SQL running %s, error %q)",
				m.Addr(), st["Master_Log_File"], st["Read_Master_Log_Pos"], st["Relay_Master_Log_File"], st["Exec_Master_Log_Pos"], st["Slave_SQL_Running"], st["Last_SQL_Error"])
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// StopAt runs START SLAVE UNTIL the primary's file and position on a replica
// made with FromStart (or stopped), and waits until the SQL thread has
// stopped there.
func (m *MariaDB) StopAt(ctx context.Context, file string, pos uint64, timeout time.Duration) error {
	if err := m.Exec(ctx, fmt.Sprintf("START SLAVE UNTIL MASTER_LOG_FILE=%s, MASTER_LOG_POS=%d", SQLString(file), pos)); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		st, err := m.SlaveStatus(ctx)
		if err != nil {
			return err
		}
		if st["Slave_SQL_Running"] == "No" {
			if st["Relay_Master_Log_File"] != file || st["Exec_Master_Log_Pos"] != fmt.Sprint(pos) {
				return fmt.Errorf("replica %s stopped at %s:%s, not at %s:%d (SQL error %q)",
					m.Addr(), st["Relay_Master_Log_File"], st["Exec_Master_Log_Pos"], file, pos, st["Last_SQL_Error"])
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replica %s did not stop at %s:%d within %s (at %s:%s)",
				m.Addr(), file, pos, timeout, st["Relay_Master_Log_File"], st["Exec_Master_Log_Pos"])
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
