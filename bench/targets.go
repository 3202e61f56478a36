package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/binarc/binarc/internal/testenv"
)

// startEmptyMariaDB initialises a datadir dir/name and starts a mariadbd on
// it with no binary log and the primary's InnoDB settings: a fresh server
// to replay into, which can later be made a replica (relay log named, the
// replica threads not started by themselves). cl kills it at the end of the
// run.
func startEmptyMariaDB(ctx context.Context, dir, name string, serverID uint32, cl *cleanups) (*testenv.MariaDB, error) {
	m, err := testenv.LaunchMariaDB(ctx, filepath.Join(dir, name), mariaDBOptions(testenv.MariaDBOptions{
		ServerID:  serverID,
		NoLogBin:  true,
		ExtraArgs: []string{"--relay-log=relay-bin", "--skip-slave-start"},
	}))
	if err != nil {
		return nil, err
	}
	cl.add(func() { m.Close() })
	return m, nil
}

// tableChecksums is CHECKSUM TABLE of every base table outside the system
// schemas, by schema.table. The mysql schema is left out: the replayed
// CREATE USER statements stamp password_last_changed with the replay's
// time.
func tableChecksums(ctx context.Context, m *testenv.MariaDB) (map[string]string, error) {
	tables, err := m.Query(ctx, "SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.TABLES"+
		" WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')")
	if err != nil {
		return nil, err
	}
	sums := map[string]string{}
	for _, t := range tables {
		rows, err := m.Query(ctx, "CHECKSUM TABLE "+t[0])
		if err != nil {
			return nil, err
		}
		if len(rows) != 1 {
			return nil, fmt.Errorf("CHECKSUM TABLE %s on %s: %d rows", t[0], m.Addr(), len(rows))
		}
		sums[t[0]] = rows[0][1]
	}
	return sums, nil
}

// checksumDiff names the tables whose checksums differ between want and
// got, or that only one of them has; empty when they are equal.
func checksumDiff(want, got map[string]string) []string {
	var diff []string
	for t, w := range want {
		if g, ok := got[t]; !ok {
			diff = append(diff, t+" missing")
		} else if g != w {
			diff = append(diff, t+" differs")
		}
	}
	for t := range got {
		if _, ok := want[t]; !ok {
			diff = append(diff, t+" extra")
		}
	}
	return diff
}

// replicate makes m a replica of primary from file:pos, by file and
// position (m holds no GTID state: it was filled by a client replay), and
// waits until both replica threads run.
func replicate(ctx context.Context, m, primary *testenv.MariaDB, user, pass, file string, pos uint64) error {
	change := fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s',"+
		" MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=no, MASTER_LOG_FILE='%s', MASTER_LOG_POS=%d", primary.Port, user, pass, file, pos)
	if err := m.Exec(ctx, change, "START SLAVE"); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Slave_running is ON once both threads run and the IO thread
		// is connected.
		rows, err := m.Query(ctx, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'SLAVE_RUNNING'")
		if err != nil {
			return err
		}
		if len(rows) == 1 && rows[0][0] == "ON" {
			return nil
		}
		if time.Now().After(deadline) {
			st, _ := m.Query(ctx, "SHOW SLAVE STATUS")
			return fmt.Errorf("replica %s not replicating after 30 s: SHOW SLAVE STATUS %q", m.Addr(), st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitApplied waits until replica m has applied the primary's binlog up to
// its current end.
func waitApplied(ctx context.Context, m, primary *testenv.MariaDB, timeout time.Duration) error {
	st, err := primary.Query(ctx, "SHOW MASTER STATUS")
	if err != nil {
		return err
	}
	if len(st) != 1 {
		return fmt.Errorf("SHOW MASTER STATUS on %s: %d rows", primary.Addr(), len(st))
	}
	r, err := m.Query(ctx, fmt.Sprintf("SELECT MASTER_POS_WAIT('%s', %s, %d)", st[0][0], st[0][1], int(timeout.Seconds())))
	if err != nil {
		return err
	}
	if r[0][0] == "NULL" || r[0][0] == "-1" {
		return fmt.Errorf("replica %s did not reach the primary's %s:%s within %v (MASTER_POS_WAIT returned %q)", m.Addr(), st[0][0], st[0][1], timeout, r[0][0])
	}
	return nil
}

// settledBinaryLogs is SHOW BINARY LOGS once two listings 100 ms apart
// agree. After a rotation MariaDB writes a Binlog_checkpoint event to the
// new file in the background, once the old file's transactions are
// committed in InnoDB: a listing right after a backlog that ended at a
// rotation can miss those bytes.
func settledBinaryLogs(ctx context.Context, m *testenv.MariaDB) ([]binlogFile, error) {
	conn, err := m.Dial(ctx)
	if err != nil {
		return nil, err
	}
	defer testenv.Quit(conn)
	prev, err := showBinaryLogs(conn)
	if err != nil {
		return nil, err
	}
	for range 50 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		files, err := showBinaryLogs(conn)
		if err != nil {
			return nil, err
		}
		if slices.Equal(files, prev) {
			return files, nil
		}
		prev = files
	}
	return nil, fmt.Errorf("the binlog of %s still grows 5 s after the writers stopped", m.Addr())
}
