package integration

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/integration/testenv"
	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
)

const servePass = "serve-Pa55-word"

// startServe runs binarc serve on a free loopback port and returns it and
// its port.
func (e *env) startServe(t *testing.T, extra ...string) (*proc, int) {
	t.Helper()
	return e.startServeOn(t, testenv.FreePort(t), extra...)
}

// startServeOn runs binarc serve on a given loopback port.
func (e *env) startServeOn(t *testing.T, port int, extra ...string) (*proc, int) {
	t.Helper()
	args := append([]string{"serve", "--store", e.store, "--cluster", e.cluster, "--listen", fmt.Sprintf("127.0.0.1:%d", port)}, extra...)
	p := e.startEnv([]string{"BINARC_SERVE_PASSWORD=" + servePass, "BINARC_LOG_LEVEL=debug"}, args...)
	p.waitLog(t, "serving the archive to replicas", 30*time.Second)
	return p, port
}

// newLoadedEnv is an env whose primary, with 64 KiB binlogs, is archived
// by a running binarc stream (returned) and has had writeLoad's first n
// iterations written, rotating every 25 and by size.
func newLoadedEnv(t *testing.T, n int) (*env, *proc) {
	t.Helper()
	e := newEnv(t, testenv.MariaDBOptions{MaxBinlogSize: 64 << 10})
	p := e.start(e.streamArgs()...)
	if err := writeLoad(context.Background(), e.primary, loadOptions{From: 0, To: n, FlushAt: 25}); err != nil {
		t.Fatal(err)
	}
	return e, p
}

// newServeReplica starts a fresh server (the same initial data as the
// primary) that is not yet replicating.
func newServeReplica(t *testing.T, serverID uint32) *testenv.MariaDB {
	t.Helper()
	return testenv.StartMariaDB(t, testenv.MariaDBOptions{ServerID: serverID,
		ExtraArgs: []string{"--log-slave-updates=ON", "--relay-log=relay-bin", "--skip-slave-start"}})
}

// replicateFrom points r at binarc serve on port and starts it; how says
// where from (MASTER_USE_GTID=…, MASTER_LOG_FILE=…).
func replicateFrom(t *testing.T, r *testenv.MariaDB, port int, password, how string) {
	t.Helper()
	r.Exec(t, fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='binarc', MASTER_PASSWORD='%s', MASTER_CONNECT_RETRY=1, %s",
		port, password, how), "START SLAVE")
}

// waitGTID waits until the replica has applied gtid (MASTER_GTID_WAIT),
// failing with its replication errors otherwise.
func waitGTID(t *testing.T, r *testenv.MariaDB, gtid string, timeout time.Duration) {
	t.Helper()
	got := r.Query(t, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', %d)", gtid, int(timeout.Seconds())))[0][0]
	if got != "0" {
		st := r.SlaveStatus(t)
		t.Fatalf("replica did not reach %s within %s: at %s; IO %s %q; SQL %s %q", gtid, timeout,
			r.Query(t, "SELECT @@gtid_slave_pos")[0][0], st["Slave_IO_Running"], st["Last_IO_Error"], st["Slave_SQL_Running"], st["Last_SQL_Error"])
	}
}

// waitIOError waits until the replica's IO thread reports an error that
// contains want.
func waitIOError(t *testing.T, r *testenv.MariaDB, want string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := r.SlaveStatus(t)
		if strings.Contains(st["Last_IO_Error"], want) {
			return st["Last_IO_Error"]
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica's Last_IO_Error is %q, want one with %q (IO running: %s)", st["Last_IO_Error"], want, st["Slave_IO_Running"])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkStill asserts that the replica stays at gtid (the stream stopped)
// and has no replication error.
func checkStill(t *testing.T, r *testenv.MariaDB, gtid string) {
	t.Helper()
	time.Sleep(1500 * time.Millisecond)
	if got := r.Query(t, "SELECT @@gtid_slave_pos")[0][0]; !strings.Contains(","+got, ","+gtid) && got != gtid {
		t.Errorf("replica went on past %s: at %s", gtid, got)
	}
	checkReplicating(t, r, "replica not healthy at the stop")
}

// switchToPrimary points r, a replica of binarc serve, at e's primary by
// GTID, writes load there and waits until r has applied it.
func switchToPrimary(t *testing.T, e *env, r *testenv.MariaDB, load loadOptions) {
	t.Helper()
	r.Exec(t, "STOP SLAVE",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos", e.primary.Port, replUser, replPass),
		"START SLAVE")
	if err := writeLoad(context.Background(), e.primary, load); err != nil {
		t.Fatal(err)
	}
	r.WaitCaughtUp(t, e.primary, time.Minute)
}

// checkReplicating asserts that both of r's replication threads run and
// neither has an error; when heads the failure.
func checkReplicating(t *testing.T, r *testenv.MariaDB, when string) {
	t.Helper()
	st := r.SlaveStatus(t)
	if st["Last_IO_Error"] != "" || st["Last_SQL_Error"] != "" || st["Slave_SQL_Running"] != "Yes" || st["Slave_IO_Running"] != "Yes" {
		t.Errorf("%s: IO %s %q, SQL %s %q", when, st["Slave_IO_Running"], st["Last_IO_Error"], st["Slave_SQL_Running"], st["Last_SQL_Error"])
	}
}

// serveLoad writes a load with rotations and takes checkpoints, and waits
// until all of it is archived.
func serveLoad(t *testing.T, e *env) []checkpoint {
	t.Helper()
	ctx := context.Background()
	var cps []checkpoint
	for _, r := range [][2]int{{0, 50}, {50, 110}, {110, 150}} {
		if err := writeLoad(ctx, e.primary, loadOptions{From: r[0], To: r[1], FlushAt: 25}); err != nil {
			t.Fatal(err)
		}
		cps = append(cps, takeCheckpoint(t, e.primary, fmt.Sprintf("after %d", r[1])))
	}
	e.waitArchived(time.Minute)
	return cps
}

// TestServeToCheckpoints: real MariaDB replicas replicate from binarc
// serve by GTID (MASTER_USE_GTID=slave_pos) and by file and position, to
// checkpoints given by time, GTID and position across rotations, stop
// there, resume from the middle of a file with a new serve, and end with
// every table's CHECKSUM TABLE equal to the primary's.
func TestServeToCheckpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{MaxBinlogSize: 64 << 10})
	p := e.start(e.streamArgs()...)
	cps := serveLoad(t, e)
	final := takeCheckpoint(t, e.primary, "final")
	first := e.primary.Query(t, "SHOW BINARY LOGS")[0][0]

	for i, cp := range cps[:2] {
		for j, c := range []struct{ to, how string }{
			{cp.gtid, "MASTER_USE_GTID=slave_pos"},
			{cp.time.UTC().Format(time.RFC3339), "MASTER_USE_GTID=slave_pos"},
			{cp.position, "MASTER_USE_GTID=no, MASTER_LOG_FILE='" + first + "', MASTER_LOG_POS=4"},
		} {
			t.Run(fmt.Sprintf("%s/%s", cp.name, c.to), func(t *testing.T) {
				s, port := e.startServe(t, "--to", c.to)
				r := newServeReplica(t, uint32(10+3*i+j))
				r.Exec(t, "SET GLOBAL gtid_slave_pos = ''")
				replicateFrom(t, r, port, servePass, c.how)
				waitGTID(t, r, cp.gtid, 60*time.Second)
				checkStill(t, r, cp.gtid)
				if got := tableChecksums(t, r); !reflect.DeepEqual(got, cp.sums) {
					t.Errorf("--to %s: checksums differ\n got %v\nwant %v", c.to, got, cp.sums)
				}
				// A new serve without a stop: the replica reconnects where
				// it stopped, inside a file, and catches up.
				s.kill()
				e.startServeOn(t, port)
				waitGTID(t, r, final.gtid, 60*time.Second)
				checkStill(t, r, final.gtid)
				if got := tableChecksums(t, r); !reflect.DeepEqual(got, final.sums) {
					t.Errorf("resumed after --to %s: checksums differ\n got %v\nwant %v", c.to, got, final.sums)
				}
			})
		}
	}
	p.stop(t)
}

// TestServeSkipGTID: a replica of binarc serve --skip-gtid gets every
// transaction but the DROP TABLE.
func TestServeSkipGTID(t *testing.T) {
	t.Parallel()
	e, p := newLoadedEnv(t, 60)
	before := takeCheckpoint(t, e.primary, "before the DROP")
	e.primary.Exec(t, "DROP TABLE app.accounts")
	drop := lastGTID(e.primary.Query(t, "SELECT @@gtid_binlog_pos")[0][0])
	e.primary.Exec(t, "FLUSH BINARY LOGS", "INSERT INTO app.events (kind, payload) VALUES ('after', 'x'), ('after', 'y')",
		"INSERT INTO app.events (kind, payload) VALUES ('after', 'z')")
	final := lastGTID(e.primary.Query(t, "SELECT @@gtid_binlog_pos")[0][0])
	events := tableChecksums(t, e.primary)["app.events"]
	e.waitArchived(time.Minute)

	_, port := e.startServe(t, "--skip-gtid", drop)
	r := newServeReplica(t, 20)
	r.Exec(t, "SET GLOBAL gtid_slave_pos = ''")
	replicateFrom(t, r, port, servePass, "MASTER_USE_GTID=slave_pos")
	waitGTID(t, r, final, 60*time.Second)
	checkStill(t, r, final)
	got := tableChecksums(t, r)
	if got["app.accounts"] != before.sums["app.accounts"] || got["app.events"] != events {
		t.Errorf("--skip-gtid %s: accounts %q (want %q, as before the DROP), events %q (want %q)", drop, got["app.accounts"], before.sums["app.accounts"], got["app.events"], events)
	}
	p.stop(t)
}

// TestServeFollowThenSwitch rebuilds a replica the documented way: it
// replicates from binarc serve --follow while the primary writes on (and
// rotates), catches up, is switched to the primary by GTID, and
// replicates on without error or gap.
func TestServeFollowThenSwitch(t *testing.T) {
	t.Parallel()
	e, p := newLoadedEnv(t, 40)
	ctx := context.Background()
	e.waitArchived(time.Minute)
	_, port := e.startServe(t, "--follow")
	r := newServeReplica(t, 30)
	r.Exec(t, "SET GLOBAL gtid_slave_pos = ''")
	replicateFrom(t, r, port, servePass, "MASTER_USE_GTID=slave_pos")
	// The archive grows while the replica is attached.
	if err := writeLoad(ctx, e.primary, loadOptions{From: 40, To: 120, FlushAt: 25}); err != nil {
		t.Fatal(err)
	}
	e.waitArchived(time.Minute)
	live := takeCheckpoint(t, e.primary, "live")
	waitGTID(t, r, live.gtid, 60*time.Second)
	if got := tableChecksums(t, r); !reflect.DeepEqual(got, live.sums) {
		t.Fatalf("following replica: checksums differ\n got %v\nwant %v", got, live.sums)
	}
	// Switch to the real primary by GTID.
	switchToPrimary(t, e, r, loadOptions{From: 120, To: 160, FlushAt: 25})
	want := tableChecksums(t, e.primary)
	if got := tableChecksums(t, r); !reflect.DeepEqual(got, want) {
		t.Errorf("after the switch: checksums differ\n got %v\nwant %v", got, want)
	}
	checkReplicating(t, r, "after the switch")
	if a, b := r.Query(t, "SELECT @@gtid_slave_pos")[0][0], e.primary.Query(t, "SELECT @@gtid_binlog_pos")[0][0]; a != b {
		t.Errorf("replica at %s, primary at %s", a, b)
	}
	p.stop(t)
}

// TestServeBadInput: a wrong password, a GTID or position the archive does
// not hold, a checksum setting binarc cannot serve: each replica gets a
// clear error (in Last_IO_Error), and serve goes on serving a good one.
func TestServeBadInput(t *testing.T) {
	t.Parallel()
	e, p := newLoadedEnv(t, 40)
	final := takeCheckpoint(t, e.primary, "final")
	e.waitArchived(time.Minute)
	first := e.primary.Query(t, "SHOW BINARY LOGS")[0][0]
	s, port := e.startServe(t)

	r := newServeReplica(t, 40)
	for _, c := range []struct {
		name, password, how, want string
		gtid                      string
	}{
		{"wrong password", "not-the-password", "MASTER_USE_GTID=slave_pos", "Access denied", ""},
		{"GTID beyond the archive", servePass, "MASTER_USE_GTID=slave_pos", "not in the archive", "0-1-999999"},
		{"GTID of another server", servePass, "MASTER_USE_GTID=slave_pos", "not in the archive", "0-7-5"},
		{"file not archived", servePass, "MASTER_USE_GTID=no, MASTER_LOG_FILE='mysql-bin.000099', MASTER_LOG_POS=4", "mysql-bin.000099 is not in the archive", ""},
		{"position past the end", servePass, "MASTER_USE_GTID=no, MASTER_LOG_FILE='" + first + "', MASTER_LOG_POS=99999999", "past the end", ""},
		{"position inside an event", servePass, "MASTER_USE_GTID=no, MASTER_LOG_FILE='" + first + "', MASTER_LOG_POS=300", "not an event boundary", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r.Exec(t, "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL gtid_slave_pos = '"+c.gtid+"'")
			replicateFrom(t, r, port, c.password, c.how)
			msg := waitIOError(t, r, c.want)
			t.Logf("Last_IO_Error: %s", msg)
		})
	}
	t.Run("checksum not declared", func(t *testing.T) {
		msg := rawDump(t, port, "")
		if !strings.Contains(msg, "checksums") || !strings.Contains(msg, "@master_binlog_checksum") {
			t.Errorf("dump without a checksum declaration: %q", msg)
		}
	})
	t.Run("checksum unknown", func(t *testing.T) {
		if msg := rawDump(t, port, "SET @master_binlog_checksum='SHA1'"); !strings.Contains(msg, `"SHA1"`) {
			t.Errorf("dump with checksum SHA1: %q", msg)
		}
	})
	// serve is still up and serves a good replica.
	r.Exec(t, "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL gtid_slave_pos = ''")
	replicateFrom(t, r, port, servePass, "MASTER_USE_GTID=slave_pos")
	waitGTID(t, r, final.gtid, 60*time.Second)
	if got := tableChecksums(t, r); !reflect.DeepEqual(got, final.sums) {
		t.Errorf("good replica after the bad ones: checksums differ\n got %v\nwant %v", got, final.sums)
	}
	if strings.Contains(s.out.String(), servePass) {
		t.Error("serve logged the password")
	}
	// Bad command lines are refused at once.
	out, code := e.run("serve", "--store", e.store, "--cluster", e.cluster)
	expectFailure(t, out, code, "no password for replicas", "BINARC_SERVE_PASSWORD")
	out, code = e.runEnv([]string{"BINARC_SERVE_PASSWORD=" + servePass}, "serve", "--store", e.store, "--cluster", e.cluster, "--follow", "--to", final.gtid)
	expectFailure(t, out, code, "--follow", "not both")
	out, code = e.runEnv([]string{"BINARC_SERVE_PASSWORD=" + servePass}, "serve", "--store", e.store, "--cluster", "nothing-here")
	expectFailure(t, out, code, `cluster "nothing-here" has no archived binlog`)
	p.stop(t)
}

// rawDump connects as a client, runs setup, sends COM_BINLOG_DUMP and
// returns the error message binarc answers with.
func rawDump(t *testing.T, port int, setup string) string {
	t.Helper()
	c, err := client.Connect(fmt.Sprintf("127.0.0.1:%d", port), "binarc", servePass, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if setup != "" {
		if _, err := c.Execute(setup); err != nil {
			t.Fatal(err)
		}
	}
	pkt := []byte{0, 0, 0, 0, mysql.COM_BINLOG_DUMP, 4, 0, 0, 0, 0, 0, 77, 0, 0, 0}
	c.ResetSequence()
	if err := c.WritePacket(pkt); err != nil {
		t.Fatal(err)
	}
	resp, err := c.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	if len(resp) < 9 || resp[0] != mysql.ERR_HEADER {
		t.Fatalf("COM_BINLOG_DUMP answered %q, not an error", resp)
	}
	return string(resp[9:])
}
