package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/drill"
)

// drillUser compares on the replica: the privileges binarc drill --help
// lists.
const drillUser = "driller"

// newDrillEnv is a primary with a replica, the archiver running, a
// load, a physical snapshot of the replica, and a load after it: an
// archive a drill restores from a snapshot and binlog.
func newDrillEnv(t *testing.T, bulkMiB int, afterSnapshot func(*snapEnv)) *snapEnv {
	t.Helper()
	return newDrillEnvOf(t, physUser, bulkMiB, afterSnapshot)
}

// newDrillEnvOf is newDrillEnv with a snapshot by snapUser: physUser
// (physical) or logUser (logical).
func newDrillEnvOf(t *testing.T, snapUser string, bulkMiB int, afterSnapshot func(*snapEnv)) *snapEnv {
	t.Helper()
	e := newSnapEnv(t)
	e.primary.Exec(t,
		fmt.Sprintf("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'", drillUser, replPass),
		fmt.Sprintf("GRANT SELECT, SLAVE MONITOR, REPLICATION SLAVE ADMIN ON *.* TO '%s'@'127.0.0.1'", drillUser))
	p := e.start(e.streamArgs("--no-compact")...)
	e.seed(bulkMiB)
	// A table without a primary key: compared whole.
	e.primary.Exec(t, "CREATE TABLE app.nopk (a INT, b VARCHAR(20)) ENGINE=InnoDB",
		"INSERT INTO app.nopk VALUES (1, 'one'), (2, NULL), (NULL, 'three')",
		// A two-column key with text in it: chunk ranges over (a, b).
		"CREATE TABLE app.composite (a INT, b VARCHAR(16), c DOUBLE, PRIMARY KEY (a, b)) ENGINE=InnoDB",
		"INSERT INTO app.composite SELECT seq % 7, CONCAT('k', seq), seq / 3 FROM app.seq_1_to_3000")
	e.replica.WaitCaughtUp(t, e.primary, time.Minute)
	var method []string
	if snapUser == logUser {
		method = []string{"--method", "logical"}
	}
	if out, code := e.run(e.snapshotArgs(snapUser, method...)...); code != 0 {
		t.Fatalf("snapshot exited %d:\n%s", code, out)
	}
	e.waitSQLRunning(10 * time.Second)
	if err := writeLoad(context.Background(), e.primary, loadOptions{From: 200, To: 260, FlushAt: 30}); err != nil {
		t.Fatal(err)
	}
	if afterSnapshot != nil {
		afterSnapshot(e)
	}
	e.replica.WaitCaughtUp(t, e.primary, time.Minute)
	e.waitArchived(time.Minute)
	p.stop(t)
	return e
}

// drillArgs runs a drill of the test's archive, scratch space in a
// directory the sandbox user can reach.
func (e *snapEnv) drillArgs(scratch string, extra ...string) []string {
	return append([]string{"drill", "--store", e.store, "--cluster", e.cluster, "--scratch-dir", scratch}, extra...)
}

func (e *snapEnv) withReplica() []string {
	return []string{"--replica", e.replica.SourceURL(drillUser, "")}
}

// runDrill runs binarc drill to its end and returns its output, exit code
// and the record it stored.
func (e *snapEnv) runDrill(t *testing.T, args ...string) (string, int, *drill.Report) {
	t.Helper()
	before := e.drillRecords(t)
	p := e.startEnv([]string{"BINARC_REPLICA_PASSWORD=" + replPass}, args...)
	code := p.wait(t, 5*time.Minute)
	out := p.out.String()
	after := e.drillRecords(t)
	if len(after) != len(before)+1 {
		t.Fatalf("drill exited %d and left %d records (had %d):\n%s", code, len(after), len(before), out)
	}
	return out, code, after[len(after)-1]
}

func (e *snapEnv) drillRecords(t *testing.T) []*drill.Report {
	t.Helper()
	ctx := context.Background()
	keys, err := drill.Records(ctx, e.objStore(), e.layout())
	noErr(t, err)
	var out []*drill.Report
	for _, k := range keys {
		r, err := drill.Read(ctx, e.objStore(), k)
		noErr(t, err)
		out = append(out, r)
	}
	return out
}

// threadsOf is the replica's Slave_IO_Running and Slave_SQL_Running.
func threadsOf(t *testing.T, e *snapEnv) string {
	st := e.replica.SlaveStatus(t)
	return st["Slave_IO_Running"] + "/" + st["Slave_SQL_Running"]
}

func statuses(r *drill.Report) map[string]string {
	m := map[string]string{}
	for _, t := range r.Tables {
		m[t.Table] = t.Status
	}
	return m
}

// noScratchLeft checks the drill removed its scratch directory.
func noScratchLeft(t *testing.T, scratch string) {
	t.Helper()
	ents, err := os.ReadDir(scratch)
	noErr(t, err)
	if len(ents) != 0 {
		t.Errorf("the drill left %v in its scratch directory", ents)
	}
}

// TestDrillHealthyArchive: every table equal against the replica, paused
// at the restore's GTID position; the replica replicates afterwards with
// both threads running as before; the record is stored and ls shows it.
func TestDrillHealthyArchive(t *testing.T) {
	t.Parallel()
	e := newDrillEnv(t, 1, nil)
	scratch := reachableTempDir(t)
	if got := threadsOf(t, e); got != "Yes/Yes" {
		t.Fatalf("replica threads before the drill: %s", got)
	}
	out, code, rep := e.runDrill(t, e.drillArgs(scratch, e.withReplica()...)...)
	t.Logf("drill:\n%s", drillOutput(out))
	if code != 0 || rep.Outcome() != drill.Equal || rep.Mode != "replica" || !strings.Contains(out, "EQUAL") {
		t.Fatalf("drill of a healthy archive exited %d, outcome %s:\n%s", code, rep.Outcome(), out)
	}
	want := tableChecksums(t, e.primary)
	st := statuses(rep)
	for table := range want {
		if st[table] != drill.Equal {
			t.Errorf("table %s: %q; want equal (report %+v)", table, st[table], rep.Tables)
		}
	}
	if len(want) < 4 || len(rep.Tables) != len(want) {
		t.Errorf("compared %d tables; the primary has %d in app: %v", len(rep.Tables), len(want), want)
	}
	for _, tr := range rep.Tables {
		if tr.Table == "app.nopk" && (tr.Rows != 3 || !strings.Contains(tr.Note, "no primary key")) {
			t.Errorf("table without a primary key: %+v", tr)
		}
		if tr.Table == "app.bulk" && (tr.Rows != 1024 || tr.Chunks < 1) {
			t.Errorf("app.bulk: %+v", tr)
		}
		if tr.Table == "app.composite" && (tr.Rows != 3000 || tr.Chunks < 2) {
			t.Errorf("app.composite: %+v; want its 3000 rows in several chunks", tr)
		}
	}
	gtid := e.primary.Query(t, "SELECT @@gtid_binlog_pos")[0][0]
	if rep.GTID != gtid || rep.Snapshot != e.newest().ID || rep.Transactions == 0 || rep.ReplayedBytes == 0 {
		t.Errorf("report: gtid %s (primary at %s), snapshot %s, %d transactions, %d bytes", rep.GTID, gtid, rep.Snapshot, rep.Transactions, rep.ReplayedBytes)
	}
	phases := map[string]bool{}
	for _, p := range rep.Phases {
		phases[p.Name] = true
	}
	for _, p := range []string{"download", "prepare", "binlog fetch", "replay", "compare"} {
		if !phases[p] {
			t.Errorf("report has no %q phase: %+v", p, rep.Phases)
		}
	}
	if rep.Tools["mariadbd"] == "" || rep.Tools["mariabackup"] == "" {
		t.Errorf("tool versions: %v", rep.Tools)
	}
	noScratchLeft(t, scratch)

	// Both threads run again, and the replica keeps applying.
	if got := threadsOf(t, e); got != "Yes/Yes" {
		t.Errorf("replica threads after the drill: %s; want Yes/Yes", got)
	}
	pos := e.replica.SlaveStatus(t)["Exec_Master_Log_Pos"]
	e.primary.Exec(t, "INSERT INTO app.accounts VALUES (900001, 'after the drill', 1, 'x')")
	e.replica.WaitCaughtUp(t, e.primary, time.Minute)
	if rows := e.replica.Query(t, "SELECT note FROM app.accounts WHERE id = 900001"); len(rows) != 1 {
		t.Errorf("the row written after the drill is not on the replica: %v", rows)
	}
	// MASTER_GTID_WAIT returns when the GTID is committed; SHOW SLAVE
	// STATUS's position may be updated a moment later.
	deadline := time.Now().Add(30 * time.Second)
	for e.replica.SlaveStatus(t)["Exec_Master_Log_Pos"] == pos {
		if time.Now().After(deadline) {
			t.Errorf("Exec_Master_Log_Pos stayed at %s after the drill", pos)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The record is binarc's own: verify does not call it a stray.
	if vout, code := e.verify(); code != 0 || strings.Contains(vout, "stray") {
		t.Errorf("verify after a drill exited %d:\n%s", code, vout)
	}
	ls, code := e.run("ls", "--store", e.store, "--cluster", e.cluster)
	if code != 0 || !strings.Contains(ls, "last drill: "+rep.Started.UTC().Format("2006-01-02 15:04:05Z")+", equal") || !strings.Contains(ls, "RTO ") {
		t.Errorf("ls exited %d; want the last drill, equal, with its RTO:\n%s", code, ls)
	}
	js, _ := e.runEnv([]string{"BINARC_LOG_LEVEL=error"}, "ls", "--store", e.store, "--cluster", e.cluster, "--json")
	var got struct {
		LastDrill *drill.Report `json:"last_drill"`
	}
	if err := json.Unmarshal([]byte(js), &got); err != nil || got.LastDrill == nil || !got.LastDrill.Started.Equal(rep.Started) || got.LastDrill.Outcome() != drill.Equal {
		t.Errorf("ls --json: want the last drill (started %s, equal) (%v):\n%s", rep.Started, err, js)
	}
}

// drillOutput is the printed report, without the log lines.
func drillOutput(out string) string {
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "{") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}
