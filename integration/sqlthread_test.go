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
