package integration

import (
	"strings"
	"testing"
	"time"
)

// TestSnapshotKeepsStoppedSQLThread: an SQL thread the operator stopped
// before a snapshot is still stopped after it, and the snapshot says so.
// One that a binarc snapshot stopped and then died holding (SIGKILL) is
// started by the next snapshot, which finds the note in the lease it
// takes over.
func TestSnapshotKeepsStoppedSQLThread(t *testing.T) {
	t.Parallel()
	e := newSnapEnv(t)
	e.primary.Exec(t, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY) ENGINE=InnoDB", "INSERT INTO app.t VALUES (1)")
	e.replica.WaitCaughtUp(t, e.primary, time.Minute)

	e.replica.Exec(t, "STOP SLAVE SQL_THREAD")
	out, code := e.run(e.snapshotArgs(physUser)...)
	if code != 0 || !strings.Contains(out, "leaves it stopped") {
		t.Fatalf("snapshot of a replica whose SQL thread was stopped by hand exited %d; want it to say it leaves it stopped:\n%s", code, out)
	}
	if st := e.replica.SlaveStatus(t); st["Slave_SQL_Running"] != "No" {
		t.Fatalf("SQL thread %s after the snapshot; the operator had stopped it", st["Slave_SQL_Running"])
	}

	e.replica.Exec(t, "START SLAVE SQL_THREAD")
	e.waitSQLRunning(10 * time.Second)
	p := e.startEnv([]string{"BINARC_TEST_SNAPSHOT_HOLD=2m"}, e.snapshotArgs(physUser)...)
	e.waitLog(p, "BINARC_TEST_SNAPSHOT_HOLD")
	p.kill()
	if st := e.replica.SlaveStatus(t); st["Slave_SQL_Running"] != "No" {
		t.Fatalf("SQL thread %s while the killed snapshot held it; want No", st["Slave_SQL_Running"])
	}
	out, code = e.run(e.snapshotArgs(physUser)...)
	if code != 0 || !strings.Contains(out, "stopped by an earlier binarc snapshot that died") {
		t.Fatalf("the next snapshot exited %d; want it to take over the dead one's stopped thread:\n%s", code, out)
	}
	e.waitSQLRunning(10 * time.Second)
}

// TestSnapshotWaitsForReplicatedTempTables: with statement-based
// replication, a primary session's CREATE TEMPORARY TABLE lives in the
// replica's SQL thread until the session ends. A snapshot taken then has
// no such table, and a restore from it would fail at its next use: the
// snapshot lets the thread run in short spells and, while the table is
// still open after --temp-tables-wait, refuses, naming the cause, with
// the thread running again. Once the session ends, it succeeds.
func TestSnapshotWaitsForReplicatedTempTables(t *testing.T) {
	t.Parallel()
	e := newSnapEnv(t)
	e.primary.Exec(t, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY) ENGINE=InnoDB")
	session := e.primary.Connect(t)
	for _, q := range []string{"SET SESSION binlog_format=STATEMENT", "CREATE TEMPORARY TABLE app.tmp (id INT)", "INSERT INTO app.tmp VALUES (1)"} {
		if _, err := session.Execute(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	e.replica.WaitCaughtUp(t, e.primary, time.Minute)
	if n := e.replica.Query(t, "SHOW GLOBAL STATUS LIKE 'Slave_open_temp_tables'")[0][1]; n != "1" {
		t.Fatalf("the replica's SQL thread holds %s temporary tables; the test needs 1", n)
	}

	out, code := e.run(append(e.snapshotArgs(physUser), "--temp-tables-wait", "2s")...)
	if code == 0 || !strings.Contains(out, "Slave_open_temp_tables") || !strings.Contains(out, "--temp-tables-wait") {
		t.Fatalf("snapshot with a replicated temporary table open exited %d; want a refusal naming Slave_open_temp_tables and --temp-tables-wait:\n%s", code, out)
	}
	if !strings.Contains(out, "letting it run a moment") {
		t.Fatalf("the snapshot refused without letting the SQL thread run:\n%s", out)
	}
	e.waitSQLRunning(10 * time.Second)

	// The session's statement using the table, then its end: the
	// primary logs DROP TEMPORARY TABLE, the replica closes it.
	if _, err := session.Execute("INSERT INTO app.t SELECT id FROM app.tmp"); err != nil {
		t.Fatal(err)
	}
	session.Close()
	e.replica.WaitCaughtUp(t, e.primary, time.Minute)
	out, code = e.run(append(e.snapshotArgs(physUser), "--temp-tables-wait", "30s")...)
	if code != 0 {
		t.Fatalf("snapshot once the session ended exited %d:\n%s", code, out)
	}
	e.waitSQLRunning(10 * time.Second)
}
