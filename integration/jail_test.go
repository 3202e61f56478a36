package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/binarc/binarc/integration/testenv"
)

// jailArchive is an archive whose binlog carries forged query events
// (rewritten in the bucket, with valid checksums) after a physical
// snapshot, and a real LOAD DATA (Begin_load_query, Execute_load_query).
type jailArchive struct {
	e       *snapEnv
	outside string            // a directory anyone may write on the host
	secret  string            // a file only the mysql user and root can read, in /var/lib/mysql
	gtid    map[string]string // marker → the GTID of its planted transaction
	loaded  [][]string        // app.loaded on the primary
}

// Planted statements, by marker.
var jailMarkers = []string{"PLANT-GLFILE", "PLANT-GLON", "PLANT-PAYLOAD", "PLANT-DATADIR", "PLANT-SONAME", "PLANT-LOCAL"}

func newJailArchive(t *testing.T) *jailArchive {
	e := newSnapEnv(t)
	a := &jailArchive{e: e, outside: reachableTempDir(t), gtid: map[string]string{}}
	noErr(t, os.Chmod(a.outside, 0o777))
	a.secret = filepath.Join("/var/lib/mysql", "binarc-jail-"+filepath.Base(filepath.Dir(a.outside))+".secret")
	noErr(t, os.WriteFile(a.secret, []byte("jail-secret-content\n"), 0o640))
	t.Cleanup(func() { os.Remove(a.secret) })
	if mysqlUID, mysqlGID, ok := mysqlIDs(); ok {
		noErr(t, os.Chown(a.secret, mysqlUID, mysqlGID))
	}

	p := e.start(e.streamArgs("--no-compact")...)
	p.waitLog(t, "streaming from the primary", time.Minute)
	e.primary.Exec(t, "CREATE DATABASE app",
		"CREATE TABLE app.plant (id INT PRIMARY KEY, s TEXT) ENGINE=InnoDB",
		"CREATE TABLE app.loaded (id INT PRIMARY KEY, s VARCHAR(40)) ENGINE=InnoDB",
		"CREATE TABLE app.loot (s LONGTEXT) ENGINE=InnoDB",
		"INSERT INTO app.plant VALUES (0, 'before')")
	e.caughtUpSnapshot(t, "snapshot", physUser)
	// The binlog's own LOAD DATA: with binlog_format STATEMENT, its file
	// travels in Begin_load_query and Execute_load_query events.
	csv := filepath.Join(t.TempDir(), "rows.csv")
	noErr(t, os.WriteFile(csv, []byte("1,one\n2,two\n3,three with 'quote'\n"), 0o644))
	e.primary.Exec(t, "SET SESSION binlog_format=STATEMENT",
		"LOAD DATA INFILE '"+csv+"' INTO TABLE app.loaded FIELDS TERMINATED BY ','")
	a.loaded = e.primary.Query(t, "SELECT id, s FROM app.loaded ORDER BY id")
	pad := strings.Repeat("p", 150)
	for i, marker := range jailMarkers {
		e.primary.Exec(t, "SET SESSION binlog_format=STATEMENT",
			fmt.Sprintf("INSERT INTO app.plant VALUES (%d, '%s%s')", i+1, marker, pad))
		a.gtid[marker] = lastGTID(e.primary.Query(t, "SELECT @@gtid_binlog_pos")[0][0])
	}
	e.primary.Exec(t, "FLUSH BINARY LOGS")
	e.primary.Exec(t, "INSERT INTO app.plant VALUES (99, 'after')")
	e.waitArchived(time.Minute)
	p.stop(t)

	for marker, stmt := range map[string]string{
		"PLANT-GLFILE":  "SET GLOBAL general_log_file='" + filepath.Join(a.outside, "general.log") + "'",
		"PLANT-GLON":    "SET GLOBAL general_log=ON",
		"PLANT-PAYLOAD": "SELECT 'binarc-jail-payload'",
		"PLANT-DATADIR": "CREATE TABLE app.evil (i INT) ENGINE=InnoDB DATA DIRECTORY='" + a.outside + "'",
		"PLANT-SONAME":  "INSTALL SONAME 'ha_federatedx'",
		"PLANT-LOCAL":   "LOAD DATA LOCAL INFILE '" + a.secret + "' INTO TABLE app.loot",
	} {
		e.plantStatement(marker, stmt)
	}
	return a
}

// mysqlIDs are the mysql user's uid and gid.
func mysqlIDs() (int, int, bool) {
	out, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return 0, 0, false
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 3 && f[0] == "mysql" {
			var uid, gid int
			if _, err := fmt.Sscan(f[2], &uid); err == nil {
				if _, err := fmt.Sscan(f[3], &gid); err == nil {
					return uid, gid, true
				}
			}
		}
	}
	return 0, 0, false
}

// skips are --skip-gtid flags for the markers' transactions.
func (a *jailArchive) skips(markers ...string) []string {
	var args []string
	for _, m := range markers {
		args = append(args, "--skip-gtid", a.gtid[m])
	}
	return args
}

// outsideFiles lists what appeared in the outside directory.
func (a *jailArchive) outsideFiles(t *testing.T) []string {
	var found []string
	noErr(t, filepath.Walk(a.outside, func(p string, info os.FileInfo, err error) error {
		if err == nil && p != a.outside {
			found = append(found, p)
		}
		return nil
	}))
	return found
}

// TestRestoreJailDatadir restores the forged archive by --datadir: the
// temporary server, in the jail, cannot point its general log outside
// (the restore fails naming the statement), nor install a plugin (the
// same), and its DATA DIRECTORY stays inside; skipping the two refused
// transactions, the restore completes with the primary's data (the LOAD
// DATA too), no plugin, and nothing outside. With --no-jail the general
// log and its payload land outside: the check can fail.
func TestRestoreJailDatadir(t *testing.T) {
	t.Parallel()
	a := newJailArchive(t)
	e := a.e
	root := reachableTempDir(t)
	restore := func(name string, extra ...string) (string, int) {
		// Serially applied (--replay-threads 0): with parallel workers,
		// which planted statement fails first, and whether the earlier
		// SET GLOBALs ran by then, may vary.
		args := append([]string{"restore", "--store", e.store, "--cluster", e.cluster, "--datadir", filepath.Join(root, name), "--to", "latest", "--replay-threads", "0"},
			append(a.skips("PLANT-LOCAL"), extra...)...)
		return e.run(args...)
	}
	out, code := restore("a")
	if code == 0 || !strings.Contains(out, "general_log_file") {
		t.Fatalf("jailed restore exited %d; want a failure naming the general_log_file statement:\n%s", code, tail(out, 3000))
	}
	if f := a.outsideFiles(t); len(f) > 0 {
		t.Fatalf("the jailed restore wrote outside its directories: %v", f)
	}
	t.Logf("refused: %s", lastLine(out))
	out, code = restore("b", a.skips("PLANT-GLFILE")...)
	if code == 0 || !strings.Contains(out, "ha_federatedx") {
		t.Fatalf("jailed restore exited %d; want a failure naming INSTALL SONAME:\n%s", code, tail(out, 3000))
	}
	if f := a.outsideFiles(t); len(f) > 0 {
		t.Fatalf("the jailed restore wrote outside its directories: %v", f)
	}
	t.Logf("refused: %s", lastLine(out))

	// restored restores skipping the refused transactions, and checks
	// nothing was written outside and the LOAD DATA's rows.
	restored := func(name string, id uint32, extra ...string) *testenv.MariaDB {
		t.Helper()
		out, code := restore(name, append(a.skips("PLANT-GLFILE", "PLANT-SONAME"), extra...)...)
		if code != 0 {
			t.Fatalf("jailed restore %v skipping the refused transactions exited %d:\n%s", extra, code, tail(out, 4000))
		}
		if f := a.outsideFiles(t); len(f) > 0 {
			t.Fatalf("the jailed restore %v wrote outside its directories: %v", extra, f)
		}
		srv := testenv.StartMariaDBOn(t, filepath.Join(root, name), id)
		if got := srv.Query(t, "SELECT id, s FROM app.loaded ORDER BY id"); fmt.Sprint(got) != fmt.Sprint(a.loaded) {
			t.Fatalf("restore %v: app.loaded %v; the primary's %v", extra, got, a.loaded)
		}
		return srv
	}
	srv := restored("c", 78)
	if rows := srv.Query(t, "SELECT id FROM app.plant WHERE id IN (0, 99) ORDER BY id"); len(rows) != 2 {
		t.Fatalf("restored app.plant: %v; want rows 0 and 99", rows)
	}
	if n := srv.Query(t, "SELECT COUNT(*) FROM information_schema.plugins WHERE plugin_name LIKE '%FEDERATED%' AND plugin_status = 'ACTIVE'")[0][0]; n != "0" {
		t.Fatalf("%s FederatedX plugins active on the restored server", n)
	}
	if n := srv.Query(t, "SELECT COUNT(*) FROM mysql.plugin")[0][0]; n != "0" {
		t.Fatalf("mysql.plugin holds %s rows on the restored server", n)
	}
	t.Logf("jailed restore done: app.loaded %v, no plugin, nothing in %s", a.loaded, a.outside)

	// The same through a client session (--replay client): the binlog's
	// own LOAD DATA is replayed as LOAD DATA LOCAL of the file
	// mariadb-binlog writes, which the temporary server must accept.
	restored("e", 79, "--replay", "client")
	checkJailedServer(t, e, filepath.Join(root, "held"), a.skips("PLANT-LOCAL", "PLANT-GLFILE", "PLANT-SONAME"))

	// Without the jail, the same archive writes outside.
	out, _ = restore("d", "--no-jail")
	if !strings.Contains(out, "--no-jail") {
		t.Fatalf("--no-jail ran without a warning:\n%s", tail(out, 2000))
	}
	log, err := os.ReadFile(filepath.Join(a.outside, "general.log"))
	if err != nil {
		t.Fatalf("--no-jail: the planted general log was not written outside (%v): the test could not have failed:\n%s", err, tail(out, 3000))
	}
	t.Logf("--no-jail: the planted general log landed outside (%d bytes)", len(log))
}

// checkJailedServer holds a restore with its temporary server up and
// reads, from /proc, what the server lives in: its own mount and network
// namespaces (only a loopback), the host's root read-only, /var/lib/mysql
// hidden, no_new_privs, the mysql user.
func checkJailedServer(t *testing.T, e *snapEnv, dir string, skips []string) {
	t.Helper()
	args := append([]string{"restore", "--store", e.store, "--cluster", e.cluster, "--datadir", dir, "--to", "latest"}, skips...)
	hp := e.startEnv([]string{"BINARC_TEST_RESTORE_HOLD=2m"}, args...)
	defer hp.kill()
	hp.waitLog(t, "BINARC_TEST_RESTORE_HOLD", 2*time.Minute)
	pids := serverPids(dir)
	if len(pids) == 0 {
		t.Fatal("no temporary server found in /proc while the restore holds")
	}
	pid := pids[0]
	mysqlUID, _, _ := mysqlIDs()
	if uid := procField(pid, "Uid:"); uid != fmt.Sprint(mysqlUID) {
		t.Fatalf("the temporary server runs as uid %s", uid)
	}
	if nnp := procField(pid, "NoNewPrivs:"); nnp != "1" {
		t.Fatalf("the temporary server has NoNewPrivs %q", nnp)
	}
	for _, ns := range []string{"mnt", "net"} {
		theirs, err1 := os.Readlink(filepath.Join("/proc", pid, "ns", ns))
		ours, err2 := os.Readlink("/proc/self/ns/" + ns)
		if err1 != nil || err2 != nil || theirs == ours {
			t.Fatalf("the temporary server shares binarc's %s namespace (%s, %v %v)", ns, theirs, err1, err2)
		}
	}
	dev, err := os.ReadFile(filepath.Join("/proc", pid, "net", "dev"))
	noErr(t, err)
	if lines := strings.Split(strings.TrimSpace(string(dev)), "\n"); len(lines) != 3 || !strings.HasPrefix(strings.TrimSpace(lines[2]), "lo:") {
		t.Fatalf("the temporary server sees these network interfaces:\n%s", dev)
	}
	mi, err := os.ReadFile(filepath.Join("/proc", pid, "mountinfo"))
	noErr(t, err)
	var rootRO, hidden, dataRW bool
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		ro := strings.Split(f[5], ",")[0] == "ro"
		switch f[4] {
		case "/":
			rootRO = ro
		case "/var/lib/mysql":
			hidden = ro && strings.Contains(line, " - tmpfs ")
		case dir:
			dataRW = !ro
		}
	}
	if !rootRO || !hidden || !dataRW {
		t.Fatalf("the temporary server's mounts: / read-only %v, /var/lib/mysql hidden %v, %s writable %v:\n%s", rootRO, hidden, dir, dataRW, mi)
	}
	t.Logf("temporary server (pid %s): mysql, no_new_privs, own mount and network namespaces (lo only), / read-only, /var/lib/mysql hidden", pid)
}

// TestRestoreJailTarget restores the forged archive into a running
// --target through the client: the jailed mariadb client, as the mysql
// user, replays the binlog's own LOAD DATA (rows equal to the primary's)
// but the planted LOAD DATA LOCAL of a file in /var/lib/mysql (readable by
// the mysql user on the host) reaches nothing: the restore fails naming
// the file, and the target holds none of it. With --no-jail the file's
// content reaches the target: the check can fail.
func TestRestoreJailTarget(t *testing.T) {
	t.Parallel()
	a := newJailArchive(t)
	e := a.e
	serverSide := a.skips("PLANT-GLFILE", "PLANT-GLON", "PLANT-PAYLOAD", "PLANT-DATADIR", "PLANT-SONAME")
	restore := func(target *testenv.MariaDB, extra ...string) (string, int) {
		args := append([]string{"restore", "--store", e.store, "--cluster", e.cluster,
			"--from", "mysql-bin.000001:4", "--to", "latest", "--target", "mysql://root@" + target.Addr()}, append(serverSide, extra...)...)
		return e.runEnv([]string{"BINARC_TARGET_PASSWORD="}, args...)
	}
	loot := func(target *testenv.MariaDB) string {
		rows := target.Query(t, "SELECT COALESCE(GROUP_CONCAT(s), '') FROM app.loot")
		return rows[0][0]
	}
	jailed := testenv.StartMariaDB(t, testenv.MariaDBOptions{ServerID: 91, NoLogBin: true})
	out, code := restore(jailed)
	if got := loot(jailed); strings.Contains(got, "jail-secret") {
		t.Fatalf("the jailed restore copied %s into the target: %q", a.secret, got)
	}
	if f := a.outsideFiles(t); len(f) > 0 {
		t.Fatalf("the jailed restore wrote outside its directories: %v", f)
	}
	if code == 0 || !strings.Contains(out, a.secret) {
		t.Fatalf("jailed restore exited %d; want a failure naming %s:\n%s", code, a.secret, tail(out, 3000))
	}
	if got := jailed.Query(t, "SELECT id, s FROM app.loaded ORDER BY id"); fmt.Sprint(got) != fmt.Sprint(a.loaded) {
		t.Fatalf("the binlog's own LOAD DATA replayed as %v; the primary has %v", got, a.loaded)
	}
	t.Logf("refused: %s", lastLine(out))

	open := testenv.StartMariaDB(t, testenv.MariaDBOptions{ServerID: 92, NoLogBin: true})
	out, _ = restore(open, "--no-jail")
	if got := loot(open); !strings.Contains(got, "jail-secret") {
		t.Fatalf("--no-jail: the planted LOAD DATA LOCAL did not reach %s (loot %q): the test could not have failed:\n%s", a.secret, got, tail(out, 2000))
	}
	t.Logf("--no-jail: the planted LOAD DATA LOCAL copied %s into the target", a.secret)
}

// TestRestoreRefusesWithoutJail: binarc run by a user that cannot make a
// mount namespace refuses to restore, naming root and --no-jail, before
// it reads the archive; with --no-jail it goes on (and fails on the empty
// store instead), warning.
func TestRestoreRefusesWithoutJail(t *testing.T) {
	t.Parallel()
	uid, gid, ok := mysqlIDs()
	if !ok || os.Geteuid() != 0 {
		t.Skip("needs root and a mysql user to run binarc as")
	}
	store := reachableTempDir(t)
	noErr(t, os.Chmod(store, 0o777))
	// A copy the mysql user can run: the test build sits in a 0700 dir.
	bin := filepath.Join(reachableTempDir(t), "binarc")
	b, err := os.ReadFile(binarcPath)
	noErr(t, err)
	noErr(t, os.WriteFile(bin, b, 0o755))
	run := func(extra ...string) string {
		args := append([]string{"restore", "--store", store, "--cluster", "c", "--to", "latest",
			"--datadir", filepath.Join(store, "data"), "--work-dir", filepath.Join(store, "work")}, extra...)
		cmd := exec.Command(bin, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		out, err := cmd.CombinedOutput()
		if _, exited := err.(*exec.ExitError); !exited {
			t.Fatalf("restore %v as mysql: %v; want a failure exit:\n%s", extra, err, out)
		}
		return string(out)
	}
	out := run()
	for _, want := range []string{"root", "--no-jail"} {
		if !strings.Contains(out, want) {
			t.Fatalf("restore without a jail: the refusal does not name %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "no snapshot") {
		t.Fatalf("restore without a jail read the archive before refusing:\n%s", out)
	}
	t.Logf("refused: %s", lastLine(out))
	out = run("--no-jail")
	if !strings.Contains(out, `"level":"warn"`) || !strings.Contains(out, "--no-jail") || !strings.Contains(out, "no snapshot") {
		t.Fatalf("restore --no-jail: want a warning, then the archive's own refusal:\n%s", out)
	}
}
