package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/integration/testenv"
	"github.com/binarc/binarc/internal/procfs"
	"github.com/binarc/binarc/snapshot"
	"github.com/klauspost/compress/zstd"
)

// The snapshot users have exactly the privileges binarc snapshot --help
// lists, so the tests prove the list is enough.
const (
	physUser = "snapphys" // physical snapshot of a replica
	logUser  = "snaplog"  // logical snapshot of a replica
	primUser = "snapprim" // either method of a primary (--allow-primary)
)

// snapEnv is a primary with a replica replicating from it, an S3 server,
// and the snapshot users (created on the primary, replicated).
type snapEnv struct {
	*env
	replica *testenv.MariaDB
}

func newSnapEnv(t *testing.T) *snapEnv {
	t.Helper()
	e := newEnv(t, testenv.MariaDBOptions{})
	for user, grants := range map[string]string{
		physUser: "RELOAD, PROCESS, BINLOG MONITOR, SLAVE MONITOR, REPLICATION SLAVE ADMIN",
		logUser:  "SELECT, SHOW VIEW, TRIGGER, EVENT, SLAVE MONITOR, REPLICATION SLAVE ADMIN",
		primUser: "RELOAD, PROCESS, BINLOG MONITOR, SELECT, SHOW VIEW, TRIGGER, EVENT, SLAVE MONITOR",
	} {
		e.primary.Exec(t,
			fmt.Sprintf("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'", user, replPass),
			fmt.Sprintf("GRANT %s ON *.* TO '%s'@'127.0.0.1'", grants, user))
	}
	r := testenv.StartReplica(t, e.primary, testenv.ReplicaOptions{ServerID: 2})
	return &snapEnv{env: e, replica: r}
}

func (e *snapEnv) snapshotArgs(user string, extra ...string) []string {
	return append([]string{"snapshot",
		"--source", e.replica.SourceURL(user, ""),
		"--store", e.store, "--cluster", e.cluster,
	}, extra...)
}

// caughtUpSnapshot waits until the replica has applied all the primary
// wrote, then takes a snapshot of it as user (with extra arguments); the
// test fails, naming the snapshot what, if binarc snapshot fails.
func (e *snapEnv) caughtUpSnapshot(t *testing.T, what, user string, extra ...string) {
	t.Helper()
	e.replica.WaitCaughtUp(t, e.primary, time.Minute)
	if out, code := e.run(e.snapshotArgs(user, extra...)...); code != 0 {
		t.Fatalf("%s exited %d:\n%s", what, code, out)
	}
}

// seed writes a load on the primary (with some incompressible bulk, so a
// backup spans several upload parts) and waits for the replica.
func (e *snapEnv) seed(bulkMiB int) {
	e.t.Helper()
	if err := writeLoad(context.Background(), e.primary, loadOptions{From: 0, To: 200}); err != nil {
		e.t.Fatal(err)
	}
	e.primary.Exec(e.t, "CREATE TABLE app.bulk (id INT PRIMARY KEY, b VARBINARY(1024)) ENGINE=InnoDB")
	for i := range bulkMiB {
		// 1024 rows of 1 KiB of random bytes: a MiB that zstd cannot shrink.
		e.primary.Exec(e.t, fmt.Sprintf("INSERT INTO app.bulk SELECT %d * 1024 + seq, RANDOM_BYTES(1024) FROM mysql.seq_1_to_1024", i))
	}
	e.replica.WaitCaughtUp(e.t, e.primary, time.Minute)
}

// startWriter keeps writing to the primary until stopped.
func (e *snapEnv) startWriter(from int) *backgroundLoad {
	return e.startLoad("writer", loadOptions{From: from, To: from + 1_000_000})
}

// childPID returns the pid of a child of parent named name whose command
// line has arg (binarc also runs the tools with --version), or 0.
func childPID(parent int, name, arg string) int {
	pids, _ := procfs.PIDs()
	for _, pid := range pids {
		st, err := procfs.ReadStat(pid)
		if err != nil || st.Comm != name || st.PPID != parent {
			continue
		}
		if args, _ := procfs.Cmdline(pid); len(args) > 1 && slices.Contains(args[1:], arg) {
			return pid
		}
	}
	return 0
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// waitChild waits for the snapshot's backup tool to start (mariabackup
// --backup, mariadb-dump --all-databases) and returns its pid.
func waitChild(t *testing.T, p *proc, name, arg string) int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if pid := childPID(p.cmd.Process.Pid, name, arg); pid != 0 {
			return pid
		}
		select {
		case <-p.done:
			t.Fatalf("binarc exited before %s started:\n%s", name, p.out.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatalf("%s did not start within a minute:\n%s", name, p.out.String())
	return 0
}

func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("binarc still running after %s:\n%s", timeout, tail(p.out.String(), 4000))
	}
	if p.exitEr == nil {
		return 0
	}
	if ee, ok := p.exitEr.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	t.Fatalf("binarc: %v", p.exitEr)
	return -1
}

func (e *snapEnv) objStore() objstore.Store {
	e.t.Helper()
	return e.catalog().Store
}

func (e *snapEnv) layout() archive.Layout { return archive.Layout{Cluster: e.cluster} }

// snapshots lists the cluster's snapshots in-process.
func (e *snapEnv) snapshots() []snapshot.Entry {
	e.t.Helper()
	l, err := snapshot.List(context.Background(), e.objStore(), e.layout(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// newest returns the newest complete snapshot's manifest.
func (e *snapEnv) newest() *snapshot.Manifest {
	e.t.Helper()
	l := e.snapshots()
	for i := len(l) - 1; i >= 0; i-- {
		if l[i].Complete {
			return l[i].Manifest
		}
	}
	e.t.Fatal("no complete snapshot")
	return nil
}

// waitSQLRunning waits until the replica's SQL thread runs again.
func (e *snapEnv) waitSQLRunning(timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := e.replica.SlaveStatus(e.t)
		if st["Slave_SQL_Running"] == "Yes" && st["Slave_IO_Running"] == "Yes" {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("replica SQL thread not running %s after the snapshot: IO=%s SQL=%s", timeout, st["Slave_IO_Running"], st["Slave_SQL_Running"])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// bucketState is every object in the bucket with its ETag, and the
// multipart uploads in progress.
func (e *snapEnv) bucketState() (objects map[string]string, uploads []string) {
	e.t.Helper()
	c := e.s3.Client()
	ctx := context.Background()
	objects = map[string]string{}
	pages := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(e.s3.Bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			e.t.Fatalf("list bucket: %v", err)
		}
		for _, o := range page.Contents {
			objects[aws.ToString(o.Key)] = aws.ToString(o.ETag)
		}
	}
	mu, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(e.s3.Bucket)})
	if err != nil {
		e.t.Fatalf("ListMultipartUploads: %v", err)
	}
	for _, u := range mu.Uploads {
		uploads = append(uploads, aws.ToString(u.Key))
	}
	return objects, uploads
}

// download decompresses a snapshot's data object to w.
func (e *snapEnv) download(m *snapshot.Manifest, w io.Writer) {
	e.t.Helper()
	rc, _, err := e.objStore().Get(context.Background(), m.DataKey)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rc.Close()
	dec, err := zstd.NewReader(rc)
	if err != nil {
		e.t.Fatal(err)
	}
	defer dec.Close()
	if _, err := io.Copy(w, dec); err != nil {
		e.t.Fatalf("download %s: %v", m.DataKey, err)
	}
}

// downloadTo runs cmd with the snapshot's data object, decompressed, on
// its standard input; if cmd fails, the test fails with what and cmd's
// output.
func (e *snapEnv) downloadTo(m *snapshot.Manifest, cmd *exec.Cmd, what string) {
	e.t.Helper()
	in, err := cmd.StdinPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.download(m, in)
	in.Close()
	if err := cmd.Wait(); err != nil {
		e.t.Fatalf("%s: %v\n%s", what, err, out.String())
	}
}

// restorePhysical unpacks and prepares a physical snapshot into a fresh
// datadir and starts a server on it.
func (e *snapEnv) restorePhysical(m *snapshot.Manifest) *testenv.MariaDB {
	e.t.Helper()
	dir := filepath.Join(e.t.TempDir(), "restored")
	if err := os.Mkdir(dir, 0o700); err != nil {
		e.t.Fatal(err)
	}
	e.downloadTo(m, exec.Command("mbstream", "-x", "-C", dir), "mbstream -x")
	out, err := exec.Command("mariabackup", "--prepare", "--target-dir="+dir).CombinedOutput()
	if err != nil {
		e.t.Fatalf("mariabackup --prepare: %v\n%s", err, tail(string(out), 3000))
	}
	return testenv.StartMariaDBOn(e.t, dir, 9)
}

// restoreLogical loads a logical snapshot into an empty server.
func (e *snapEnv) restoreLogical(m *snapshot.Manifest) *testenv.MariaDB {
	e.t.Helper()
	srv := testenv.StartMariaDB(e.t, testenv.MariaDBOptions{ServerID: 8, NoLogBin: true})
	client, err := testenv.BinaryPath("mariadb", "mysql")
	if err != nil {
		e.t.Fatal(err)
	}
	load := exec.Command(client, "--no-defaults", "-h127.0.0.1", "-P"+strconv.Itoa(srv.Port), "-uroot", "--max-allowed-packet=1G")
	e.downloadTo(m, load, "load the dump")
	return srv
}

// checksums is CHECKSUM TABLE of every base table outside the system
// schemas, keyed by schema.table.
func checksums(t *testing.T, m *testenv.MariaDB) map[string]string {
	t.Helper()
	tables := m.Rows(t, "SELECT CONCAT('`', table_schema, '`.`', table_name, '`') FROM information_schema.tables "+
		"WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') ORDER BY 1")
	sums := map[string]string{}
	for _, row := range tables {
		r := m.Rows(t, "CHECKSUM TABLE "+row[0])
		sums[row[0]] = r[0][1]
	}
	return sums
}

func compareChecksums(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(want) < 3 {
		t.Fatalf("%s: only %d tables to compare: %v", what, len(want), want)
	}
	for table, sum := range want {
		if got[table] != sum {
			t.Errorf("%s: %s checksum %s, want %s (the primary's at the snapshot's coordinates)", what, table, got[table], sum)
		}
	}
	for table := range got {
		if _, ok := want[table]; !ok {
			t.Errorf("%s: table %s is not in the primary's data at the snapshot's coordinates", what, table)
		}
	}
	t.Logf("%s: %d tables match", what, len(want))
}

// TestSnapshotOfReplicaRestores takes a physical and a logical snapshot of
// a real replica while the primary keeps writing, checks the replica's
// threads while the backup runs and after, and restores both snapshots:
// each must equal, table by table, a second replica stopped at the
// snapshot's recorded coordinates.
func TestSnapshotOfReplicaRestores(t *testing.T) {
	t.Parallel()
	e := newSnapEnv(t)
	// Started now, it replicates nothing until told where to stop.
	stopped := testenv.StartReplica(t, e.primary, testenv.ReplicaOptions{ServerID: 3, FromStart: true})
	e.seed(8)

	w := e.startWriter(1000)
	p := e.start(e.snapshotArgs(physUser)...)
	pid := waitChild(t, p, "mariabackup", "--backup")
	// The password reaches mariabackup in a 0600 option file: not on its
	// command line (ps) nor in its environment.
	for _, f := range []string{"cmdline", "environ"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
		if err == nil && bytes.Contains(b, []byte(replPass)) {
			t.Errorf("mariabackup's %s holds the password", f)
		}
	}
	// While mariabackup runs, the replica's SQL thread is stopped and its
	// IO thread still fetches from the primary.
	var samples int
	for alive(pid) {
		st := e.replica.SlaveStatus(t)
		if !alive(pid) {
			break // the sample may be from after the backup
		}
		samples++
		if st["Slave_IO_Running"] != "Yes" || st["Slave_SQL_Running"] != "No" {
			t.Errorf("during the backup: Slave_IO_Running=%s Slave_SQL_Running=%s; want Yes and No", st["Slave_IO_Running"], st["Slave_SQL_Running"])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code := p.wait(t, 3*time.Minute); code != 0 {
		t.Fatalf("physical snapshot exited %d:\n%s", code, p.out.String())
	}
	if samples == 0 {
		t.Fatal("no replica status sample was taken while mariabackup ran")
	}
	t.Logf("%d replica status samples during the backup", samples)
	e.waitSQLRunning(10 * time.Second)
	phys := e.newest()
	if phys.Method != snapshot.Physical || phys.SourceServerID != 2 || phys.MasterServerID != 1 || phys.Coordinates.From != "replica" ||
		!strings.HasPrefix(phys.Coordinates.File, "mysql-bin.") || phys.Coordinates.GTIDSet == "" || phys.RawSize <= phys.StoredSize/2 {
		t.Errorf("physical manifest: %+v", phys)
	}
	if !strings.Contains(p.out.String(), phys.ID+" complete") {
		t.Errorf("binarc did not print the snapshot id:\n%s", p.out.String())
	}

	// The logical one, with the writer still going.
	out, code := e.run(e.snapshotArgs(logUser, "--method", "logical")...)
	if code != 0 {
		t.Fatalf("logical snapshot exited %d:\n%s", code, out)
	}
	e.waitSQLRunning(10 * time.Second)
	logical := e.newest()
	if logical.Method != snapshot.Logical || logical.Coordinates.From != "replica" || logical.ID == phys.ID {
		t.Errorf("logical manifest: %+v", logical)
	}
	w.stop(t)
	e.replica.WaitCaughtUp(t, e.primary, time.Minute)

	for _, id := range []string{phys.ID, logical.ID} {
		out, code := e.run("verify", "--store", e.store, "--cluster", e.cluster, "--snapshot", id)
		if code != 0 || !strings.Contains(out, "sha256") || !strings.Contains(out, "verified") {
			t.Errorf("verify %s exited %d:\n%s", id, code, out)
		}
	}
	out, code = e.run("ls", "--store", e.store, "--cluster", e.cluster)
	for _, m := range []*snapshot.Manifest{phys, logical} {
		row := ""
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, m.ID) {
				row = line
			}
		}
		if code != 0 || !strings.HasSuffix(row, "complete") || !strings.Contains(row, m.Coordinates.String()) {
			t.Errorf("ls exited %d; want snapshot %s complete at %s:\n%s", code, m.ID, m.Coordinates, out)
		}
	}

	// Restore each and compare with the primary's data at its coordinates.
	stopped.StopAt(t, phys.Coordinates.File, phys.Coordinates.Pos, time.Minute)
	want := checksums(t, stopped)
	restored := e.restorePhysical(phys)
	compareChecksums(t, "physical restore", checksums(t, restored), want)

	if logical.Coordinates.File == phys.Coordinates.File && logical.Coordinates.Pos == phys.Coordinates.Pos {
		t.Fatalf("the writer wrote nothing between the two snapshots (both at %s)", phys.Coordinates)
	}
	stopped.StopAt(t, logical.Coordinates.File, logical.Coordinates.Pos, time.Minute)
	want = checksums(t, stopped)
	compareChecksums(t, "logical restore", checksums(t, e.restoreLogical(logical)), want)
}

// TestSnapshotOfPrimary backs up a server that is no replica, with
// --allow-primary: the coordinates come from mariabackup's stream and from
// the dump, and equal the primary's own position when nothing writes.
func TestSnapshotOfPrimary(t *testing.T) {
	t.Parallel()
	e := newSnapEnv(t)
	if err := writeLoad(context.Background(), e.primary, loadOptions{From: 0, To: 50}); err != nil {
		t.Fatal(err)
	}
	master := e.primary.Rows(t, "SHOW MASTER STATUS")[0]
	gtid := e.primary.Rows(t, "SELECT @@GLOBAL.gtid_binlog_pos")[0][0]
	want := fmt.Sprintf("%s:%s gtid %s", master[0], master[1], gtid)
	args := []string{"snapshot", "--source", e.primary.SourceURL(primUser, ""), "--store", e.store, "--cluster", e.cluster, "--allow-primary"}
	for _, method := range []string{"physical", "logical"} {
		out, code := e.run(append(args, "--method", method)...)
		if code != 0 {
			t.Fatalf("%s snapshot of the primary exited %d:\n%s", method, code, out)
		}
		m := e.newest()
		if m.Coordinates.String() != want || m.MasterServerID != 0 || m.SourceServerID != 1 {
			t.Errorf("%s snapshot of the primary at %s (from %s); want %s", method, m.Coordinates, m.Coordinates.From, want)
		}
		if out, code := e.run("verify", "--store", e.store, "--cluster", e.cluster, "--snapshot", m.ID); code != 0 {
			t.Errorf("verify exited %d:\n%s", code, out)
		}
	}

	// The same into a local directory store.
	dir := "file://" + t.TempDir()
	out, code := e.run("snapshot", "--source", e.primary.SourceURL(primUser, ""), "--store", dir, "--cluster", e.cluster, "--allow-primary", "--method", "logical")
	if code != 0 || !strings.Contains(out, "complete") {
		t.Fatalf("logical snapshot into %s exited %d:\n%s", dir, code, out)
	}
	id := strings.Fields(out[strings.LastIndex(out, "snapshot "):])[1]
	if out, code := e.run("verify", "--store", dir, "--cluster", e.cluster, "--snapshot", id); code != 0 {
		t.Errorf("verify in %s exited %d:\n%s", dir, code, out)
	}

	// One flipped byte in the stored object: verify names the failed check.
	m := e.newest()
	var data bytes.Buffer
	rc, _, err := e.objStore().Get(context.Background(), m.DataKey)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(&data, rc)
	rc.Close()
	b := data.Bytes()
	b[len(b)/2] ^= 0x01
	if _, err := e.objStore().Put(context.Background(), m.DataKey, b, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	out, code = e.run("verify", "--store", e.store, "--cluster", e.cluster, "--snapshot", m.ID)
	expectFailure(t, out, code, "FAILED", "sha256", "snapshot failed verification")
}
