package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/integration/testenv"
	"github.com/binarc/binarc/internal/procfs"
)

// spooled lists the segments in a spool directory.
func spooled(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, strings.TrimPrefix(path, dir+"/"))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestSemiSyncLocalSpoolArchiverKilled is --semi-sync-durability local:
// the store is slow, so acknowledged commits wait in the spool; binarc is
// killed with SIGKILL mid-run, and the primary with it (its disk deleted),
// so the spool holds the only copy of the newest acknowledged commits.
// Restarted, binarc puts the spool into the store before anything else;
// every acknowledged commit is then in the archive. Ten rounds.
func TestSemiSyncLocalSpoolArchiverKilled(t *testing.T) {
	t.Parallel()
	s3 := testenv.StartS3(t)
	proxy := startProxy(t, strings.TrimPrefix(s3.Endpoint, "http://"))
	viaProxy := []string{"AWS_ENDPOINT_URL_S3=" + proxy.URL()}
	rnd := rand.New(rand.NewSource(time.Now().UnixNano()))
	replayed := 0
	for round := 0; round < 10; round++ {
		proxy.SetLatency(300*time.Millisecond, 0)
		e := newRoundEnv(t, s3, fmt.Sprintf("spool%d", round), semiSyncPrimary(time.Minute))
		spool := t.TempDir()
		args := e.streamArgs("--semi-sync", "--semi-sync-durability", "local", "--spool-dir", spool)
		p := e.startEnv(viaProxy, args...)
		waitSemiSyncReplica(t, e.primary)
		e.primary.Exec(t, "CREATE DATABASE zl", zlTable)

		killAfter := time.Duration(300+rnd.Intn(1200)) * time.Millisecond
		acked := killDuringWrites(t, e, p, killAfter, round)

		left := spooled(t, spool)
		if len(left) > 0 {
			replayed++
			// The store is fast again, but PUTs the dead binarc had sent
			// still land, late, during the replay.
			proxy.SetLatency(0, 0)
			p2 := e.startEnv(viaProxy, args...)
			p2.waitLog(t, "spool replayed into the store", time.Minute)
			p2.kill() // the primary is gone: it would wait for it forever
			if rest := spooled(t, spool); len(rest) != 0 {
				t.Fatalf("round %d: the spool still holds %v after its replay", round, rest)
			}
		}
		checkAcked(t, fmt.Sprintf("round %d (binarc killed after %s, %d segments spooled)", round, killAfter, len(left)), acked, e.archivedRows())
		t.Logf("round %d: killed after %s: %d commits acknowledged, %d segments left in the spool", round, killAfter, len(acked), len(left))
	}
	if replayed == 0 {
		t.Fatal("no round left anything in the spool: the store was not slow enough to test the replay")
	}
}

// vmHWM reads a process's peak resident set size from /proc, in MiB.
func vmHWM(t *testing.T, pid int) float64 {
	t.Helper()
	kb, err := procfs.StatusKB(pid, "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	return float64(kb) / 1024
}

// TestSemiSyncStoreOutageFallback makes the store slow (64 writers, several
// commit groups uploading at once), then unreachable:
// the primary waits for binarc, gives up after its timeout (2 s) and goes
// on asynchronously, and the metric says so; once the store is back binarc
// catches up and the primary waits for it again. The primary is then
// killed with binarc: every commit acknowledged while semi-sync was on is
// in the archive. Peak RSS is read from /proc through all of it.
func TestSemiSyncStoreOutageFallback(t *testing.T) {
	t.Parallel()
	s3 := testenv.StartS3(t)
	proxy := startProxy(t, strings.TrimPrefix(s3.Endpoint, "http://"))
	proxy.SetLatency(50*time.Millisecond, 0)
	e := newRoundEnv(t, s3, "outage", semiSyncPrimary(2*time.Second))
	p := e.startEnv([]string{"AWS_ENDPOINT_URL_S3=" + proxy.URL()}, e.streamArgs("--semi-sync", "--metrics-addr", "127.0.0.1:0")...)
	sc := newScraper(t, p)
	waitSemiSyncReplica(t, e.primary)
	e.primary.Exec(t, "CREATE DATABASE zl", zlTable)
	status := func(want float64) func(metrics) bool {
		return func(m metrics) bool {
			_, known := m[`binarc_semi_sync_primary_status{cluster="outage"}`]
			return known && m.get("binarc_semi_sync_primary_status") == want
		}
	}

	// A slow store: commits wait for it, and are acknowledged. 64 writers
	// keep several commit groups uploading at once.
	before := &ackedRows{}
	ctx, cancel := context.WithCancel(context.Background())
	wait := startWriters(ctx, e.primary, 64, 0, before)
	time.Sleep(1500 * time.Millisecond)
	cancel()
	wait()
	m := sc.waitFor("semi-sync acknowledgements", func(m metrics) bool {
		return m.get("binarc_semi_sync_acks_total") > 0 && m.get("binarc_semi_sync_ack_latency_seconds_count") >= float64(len(before.snapshot()))
	})
	if !status(1)(m) {
		t.Fatalf("the primary should be waiting for binarc:\n%s", binarcSeries(m))
	}
	if yes, _ := strconv.Atoi(statusVar(t, e.primary, "Rpl_semi_sync_master_yes_tx")); yes < len(before.snapshot()) {
		t.Fatalf("the primary counts %d semi-sync acknowledged commits, the clients %d", yes, len(before.snapshot()))
	}

	// The store goes away: the primary waits, then falls back.
	rangesBefore := m.get("binarc_semi_sync_unprotected_ranges_total")
	proxy.SetDown(true)
	during := &ackedRows{}
	ctx, cancel = context.WithCancel(context.Background())
	wait = startWriters(ctx, e.primary, 4, 1_000_000_000, during)
	sc.waitFor("the primary falling back to asynchronous", status(0))
	if statusVar(t, e.primary, "Rpl_semi_sync_master_status") != "OFF" {
		t.Fatal("the metric says the primary fell back, the primary does not")
	}
	sc.waitFor("the fallback counted as an unprotected range", func(m metrics) bool {
		return m.get("binarc_semi_sync_unprotected") == 1 && m.get("binarc_semi_sync_unprotected_ranges_total") > rangesBefore
	})
	time.Sleep(time.Second)
	if len(during.snapshot()) == 0 {
		t.Fatal("no commit went through after the fallback")
	}

	// The store is back: binarc catches up, the primary waits for it again.
	proxy.SetDown(false)
	proxy.SetLatency(0, 0)
	sc.waitFor("the primary waiting for binarc again", status(1))
	sc.waitFor("the unprotected range closed", func(m metrics) bool { return m.get("binarc_semi_sync_unprotected") == 0 })
	cancel()
	wait()
	waitUnprotectedListed(t, e)
	waitSemiSyncReplica(t, e.primary)
	after := &ackedRows{}
	ctx, cancel = context.WithCancel(context.Background())
	wait = startWriters(ctx, e.primary, 4, 2_000_000_000, after)
	time.Sleep(time.Second)

	peak := vmHWM(t, p.cmd.Process.Pid)
	p.kill()
	crashPrimary(t, e.primary)
	wait()
	cancel()
	archived := e.archivedRows()
	checkAcked(t, "before the outage", before.snapshot(), archived)
	checkAcked(t, "after the primary waited again", after.snapshot(), archived)
	t.Logf("acknowledged: %d before the outage, %d during it (asynchronous, not checked), %d after; binarc peak RSS %.1f MiB",
		len(before.snapshot()), len(during.snapshot()), len(after.snapshot()), peak)
	if !raceEnabled && peak > 100 {
		t.Errorf("binarc peak RSS %.1f MiB through the outage, want <= 100 MiB", peak)
	}
}

// bulkLoad writes about mib MiB of incompressible binlog (transactions of
// 512 one-KiB random rows).
func bulkLoad(t *testing.T, m *testenv.MariaDB, mib int) {
	t.Helper()
	m.Exec(t, "CREATE TABLE IF NOT EXISTS zl.bulk (id BIGINT AUTO_INCREMENT PRIMARY KEY, b VARBINARY(1024)) ENGINE=InnoDB")
	values := strings.TrimSuffix(strings.Repeat("(RANDOM_BYTES(1024)),", 512), ",")
	stmts := make([]string, 2*mib)
	for i := range stmts {
		stmts[i] = "INSERT INTO zl.bulk (b) VALUES " + values
	}
	m.Exec(t, stmts...)
}

// TestOutageMemory holds binarc, with default flags, to 100 MiB of peak
// RSS through a store outage under a load that fills its buffer, the
// catch-up after it, and the compaction of the file written meanwhile:
// with --semi-sync (the primary falls back to asynchronous) and without.
// It runs a binarc built without the race detector, so that the bound
// holds in make test too (go test -race), where the other tests' binarc
// has the race detector's memory on top.
func TestOutageMemory(t *testing.T) {
	t.Parallel()
	bin := plainBinarcPath(t)
	for _, mode := range []struct {
		name string
		args []string
	}{{"semi-sync", []string{"--semi-sync"}}, {"async", nil}} {
		t.Run(mode.name, func(t *testing.T) {
			s3 := testenv.StartS3(t)
			proxy := startProxy(t, strings.TrimPrefix(s3.Endpoint, "http://"))
			e := newRoundEnv(t, s3, "memory", semiSyncPrimary(2*time.Second))
			args := append([]string{"stream", "--source", e.primary.SourceURL(replUser, ""), "--store", e.store, "--cluster", e.cluster}, mode.args...)
			p := e.startBinary(bin, []string{"AWS_ENDPOINT_URL_S3=" + proxy.URL()}, args...)
			p.waitLog(t, "streaming from the primary", time.Minute)
			if mode.args != nil {
				waitSemiSyncReplica(t, e.primary)
			}
			e.primary.Exec(t, "CREATE DATABASE zl")

			proxy.SetDown(true)
			bulkLoad(t, e.primary, 150) // past --max-buffer 32MiB: binarc stops reading
			time.Sleep(3 * time.Second)
			proxy.SetDown(false)
			e.primary.Exec(t, "FLUSH BINARY LOGS")
			e.waitArchived(3 * time.Minute)
			e.waitCompacted(3 * time.Minute)

			peak := vmHWM(t, p.cmd.Process.Pid)
			p.stop(t)
			t.Logf("%s: binarc peak RSS %.1f MiB through the outage, catch-up and compaction", mode.name, peak)
			if peak > 100 {
				t.Errorf("binarc peak RSS %.1f MiB, want <= 100 MiB", peak)
			}
		})
	}
}

// TestSemiSyncConnectionCut cuts binarc's connection to the primary, three
// times, while clients commit: binarc reconnects as the semi-sync replica
// and acknowledges on the new connection what it could not on the old, so
// the primary never gives up waiting (Rpl_semi_sync_master_no_tx stays 0),
// and every acknowledged commit is archived.
func TestSemiSyncConnectionCut(t *testing.T) {
	t.Parallel()
	s3 := testenv.StartS3(t)
	e := newRoundEnv(t, s3, "cut", semiSyncPrimary(time.Minute))
	proxy := startProxy(t, e.primary.Addr())
	args := e.streamArgs("--semi-sync")
	args[2] = "mysql://" + replUser + "@" + proxy.Addr()
	p := e.start(args...)
	waitSemiSyncReplica(t, e.primary)
	e.primary.Exec(t, "CREATE DATABASE zl", zlTable)

	rows := &ackedRows{}
	ctx, cancel := context.WithCancel(context.Background())
	wait := startWriters(ctx, e.primary, 8, 0, rows)
	for i := 0; i < 3; i++ {
		time.Sleep(500 * time.Millisecond)
		proxy.Cut()
	}
	time.Sleep(time.Second)
	cancel()
	wait()
	if n := statusVar(t, e.primary, "Rpl_semi_sync_master_no_tx"); n != "0" {
		t.Fatalf("the primary stopped waiting for %s commits: binarc did not acknowledge them after reconnecting", n)
	}
	waitSemiSyncReplica(t, e.primary)
	acked := rows.snapshot()
	p.kill()
	crashPrimary(t, e.primary)
	checkAcked(t, "after three cuts", acked, e.archivedRows())
	if n := len(logLines(p.out.String(), "reconnected to the primary")); n < 1 {
		t.Errorf("no reconnect logged")
	}
	t.Logf("%d commits acknowledged across three connection cuts", len(acked))
}

// waitUnprotectedListed waits until binarc ls lists the fallback as a
// closed range: the store was down when it began, so its records reach
// the archive only after the store is back.
func waitUnprotectedListed(t *testing.T, e *env) {
	t.Helper()
	var out string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		var code int
		out, code = e.run("ls", "--store", e.store, "--cluster", e.cluster)
		if code == 0 && strings.Contains(out, "not zero-loss protected") && strings.Contains(out, "fell back to asynchronous") &&
			strings.Contains(out, " until mysql-bin.") && !strings.Contains(out, "until open") {
			// And in ls --json, for monitoring that reads it.
			js, _ := e.runEnv([]string{"BINARC_LOG_LEVEL=error"}, "ls", "--store", e.store, "--cluster", e.cluster, "--json")
			var got struct {
				Unprotected map[string][]struct {
					FromFile string `json:"from_file"`
					ToFile   string `json:"to_file"`
					Reason   string `json:"reason"`
				} `json:"semi_sync_unprotected"`
			}
			if err := json.Unmarshal([]byte(js), &got); err != nil || len(got.Unprotected) == 0 {
				t.Fatalf("binarc ls --json lacks the fallback (%v):\n%s", err, js)
			}
			for _, us := range got.Unprotected {
				if len(us) == 0 || us[0].ToFile == "" || !strings.Contains(us[0].Reason, "fell back") {
					t.Fatalf("binarc ls --json: the fallback is not a closed range: %+v", us)
				}
			}
			return
		}
	}
	t.Fatalf("binarc ls does not list the fallback as a closed unprotected range:\n%s", out)
}

// TestSemiSyncPipelinedKilled is TestSemiSyncPrimaryKilled with the store
// 10 ms away (S3 Express-like, through the proxy) and several commit
// groups uploading at once (the default --semi-sync-inflight, 16): binarc is killed with
// uploads in flight (some landed, some not, perhaps past a gap), then the
// primary with its disk. Every acknowledged commit is in the archive, and
// in a restore in the first and last rounds. The primary waits
// AFTER_COMMIT in odd rounds: it then lets every commit group wait at once
// (AFTER_SYNC lets two), so more groups are in flight. Ten rounds.
func TestSemiSyncPipelinedKilled(t *testing.T) {
	t.Parallel()
	s3 := testenv.StartS3(t)
	proxy := startProxy(t, strings.TrimPrefix(s3.Endpoint, "http://"))
	proxy.SetLatency(10*time.Millisecond, 2*time.Millisecond)
	viaProxy := []string{"AWS_ENDPOINT_URL_S3=" + proxy.URL()}
	rnd := rand.New(rand.NewSource(time.Now().UnixNano()))
	total := 0
	for round := 0; round < 10; round++ {
		opts := semiSyncPrimary(time.Minute)
		if round%2 == 1 {
			opts.ExtraArgs = append(opts.ExtraArgs, "--rpl-semi-sync-master-wait-point=AFTER_COMMIT")
		}
		e := newRoundEnv(t, s3, fmt.Sprintf("pipe%d", round), opts)
		p := e.startEnv(viaProxy, e.streamArgs("--semi-sync")...)
		total += killRound(t, e, p, rnd, round)
	}
	t.Logf("%d acknowledged commits checked", total)
}

// TestSemiSyncRestartWhileCommitsWait: binarc stops while the primary
// waits for it at every commit (an hour's semi-sync timeout); commits pile
// up, and with them MariaDB's binlog lock (LOCK_log, held by the next
// group-commit leader behind the one waiting after sync). A new binarc
// must resume its dump without asking for that lock, and acknowledge
// them. The fault campaign's --semi-sync run (seed 44) found binarc's
// start-up SHOW BINARY LOGS (its privilege check) waiting for the commits
// and the commits waiting for binarc, until the primary's timeout.
func TestSemiSyncRestartWhileCommitsWait(t *testing.T) {
	t.Parallel()
	s3 := testenv.StartS3(t)
	e := newRoundEnv(t, s3, "restart", semiSyncPrimary(time.Hour))
	p := e.start(e.streamArgs("--semi-sync")...)
	waitSemiSyncReplica(t, e.primary)
	e.primary.Exec(t, "CREATE DATABASE zl", zlTable)
	p.stop(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var rows ackedRows
	wait := startWriters(ctx, e.primary, 3, 1, &rows)
	time.Sleep(2 * time.Second)
	if n := len(rows.snapshot()); n != 0 {
		t.Fatalf("%d commits were acknowledged with binarc stopped: the primary did not wait (the test needs it to)", n)
	}
	p = e.start(e.streamArgs("--semi-sync")...)
	deadline := time.Now().Add(time.Minute)
	for len(rows.snapshot()) < 50 {
		if time.Now().After(deadline) {
			t.Fatalf("a restarted binarc acknowledged %d commits in a minute (the primary waits an hour):\n%s", len(rows.snapshot()), p.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	wait()
	e.waitArchived(time.Minute)
	p.stop(t)
	if n := statusVar(t, e.primary, "Rpl_semi_sync_master_no_tx"); n != "0" {
		t.Errorf("the primary acknowledged %s commits without binarc (a fallback)", n)
	}
	checkAcked(t, "commits waiting across a restart", rows.snapshot(), e.archivedRows())
}

// TestSemiSyncFlipWithoutFallback: a clean flip from A to B under
// --semi-sync, with B a semi-sync primary that waits an hour for an
// acknowledgement. B's first commits wait for binarc, and binarc must
// start B's timeline to give one: listing B's binlogs (SHOW BINARY LOGS,
// SHOW BINLOG EVENTS) waits for the binlog lock those commits hold, so
// binarc now finds the start by a dump from the archived GTID state.
// Every commit on B is acknowledged within a minute, by binarc (B never
// falls back), and is in the archive. Before, they waited out B's timeout.
func TestSemiSyncFlipWithoutFallback(t *testing.T) {
	t.Parallel()
	e, a, b, p := semiSyncPair(t, "flip")
	a.Exec(t, "SET GLOBAL read_only = ON", "SET GLOBAL rpl_semi_sync_master_enabled = OFF")
	b.Exec(t, "STOP SLAVE")
	acked := promoteWaiting(t, e, b, p)
	p.stop(t)
	checkNoFallback(t, e, b, p, acked, "the new timeline starts at the binlog the primary streams the archived GTID state from")
}

// TestSemiSyncHardFailoverWithoutFallback: A dies holding transactions
// binarc archived that its replica B never received (B's IO thread was
// stopped); B is promoted with semi-sync on and waits an hour for an
// acknowledgement. B refuses a dump from the archived end state, so binarc
// asks from the state at the start of the archive's last file, which B
// has: B's first commits are acknowledged by binarc, none waits out the
// timeout (before, binarc listed B's binlogs, which MariaDB holds behind
// those commits).
func TestSemiSyncHardFailoverWithoutFallback(t *testing.T) {
	t.Parallel()
	e, a, b, p := semiSyncPair(t, "hard")
	// B stops receiving; A commits three more, each acknowledged by binarc.
	b.Exec(t, "STOP SLAVE")
	a.Exec(t, "INSERT INTO zl.acked VALUES (3, 0)", "INSERT INTO zl.acked VALUES (4, 0)", "INSERT INTO zl.acked VALUES (5, 0)")
	a.Kill(t)
	acked := promoteWaiting(t, e, b, p)

	// The join names A's three transactions B never had as lost.
	tls, j := waitLastJoin(t, e, p, 2)
	if j.Previous != tls[0] || j.Parent != "" || len(j.Lost) != 1 || !strings.HasPrefix(j.Lost[0], "0-1-") {
		t.Errorf("join of %s: %s; want A's three transactions lost", tls[1], j)
	}
	p.stop(t)
	checkNoFallback(t, e, b, p, acked, "the new timeline starts at the binlog the primary streams an earlier archived GTID state from")
}

// checkNoFallback checks that B, made primary, never acknowledged a commit
// without binarc, that binarc logged how it found B's start once, and that
// every row B acknowledged is in the archive.
func checkNoFallback(t *testing.T, e *env, b *testenv.MariaDB, p *proc, acked []int64, how string) {
	t.Helper()
	if n := statusVar(t, b, "Rpl_semi_sync_master_no_tx"); n != "0" {
		t.Errorf("B acknowledged %s commits without binarc (a fallback)", n)
	}
	if len(logLines(p.out.String(), how)) != 1 {
		t.Errorf("binarc did not log once %q:\n%s", how, tail(p.out.String(), 4000))
	}
	checkAcked(t, "commits on B after it was made primary", acked, e.archivedRows())
}

// semiSyncPair starts A, a semi-sync primary that waits an hour for an
// acknowledgement, its replica B (read-only), and binarc stream --source
// A,B --semi-sync; A commits two rows, the second in a new binlog file,
// and B has both.
func semiSyncPair(t *testing.T, cluster string) (e *env, a, b *testenv.MariaDB, p *proc) {
	t.Helper()
	s3 := testenv.StartS3(t)
	a = testenv.StartMariaDB(t, semiSyncPrimary(time.Hour))
	a.CreateReplicationUser(t, replUser, replPass)
	// B first: its set-up writes on A, which must not wait for binarc.
	b = testenv.StartReplica(t, a, testenv.ReplicaOptions{ServerID: 2})
	b.Exec(t, "SET GLOBAL read_only = ON")
	a.Exec(t, "SET GLOBAL rpl_semi_sync_master_enabled = ON")
	e = &env{t: t, primary: a, s3: s3, store: s3.StoreURL("archive"), cluster: cluster}
	p = e.start(append([]string{"stream", "--source", multiSource(a, b)}, e.streamArgs("--semi-sync")[3:]...)...)
	waitSemiSyncReplica(t, a)
	a.Exec(t, "CREATE DATABASE zl", zlTable, "INSERT INTO zl.acked VALUES (1, 0)", "FLUSH BINARY LOGS", "INSERT INTO zl.acked VALUES (2, 0)")
	b.WaitCaughtUp(t, a, time.Minute)
	return e, a, b, p
}

// promoteWaiting makes B (replication stopped) a writable semi-sync
// primary that waits an hour for an acknowledgement, writes from three
// clients until 50 commits are acknowledged (failing after a minute:
// commits that wait for an acknowledgement binarc never sends), and waits
// until the archive has B's binlog. It returns the acknowledged rows.
func promoteWaiting(t *testing.T, e *env, b *testenv.MariaDB, p *proc) []int64 {
	t.Helper()
	b.Exec(t, "RESET SLAVE ALL", "SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC",
		"SET GLOBAL rpl_semi_sync_master_timeout = 3600000", "SET GLOBAL rpl_semi_sync_master_enabled = ON", "SET GLOBAL read_only = OFF")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var rows ackedRows
	wait := startWriters(ctx, b, 3, 1000, &rows)
	deadline := time.Now().Add(time.Minute)
	for len(rows.snapshot()) < 50 {
		if time.Now().After(deadline) {
			t.Fatalf("B acknowledged %d commits in a minute after it was made primary (it waits an hour for binarc):\n%s", len(rows.snapshot()), tail(p.out.String(), 4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	wait()
	e.primary = b
	e.waitArchived(time.Minute)
	return rows.snapshot()
}
