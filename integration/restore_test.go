package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/integration/testenv"
)

// checkpoint is the primary's state at a known point.
type checkpoint struct {
	name     string
	time     time.Time         // every event before it is older, every later event is at least this old
	position string            // FILE:POS after the checkpoint's last transaction
	gtid     string            // GTID of the last transaction
	sums     map[string]string // table -> CHECKSUM TABLE
}

// tableChecksums returns CHECKSUM TABLE of every table in the app schema.
func tableChecksums(t *testing.T, m *testenv.MariaDB) map[string]string {
	t.Helper()
	sums := map[string]string{}
	for _, r := range m.Query(t, "SELECT CONCAT(table_schema, '.', table_name) FROM information_schema.tables WHERE table_schema = 'app' ORDER BY 1") {
		sums[r[0]] = m.Query(t, "CHECKSUM TABLE "+r[0])[0][1]
	}
	return sums
}

// takeCheckpoint records the primary's state, then waits for the next
// second to begin so the checkpoint is also a clean time boundary.
func takeCheckpoint(t *testing.T, m *testenv.MariaDB, name string) checkpoint {
	t.Helper()
	st := m.Query(t, "SHOW MASTER STATUS")[0]
	cp := checkpoint{name: name, position: st[0] + ":" + st[1], gtid: lastGTID(m.Query(t, "SELECT @@gtid_binlog_pos")[0][0]), sums: tableChecksums(t, m)}
	now := time.Now()
	cp.time = now.Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(cp.time) + 50*time.Millisecond)
	return cp
}

// betweenTransactions is a checkpoint at the position just after the
// Gtid_list of the primary's newest file, with a Binlog_checkpoint event
// after it before any transaction: a place between transactions that is
// no transaction's start or end, as SHOW MASTER STATUS can name it just
// after a rotation (seed 44 of the fault campaign).
func betweenTransactions(t *testing.T, m *testenv.MariaDB) checkpoint {
	t.Helper()
	cp := takeCheckpoint(t, m, "between a file's header and its Binlog_checkpoint")
	file, _, _ := strings.Cut(cp.position, ":")
	evs := m.Query(t, "SHOW BINLOG EVENTS IN '"+file+"'")
	for i, ev := range evs { // Log_name, Pos, Event_type, Server_id, End_log_pos, Info
		if ev[2] == "Gtid_list" && i+1 < len(evs) && evs[i+1][2] == "Binlog_checkpoint" {
			cp.position = file + ":" + ev[4]
			return cp
		}
	}
	t.Fatalf("%s has no Binlog_checkpoint just after its Gtid_list: %v", file, evs)
	return cp
}

func lastGTID(pos string) string {
	parts := strings.Split(pos, ",")
	return strings.TrimSpace(parts[len(parts)-1])
}

// restoreInto replays the archive from the primary's first binlog into a
// fresh server and returns that server.
func (e *env) restoreInto(t *testing.T, args ...string) (*testenv.MariaDB, string) {
	t.Helper()
	target := testenv.StartMariaDB(t, testenv.MariaDBOptions{ServerID: 99, NoLogBin: true})
	first := strings.TrimSuffix(e.primary.Query(t, "SHOW BINARY LOGS")[0][0], "")
	all := append([]string{"restore", "--store", e.store, "--cluster", e.cluster,
		"--from", first + ":4", "--target", "mysql://root@" + target.Addr()}, args...)
	out, code := e.runEnv([]string{"BINARC_TARGET_PASSWORD="}, all...)
	if code != 0 {
		t.Fatalf("binarc restore %v failed (%d):\n%s", args, code, out)
	}
	return target, out
}

// TestPointInTimeRestore restores to each checkpoint of a write load, by
// time, by position and by GTID, across rotations and an archiver kill,
// and compares every table's checksum with the primary's at that point.
func TestPointInTimeRestore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{MaxBinlogSize: 64 << 10})
	ctx := context.Background()
	p := e.start(e.streamArgs()...)
	var cps []checkpoint
	phase := func(from, to int) {
		if err := writeLoad(ctx, e.primary, loadOptions{From: from, To: to, FlushAt: 25}); err != nil {
			t.Fatal(err)
		}
	}
	phase(0, 60)
	cps = append(cps, takeCheckpoint(t, e.primary, "after 60"))
	phase(60, 120) // rotates by size and by FLUSH
	cps = append(cps, takeCheckpoint(t, e.primary, "after 120"))
	p.kill() // the archiver dies between checkpoints
	phase(120, 170)
	p = e.start(e.streamArgs()...)
	cps = append(cps, takeCheckpoint(t, e.primary, "after 170 and an archiver restart"))
	phase(170, 200)
	e.primary.Exec(t, "FLUSH BINARY LOGS")
	cps = append(cps, betweenTransactions(t, e.primary))
	phase(200, 210)
	// Statement-based transactions (MariaDB's default is MIXED): MariaDB
	// writes no BEGIN after their GTID event, so a scan that waits for one
	// ends the transaction at its first statement, and a restore to its
	// GTID stops there.
	statements := func(from int) {
		e.primary.Exec(t, "SET SESSION binlog_format=STATEMENT", "BEGIN",
			fmt.Sprintf("INSERT INTO app.accounts VALUES (%d, 'stmt', 1, 'a')", 100000+from),
			fmt.Sprintf("INSERT INTO app.accounts VALUES (%d, 'stmt', 2, 'b')", 100001+from),
			"UPDATE app.accounts SET balance = balance + 10 WHERE owner = 'stmt'", "COMMIT")
	}
	statements(0)
	cps = append(cps, takeCheckpoint(t, e.primary, "after a statement-based transaction"))
	statements(10)
	e.waitArchived(time.Minute)

	for _, cp := range cps {
		if len(cp.sums) < 3 {
			t.Fatalf("checkpoint %q saw only tables %v: the load did not run", cp.name, cp.sums)
		}
		for _, to := range []string{cp.time.UTC().Format(time.RFC3339), cp.position, cp.gtid} {
			target, _ := e.restoreInto(t, "--to", to)
			if got := tableChecksums(t, target); !reflect.DeepEqual(got, cp.sums) {
				t.Errorf("restore --to %s (checkpoint %q): checksums differ\n got %v\nwant %v", to, cp.name, got, cp.sums)
			}
		}
	}
	p.stop(t)
}

// TestRestoreAroundDropTable: a DROP TABLE destroys a table; the user
// finds it with binlog events and restores everything but it, by
// --skip-gtid and by time.
func TestRestoreAroundDropTable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{})
	ctx := context.Background()
	p := e.start(e.streamArgs()...)
	if err := writeLoad(ctx, e.primary, loadOptions{From: 0, To: 80, FlushAt: 30}); err != nil {
		t.Fatal(err)
	}
	before := takeCheckpoint(t, e.primary, "before the DROP")
	e.primary.Exec(t, "DROP TABLE app.accounts")
	e.primary.Exec(t, "INSERT INTO app.events (kind, payload) VALUES ('after', 'x'), ('after', 'y')")
	after := tableChecksums(t, e.primary)
	e.waitArchived(time.Minute)

	out, code := e.run("binlog", "events", "--store", e.store, "--cluster", e.cluster, "--grep", "drop table")
	if code != 0 {
		t.Fatalf("binlog events: %s", out)
	}
	var dropTime, dropGTID string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "DROP TABLE") && strings.Contains(line, "accounts") {
			f := strings.Fields(line)
			dropTime, dropGTID = f[0], f[1]
		}
	}
	if dropGTID == "" {
		t.Fatalf("binlog events --grep did not list the DROP:\n%s", out)
	}

	// The same, for automation: one JSON object a transaction, and the
	// dry run's plan as one object naming the skipped DROP.
	checkJSONOutputs(t, e, dropGTID)

	// Everything but the DROP: the table with its rows, and the later rows.
	target, plan := e.restoreInto(t, "--to", "latest", "--skip-gtid", dropGTID)
	t.Logf("plan:\n%s", plan)
	got := tableChecksums(t, target)
	if got["app.accounts"] != before.sums["app.accounts"] || got["app.events"] != after["app.events"] {
		t.Errorf("--skip-gtid %s: accounts %s (want %s), events %s (want %s)\n%s", dropGTID,
			got["app.accounts"], before.sums["app.accounts"], got["app.events"], after["app.events"], plan)
	}
	if !strings.Contains(plan, "skipped:") || !strings.Contains(plan, "DROP TABLE") {
		t.Errorf("the plan does not show the skipped DROP:\n%s", plan)
	}
	// Up to the DROP's second: the table is there with its rows.
	target, _ = e.restoreInto(t, "--to", dropTime)
	if got := tableChecksums(t, target); got["app.accounts"] != before.sums["app.accounts"] {
		t.Errorf("--to %s: accounts checksum %s, want %s", dropTime, got["app.accounts"], before.sums["app.accounts"])
	}
	p.stop(t)
}

// TestRestoreRefusesOutsideWindow: targets the archive cannot reach are
// refused with the window in the message, and nothing is replayed.
func TestRestoreRefusesOutsideWindow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{})
	p := e.start(e.streamArgs()...)
	e.primary.Exec(t, "CREATE DATABASE app", "CREATE TABLE app.t (x INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1)")
	e.waitArchived(time.Minute)
	p.stop(t)
	target := testenv.StartMariaDB(t, testenv.MariaDBOptions{ServerID: 99, NoLogBin: true})
	base := []string{"restore", "--store", e.store, "--cluster", e.cluster, "--target", "mysql://root@" + target.Addr()}
	for name, c := range map[string]struct {
		args []string
		want []string
	}{
		"future time":       {[]string{"--from", "mysql-bin.000001:4", "--to", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, []string{"after the newest archived transaction", "covers mysql-bin.000001", "--to latest"}},
		"unknown GTID":      {[]string{"--from", "mysql-bin.000001:4", "--to", "0-1-999999"}, []string{"0-1-999999", "not in the archive"}},
		"file not archived": {[]string{"--from", "mysql-bin.000042:4", "--to", "latest"}, []string{"mysql-bin.000042", "not in the archive", "covers"}},
		"time without zone": {[]string{"--from", "mysql-bin.000001:4", "--to", "2026-11-20 13:45:00"}, []string{"no zone"}},
		"unknown skip":      {[]string{"--from", "mysql-bin.000001:4", "--to", "latest", "--skip-gtid", "0-1-888888"}, []string{"0-1-888888", "no such transaction"}},
	} {
		out, code := e.runEnv([]string{"BINARC_TARGET_PASSWORD="}, append(base, c.args...)...)
		if code == 0 {
			t.Errorf("%s: restore succeeded:\n%s", name, out)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", name, w, out)
			}
		}
	}
	if n := target.Query(t, "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'app'")[0][0]; n != "0" {
		t.Errorf("a refused restore changed the target")
	}
}

// checkJSONOutputs: binlog events --json prints one JSON object a
// transaction (the DROP among them, with its GTID and position), and
// restore --dry-run --json the plan as one object whose skipped list
// holds the DROP (the schemas in the README, Automation: JSON output).
func checkJSONOutputs(t *testing.T, e *env, dropGTID string) {
	t.Helper()
	out, code := e.runEnv([]string{"BINARC_LOG_LEVEL=error"}, "binlog", "events", "--store", e.store, "--cluster", e.cluster, "--grep", "drop table", "--json")
	if code != 0 {
		t.Fatalf("binlog events --json (%d):\n%s", code, out)
	}
	found := false
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "{") || strings.Contains(line, `"level"`) {
			continue
		}
		var tx struct {
			Time     time.Time `json:"time"`
			GTID     string    `json:"gtid"`
			Timeline string    `json:"timeline"`
			File     string    `json:"file"`
			Start    uint64    `json:"start"`
			End      uint64    `json:"end"`
			Summary  string    `json:"summary"`
		}
		if err := json.Unmarshal([]byte(line), &tx); err != nil {
			t.Fatalf("binlog events --json printed a line that is not JSON: %q: %v", line, err)
		}
		if tx.GTID == dropGTID && strings.Contains(tx.Summary, "DROP TABLE") && tx.End > tx.Start && tx.File != "" && tx.Timeline != "" && !tx.Time.IsZero() {
			found = true
		}
	}
	if !found {
		t.Fatalf("binlog events --json does not list the DROP %s:\n%s", dropGTID, out)
	}
	first := e.primary.Query(t, "SHOW BINARY LOGS")[0][0]
	out, code = e.runEnv([]string{"BINARC_LOG_LEVEL=error"}, "restore", "--store", e.store, "--cluster", e.cluster, "--from", first+":4",
		"--to", "latest", "--skip-gtid", dropGTID, "--dry-run", "--json")
	if code != 0 {
		t.Fatalf("restore --dry-run --json (%d):\n%s", code, out)
	}
	var plan struct {
		Version int  `json:"version"`
		DryRun  bool `json:"dry_run"`
		Stop    struct {
			File   string `json:"file"`
			Offset uint64 `json:"offset"`
		} `json:"stop"`
		Ranges []struct {
			File        string `json:"file"`
			Start, Stop uint64
		} `json:"ranges"`
		Skipped []struct {
			GTID    string `json:"gtid"`
			Summary string `json:"summary"`
		} `json:"skipped"`
		LastApplied *struct {
			GTID string `json:"gtid"`
		} `json:"last_applied"`
	}
	line := out[strings.Index(out, `{"version"`):]
	if err := json.Unmarshal([]byte(strings.SplitN(line, "\n", 2)[0]), &plan); err != nil {
		t.Fatalf("restore --dry-run --json is not one JSON object: %v\n%s", err, out)
	}
	if plan.Version != 1 || !plan.DryRun || len(plan.Ranges) == 0 || plan.Stop.File == "" || plan.LastApplied == nil ||
		len(plan.Skipped) != 1 || plan.Skipped[0].GTID != dropGTID || !strings.Contains(plan.Skipped[0].Summary, "DROP TABLE") {
		t.Fatalf("restore --dry-run --json: %+v\n%s", plan, out)
	}
}

// TestRestoreTargetLargeEvents: a --target restore replays through
// mariadb-binlog | mariadb in the jail, where mariadb-binlog buffers a
// large row event in a temporary file: it must have a writable directory
// for it (/tmp is read-only in the jail). Rows of 6 MiB, restored equal.
func TestRestoreTargetLargeEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{})
	p := e.start(e.streamArgs()...)
	e.primary.Exec(t, "SET GLOBAL max_allowed_packet = 64*1024*1024")
	e.primary.Exec(t, "CREATE DATABASE big", "CREATE TABLE big.blobs (id INT PRIMARY KEY, b LONGBLOB) ENGINE=InnoDB")
	for i := range 3 {
		e.primary.Exec(t, fmt.Sprintf("INSERT INTO big.blobs SELECT %d, REPEAT(SHA2(RAND(), 256), 6*1024*1024/64)", i))
	}
	want := tableChecksums(t, e.primary)
	e.waitArchived(time.Minute)
	p.stop(t)
	target, out := e.restoreInto(t, "--to", "latest")
	if got := tableChecksums(t, target); got["big.blobs"] != want["big.blobs"] {
		t.Fatalf("big.blobs checksum %s, want %s:\n%s", got["big.blobs"], want["big.blobs"], tail(out, 2000))
	}
}
