package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/integration/testenv"
)

// TestRestoreGuardsTarget: restore --target refuses the archive's own
// primary and the replica its snapshot was taken on (by server_id), and a
// server holding user data (to load a logical snapshot, or to replay
// --from); nothing is changed on any of them. With --force-target the restore is done, and
// with sql_log_bin=0 the target's binary log does not move.
func TestRestoreGuardsTarget(t *testing.T) {
	t.Parallel()
	e := newSnapEnv(t)
	p := e.start(e.streamArgs()...)
	p.waitLog(t, "streaming from the primary", time.Minute)
	e.primary.Exec(t, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY) ENGINE=InnoDB", "INSERT INTO app.t VALUES (1)")
	e.caughtUpSnapshot(t, "logical snapshot", logUser, "--method", "logical")
	e.primary.Exec(t, "INSERT INTO app.t VALUES (2)")
	e.waitArchived(time.Minute)
	p.stop(t)

	restore := func(target *testenv.MariaDB, extra ...string) (string, int) {
		return e.runEnv([]string{"BINARC_TARGET_PASSWORD="}, append([]string{"restore", "--store", e.store, "--cluster", e.cluster,
			"--to", "latest", "--target", "mysql://root@" + target.Addr()}, extra...)...)
	}
	binlogPos := func(m *testenv.MariaDB) string {
		r := m.Query(t, "SHOW MASTER STATUS")[0]
		return r[0] + ":" + r[1]
	}
	for name, srv := range map[string]*testenv.MariaDB{"primary": e.primary, "replica": e.replica} {
		before := binlogPos(srv)
		rows := srv.Query(t, "SELECT COUNT(*) FROM app.t")[0][0]
		out, code := restore(srv)
		if code == 0 || !strings.Contains(out, "server_id") || !strings.Contains(out, "--force-target") {
			t.Fatalf("restore --target %s exited %d; want a refusal naming its server_id:\n%s", name, code, out)
		}
		if binlogPos(srv) != before || srv.Query(t, "SELECT COUNT(*) FROM app.t")[0][0] != rows {
			t.Fatalf("the refused restore changed the %s", name)
		}
		t.Logf("%s refused: %s", name, lastLine(out))
	}

	target := testenv.StartMariaDB(t, testenv.MariaDBOptions{ServerID: 99})
	target.Exec(t, "CREATE DATABASE keepme", "CREATE TABLE keepme.k (x INT) ENGINE=InnoDB", "INSERT INTO keepme.k VALUES (7)")
	before := binlogPos(target)
	out, code := restore(target)
	if code == 0 || !strings.Contains(out, "holds user data") || !strings.Contains(out, "keepme") {
		t.Fatalf("restore into a server holding data exited %d; want a refusal naming its schemas:\n%s", code, out)
	}
	if n := target.Query(t, "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'app'")[0][0]; n != "0" || binlogPos(target) != before {
		t.Fatal("the refused restore changed the target")
	}
	// A replay --from into it: refused too, saying how to go ahead.
	out, code = restore(target, "--from", e.primary.Query(t, "SHOW BINARY LOGS")[0][0]+":4")
	if code == 0 || !strings.Contains(out, "holds user data") || !strings.Contains(out, "--force-target") {
		t.Fatalf("restore --from into a server holding data exited %d; want a refusal:\n%s", code, out)
	}
	if n := target.Query(t, "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'app'")[0][0]; n != "0" || binlogPos(target) != before {
		t.Fatal("the refused replay changed the target")
	}
	out, code = restore(target, "--force-target")
	if code != 0 {
		t.Fatalf("restore --force-target exited %d:\n%s", code, out)
	}
	if got := target.Query(t, "SELECT GROUP_CONCAT(id ORDER BY id) FROM app.t")[0][0]; got != "1,2" {
		t.Fatalf("forced restore: app.t holds %q; want 1,2", got)
	}
	if after := binlogPos(target); after != before {
		t.Fatalf("the forced restore wrote to the target's binary log: %s -> %s", before, after)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
