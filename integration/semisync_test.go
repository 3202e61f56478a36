package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/binarc/binarc/integration/testenv"
	"github.com/go-mysql-org/go-mysql/client"
)

// semiSyncPrimary is a primary that, once newRoundEnv turned semi-sync on,
// waits at each commit for a semi-sync replica's acknowledgement after the
// binlog write (AFTER_SYNC), falling back to asynchronous after timeout.
// It starts with semi-sync off so that creating binarc's user does not
// wait for a replica.
func semiSyncPrimary(timeout time.Duration) testenv.MariaDBOptions {
	return testenv.MariaDBOptions{ExtraArgs: []string{
		"--rpl-semi-sync-master-wait-point=AFTER_SYNC",
		"--rpl-semi-sync-master-timeout=" + strconv.FormatInt(timeout.Milliseconds(), 10),
	}}
}

// newRoundEnv is an env with its own primary and cluster on a shared S3
// server.
func newRoundEnv(t *testing.T, s3 *testenv.S3Server, cluster string, opts testenv.MariaDBOptions) *env {
	t.Helper()
	p := testenv.StartMariaDB(t, opts)
	p.CreateReplicationUser(t, replUser, replPass)
	p.Exec(t, "SET GLOBAL rpl_semi_sync_master_enabled = ON")
	return &env{t: t, primary: p, s3: s3, store: s3.StoreURL("archive"), cluster: cluster}
}

// statusVar reads one of the primary's status variables.
func statusVar(t *testing.T, m *testenv.MariaDB, name string) string {
	t.Helper()
	rows := m.Query(t, "SHOW GLOBAL STATUS LIKE '"+name+"'")
	if len(rows) != 1 {
		t.Fatalf("primary has no status variable %s", name)
	}
	return rows[0][1]
}

// waitSemiSyncReplica waits until the primary counts one semi-sync replica
// and waits for it at commit.
func waitSemiSyncReplica(t *testing.T, m *testenv.MariaDB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for statusVar(t, m, "Rpl_semi_sync_master_clients") != "1" || statusVar(t, m, "Rpl_semi_sync_master_status") != "ON" {
		if time.Now().After(deadline) {
			t.Fatalf("binarc did not register as the primary's semi-sync replica within 30s (clients=%s status=%s)",
				statusVar(t, m, "Rpl_semi_sync_master_clients"), statusVar(t, m, "Rpl_semi_sync_master_status"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ackedRows records the rows whose COMMIT the primary acknowledged.
type ackedRows struct {
	mu  sync.Mutex
	ids []int64
}

func (a *ackedRows) add(id int64) {
	a.mu.Lock()
	a.ids = append(a.ids, id)
	a.mu.Unlock()
}

func (a *ackedRows) snapshot() []int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]int64(nil), a.ids...)
}

const zlTable = "CREATE TABLE IF NOT EXISTS zl.acked (id BIGINT PRIMARY KEY, writer INT) ENGINE=InnoDB"

// startWriters runs n clients that insert numbered rows (autocommit), as
// fast as they can, and record each one the primary acknowledged, until
// ctx ends or their connection fails (the primary was killed).
func startWriters(ctx context.Context, m *testenv.MariaDB, n int, base int64, rows *ackedRows) (wait func()) {
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c, err := client.ConnectWithContext(ctx, m.Addr(), m.RootUser, m.RootPassword, "", 5*time.Second)
			if err != nil {
				return
			}
			defer c.Close()
			for i := int64(0); ctx.Err() == nil; i++ {
				id := base + int64(w)*1_000_000 + i
				r, err := c.Execute(fmt.Sprintf("INSERT INTO zl.acked VALUES (%d, %d)", id, w))
				if err != nil {
					return
				}
				r.Close()
				rows.add(id)
			}
		}(w)
	}
	return wg.Wait
}

// archivedRows rebuilds the archive's binlog files with binarc binlog
// fetch and reads the ids inserted into zl.acked with mariadb-binlog.
func (e *env) archivedRows() map[int64]bool {
	e.t.Helper()
	dir := e.t.TempDir()
	out, code := e.run("binlog", "fetch", "--store", e.store, "--cluster", e.cluster, "--dir", dir)
	if code != 0 {
		e.t.Fatalf("binlog fetch failed (%d):\n%s", code, out)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) == 0 {
		e.t.Fatalf("binlog fetch wrote no file:\n%s", out)
	}
	sort.Strings(files)
	ids := map[int64]bool{}
	for _, f := range files {
		cmd := exec.Command(e.primary.MariadbBinlog(), "--no-defaults", "-v", "--base64-output=decode-rows", f)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			e.t.Fatalf("mariadb-binlog cannot read the fetched %s: %v\n%s", filepath.Base(f), err, stderr.String())
		}
		in := false
		sc := bufio.NewScanner(&stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<26)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "### INSERT INTO `zl`.`acked`"):
				in = true
			case in && strings.HasPrefix(line, "###   @1="):
				id, err := strconv.ParseInt(strings.TrimPrefix(line, "###   @1="), 10, 64)
				if err != nil {
					e.t.Fatalf("%s: unexpected row line %q", filepath.Base(f), line)
				}
				ids[id] = true
				in = false
			case !strings.HasPrefix(line, "###"):
				in = false
			}
		}
	}
	return ids
}

// checkAcked fails the test for every acknowledged row not archived.
func checkAcked(t *testing.T, what string, acked []int64, archived map[int64]bool) {
	t.Helper()
	var missing []int64
	for _, id := range acked {
		if !archived[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%s: %d of %d acknowledged commits are not in the archive, e.g. %v", what, len(missing), len(acked), missing[:min(len(missing), 10)])
	}
}

// crashPrimary kills the primary with SIGKILL and deletes its data
// directory: what it had and binarc had not is gone.
func crashPrimary(t *testing.T, m *testenv.MariaDB) {
	t.Helper()
	m.Kill(t)
	if err := os.RemoveAll(m.DataDir); err != nil {
		t.Fatal(err)
	}
}

// TestSemiSyncPrimaryKilled is zero loss with the store's durability: a
// primary waiting for binarc (AFTER_SYNC) is killed at a random moment
// under concurrent commits and its disk deleted; every commit it
// acknowledged is in the archive. Ten rounds, on one S3 server.
func TestSemiSyncPrimaryKilled(t *testing.T) {
	t.Parallel()
	s3 := testenv.StartS3(t)
	rnd := rand.New(rand.NewSource(time.Now().UnixNano()))
	total := 0
	for round := 0; round < 10; round++ {
		e := newRoundEnv(t, s3, fmt.Sprintf("kill%d", round), semiSyncPrimary(time.Minute))
		p := e.start(e.streamArgs("--semi-sync")...)
		total += killRound(t, e, p, rnd, round)
	}
	t.Logf("%d acknowledged commits checked", total)
}

// killRound is one of the ten rounds of the kill tests, p being binarc
// streaming with --semi-sync from e's primary. Once binarc is the
// primary's semi-sync replica, it kills both at a random moment under
// concurrent commits and checks that every commit the primary
// acknowledged is in the archive, and, in the first and last rounds, in a
// restore from it. It returns how many commits were acknowledged.
func killRound(t *testing.T, e *env, p *proc, rnd *rand.Rand, round int) int {
	t.Helper()
	waitSemiSyncReplica(t, e.primary)
	e.primary.Exec(t, "CREATE DATABASE zl", zlTable)

	killAfter := time.Duration(200+rnd.Intn(1300)) * time.Millisecond
	acked := killDuringWrites(t, e, p, killAfter, round)
	archived := e.archivedRows()
	checkAcked(t, fmt.Sprintf("round %d (killed after %s)", round, killAfter), acked, archived)
	t.Logf("round %d: killed after %s: %d commits acknowledged, %d rows archived", round, killAfter, len(acked), len(archived))
	if round == 0 || round == 9 {
		// And in a restore from the archive, the primary gone.
		checkAcked(t, fmt.Sprintf("round %d, restored", round), acked, e.restoredRows())
	}
	return len(acked)
}

// killDuringWrites runs 8 clients committing numbered rows, and after
// killAfter kills binarc and then the primary with SIGKILL (binarc first,
// so that what it received and had not stored cannot reach the store
// after the primary's death). It returns the ids the primary acknowledged.
func killDuringWrites(t *testing.T, e *env, p *proc, killAfter time.Duration, round int) []int64 {
	t.Helper()
	rows := &ackedRows{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wait := startWriters(ctx, e.primary, 8, 0, rows)
	time.Sleep(killAfter)
	p.kill()
	crashPrimary(t, e.primary)
	wait()
	acked := rows.snapshot()
	if len(acked) == 0 {
		t.Fatalf("round %d: no commit was acknowledged in %s", round, killAfter)
	}
	return acked
}

// restoredRows restores the whole archive into a new server (the primary
// is gone) and returns the ids of the rows it holds.
func (e *env) restoredRows() map[int64]bool {
	e.t.Helper()
	target := testenv.StartMariaDB(e.t, testenv.MariaDBOptions{ServerID: 99, NoLogBin: true})
	out, code := e.runEnv([]string{"BINARC_TARGET_PASSWORD="}, "restore", "--store", e.store, "--cluster", e.cluster,
		"--from", "mysql-bin.000001:4", "--to", "latest", "--target", "mysql://root@"+target.Addr())
	if code != 0 {
		e.t.Fatalf("restore after the crash failed (%d):\n%s", code, out)
	}
	ids := map[int64]bool{}
	for _, r := range target.Query(e.t, "SELECT id FROM zl.acked") {
		id, err := strconv.ParseInt(r[0], 10, 64)
		if err != nil {
			e.t.Fatal(err)
		}
		ids[id] = true
	}
	return ids
}

// TestSemiSyncBadInput: semi-sync flags that cannot work are refused at
// once, with exit status 2 and the fix.
func TestSemiSyncBadInput(t *testing.T) {
	t.Parallel()
	base := []string{"stream", "--source", "mysql://binarc@127.0.0.1:1", "--store", t.TempDir(), "--cluster", "c"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--spool-dir", t.TempDir()}, "only apply with --semi-sync"},
		{[]string{"--semi-sync-durability", "local"}, "only apply with --semi-sync"},
		{[]string{"--semi-sync", "--semi-sync-durability", "local"}, "needs --spool-dir"},
		{[]string{"--semi-sync", "--spool-dir", t.TempDir()}, "only used with --semi-sync-durability local"},
		{[]string{"--semi-sync", "--semi-sync-durability", "disk"}, `must be one of "store","local"`},
	} {
		out, err := exec.Command(binarcPath, append(base, c.args...)...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), c.want) {
			t.Errorf("binarc %v: %v, want exit status 2 and %q in:\n%s", c.args, err, c.want, out)
		}
	}
}
