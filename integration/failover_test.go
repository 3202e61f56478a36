package integration

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/integration/testenv"
)

// multiSource is one --source URL naming several servers.
func multiSource(servers ...*testenv.MariaDB) string {
	var hosts []string
	for _, s := range servers {
		hosts = append(hosts, s.Addr())
	}
	return "mysql://" + replUser + "@" + strings.Join(hosts, ",")
}

// TestFailoverPromotion is a hard failover, followed by binarc by itself:
// primary A with replicas R1 (the one promoted) and R2 (snapshotted);
// binarc streams with --source A,R1. R1 stops receiving, A commits rows R1
// never gets, A is SIGKILLed, R1 is promoted and R2 repointed to it; binarc
// switches to R1, starts a timeline joined to A's, and R1 takes a load
// with rotations. From the one snapshot taken before the failover, every
// checkpoint is restored by time and by GTID, and latest, each equal (by
// CHECKSUM TABLE) to what the then-active master held: the rows lost at
// the switch are in the restores before it and in none after it. The plan
// and binarc ls name the lost GTIDs; the join is recorded once.
func TestFailoverPromotion(t *testing.T) {
	t.Parallel()
	e := newSnapEnv(t) // A = e.primary (server_id 1), R2 = e.replica (2)
	a, r2 := e.primary, e.replica
	r1 := testenv.StartReplica(t, a, testenv.ReplicaOptions{ServerID: 3})
	ctx := context.Background()
	load := func(m *testenv.MariaDB, from, to int) {
		t.Helper()
		if err := writeLoad(ctx, m, loadOptions{From: from, To: to, FlushAt: 25}); err != nil {
			t.Fatal(err)
		}
	}
	p := e.start(append([]string{"stream", "--source", multiSource(a, r1)}, e.streamArgs()[3:]...)...)
	// A second cluster archived by a binarc given only A, restarted by hand
	// with --source R1 after the failover.
	restartArgs := func(src *testenv.MariaDB) []string {
		return []string{"stream", "--source", src.SourceURL(replUser, ""), "--store", e.store, "--cluster", "restarted",
			"--flush-interval", "200ms", "--segment-size", "256KiB", "--server-id", "4208"}
	}
	p2 := e.start(restartArgs(a)...)
	load(a, 0, 40)
	r2.WaitCaughtUp(t, a, time.Minute)
	for _, cluster := range []string{e.cluster, "restarted"} {
		if out, code := e.run("snapshot", "--source", r2.SourceURL(physUser, ""), "--store", e.store, "--cluster", cluster); code != 0 {
			t.Fatalf("snapshot of R2 into %s failed:\n%s", cluster, out)
		}
	}
	load(a, 40, 70)
	r1.WaitCaughtUp(t, a, time.Minute)
	r2.WaitCaughtUp(t, a, time.Minute)
	cps := []checkpoint{takeCheckpoint(t, a, "before the failover")}

	// R1 and R2 stop receiving; A commits rows neither ever gets.
	r1.Exec(t, "STOP SLAVE IO_THREAD")
	r2.Exec(t, "STOP SLAVE")
	beforeLost := a.Rows(t, "SELECT @@gtid_binlog_pos")[0][0]
	load(a, 70, 80)
	afterLost := a.Rows(t, "SELECT @@gtid_binlog_pos")[0][0]
	waitBoth := func() {
		t.Helper()
		main := e.cluster
		for _, c := range []string{main, "restarted"} {
			e.cluster = c
			e.waitArchived(time.Minute)
		}
		e.cluster = main
	}
	waitBoth()
	cps = append(cps, takeCheckpoint(t, a, "rows lost at the switch, on A"))
	if cps[1].sums["app.accounts"] == cps[0].sums["app.accounts"] {
		t.Fatal("the lost rows did not change app.accounts")
	}

	a.Kill(t)
	r1.Exec(t, "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = OFF")
	r2.Exec(t, fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos",
		r1.Port, replUser, replPass), "START SLAVE")
	p.waitLog(t, "FAILOVER", time.Minute)
	p2.kill()
	p2 = e.start(restartArgs(r1)...)
	e.primary = r1
	load(r1, 100, 140)
	e.waitArchived(time.Minute)
	cps = append(cps, takeCheckpoint(t, r1, "after the failover, on R1"))
	load(r1, 140, 170)
	r2.WaitCaughtUp(t, r1, time.Minute)
	e.waitArchived(time.Minute)
	cps = append(cps, takeCheckpoint(t, r1, "after a rotation on R1"))
	load(r1, 170, 180) // the last checkpoint's second is then over in the archive too
	waitBoth()
	final := tableChecksums(t, r1)

	if n := len(logLines(p.out.String(), "FAILOVER")); n != 1 {
		t.Errorf("FAILOVER logged %d times, want once", n)
	}
	lost := lostRange(t, beforeLost, afterLost)

	// The plan of a restore across the switch names what was lost.
	out, code := e.run("restore", "--store", e.store, "--cluster", e.cluster, "--to", "latest", "--dry-run")
	if code != 0 || !strings.Contains(out, "lost at the switch") || !strings.Contains(out, lost) || !strings.Contains(out, "chain:") {
		t.Errorf("dry run does not show the chain and the lost range %s (%d):\n%s", lost, code, out)
	}
	t.Logf("plan:\n%s", out)

	for i, cp := range cps {
		for _, to := range []string{cp.time.UTC().Format(time.RFC3339), cp.gtid} {
			srv, out := e.restoreDatadir(t, "--to", to)
			compareChecksums(t, "restore --to "+to+" ("+cp.name+")", tableChecksums(t, srv), cp.sums)
			lostRows := srv.Rows(t, "SELECT COUNT(*) FROM app.accounts WHERE id BETWEEN 70 AND 79")[0][0]
			if want := map[bool]string{true: "10", false: "0"}[i == 1]; lostRows != want {
				t.Errorf("restore --to %s (%s): %s of the rows lost at the switch, want %s\n%s", to, cp.name, lostRows, want, out)
			}
		}
	}
	srv, out := e.restoreDatadir(t, "--to", "latest")
	compareChecksums(t, "restore --to latest", tableChecksums(t, srv), final)
	replayedThroughServe(t, out)

	// The restarted cluster: the same restores across its join (a sample).
	main := e.cluster
	e.cluster = "restarted"
	for _, c := range []struct {
		to   string
		want map[string]string
	}{{cps[1].gtid, cps[1].sums}, {cps[2].time.UTC().Format(time.RFC3339), cps[2].sums}, {"latest", final}} {
		srv, _ := e.restoreDatadir(t, "--to", c.to)
		compareChecksums(t, "restarted cluster: restore --to "+c.to, tableChecksums(t, srv), c.want)
	}
	e.cluster = main
	p2.stop(t)

	// ls: one window across the join, the join with the lost range.
	out, code = e.run("ls", "--store", e.store, "--cluster", e.cluster)
	t.Logf("binarc ls:\n%s", out)
	win := out[strings.Index(out, "restorable (any second in):"):]
	if code != 0 || strings.Count(win, "Z → 20") != 1 || !strings.Contains(win, "across 1 join") || !strings.Contains(win, "lost at the switch") || !strings.Contains(win, lost) {
		t.Errorf("ls does not show one window across the join with the lost range %s:\n%s", lost, out)
	}

	// The stream recorded the join, once.
	cat := e.catalog()
	tls, err := cat.Timelines(ctx)
	if err != nil || len(tls) != 2 {
		t.Fatalf("timelines %v (%v), want 2", tls, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, _, err := objstore.ReadAll(ctx, cat.Store, cat.Layout.JoinKey(tls[1]))
		if err == nil {
			if !strings.Contains(string(data), lost) {
				t.Errorf("recorded join lacks the lost range %s:\n%s", lost, data)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stream did not record the join: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	p.stop(t)
}

// lostRange is the GTID range A wrote between two gtid_binlog_pos values
// of its one domain, as binarc names it ("0-1-140..152").
func lostRange(t *testing.T, before, after string) string {
	t.Helper()
	var d, s, from, to int
	if _, err := fmt.Sscanf(lastGTID(before), "%d-%d-%d", &d, &s, &from); err != nil {
		t.Fatalf("gtid_binlog_pos %q: %v", before, err)
	}
	if _, err := fmt.Sscanf(lastGTID(after), "%d-%d-%d", &d, &s, &to); err != nil {
		t.Fatalf("gtid_binlog_pos %q: %v", after, err)
	}
	return fmt.Sprintf("%d-%d-%d..%d", d, s, from+1, to)
}

// TestMasterMasterFlips: masters A ⇄ B (GTID replication both ways,
// log_slave_updates), only A written; binarc streams with --source A,B; a
// snapshot of the passive B; writes flipped to B, then back to A (the
// servers name their files alike, and A's are archived again under a new
// timeline), then a hard flip to B (A killed) with binarc restarted by hand
// with --source B. Every checkpoint, before, between and after the flips,
// is restored by time and by GTID from the one snapshot, and latest;
// binarc ls shows one window across the three joins.
func TestMasterMasterFlips(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{ServerID: 1, ExtraArgs: []string{"--log-slave-updates=ON", "--relay-log=relay-bin", "--skip-slave-start"}})
	a := e.primary
	a.Exec(t,
		fmt.Sprintf("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'", physUser, replPass),
		fmt.Sprintf("GRANT RELOAD, PROCESS, BINLOG MONITOR, SLAVE MONITOR, REPLICATION SLAVE ADMIN ON *.* TO '%s'@'127.0.0.1'", physUser))
	b := testenv.StartReplica(t, a, testenv.ReplicaOptions{ServerID: 2})
	b.WaitCaughtUp(t, a, time.Minute)
	a.Exec(t, "SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_binlog_pos",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1",
			b.Port, replUser, replPass), "START SLAVE")
	a.WaitReplicating(t, time.Minute)
	ctx := context.Background()
	load := func(m *testenv.MariaDB, from, to int) {
		t.Helper()
		if err := writeLoad(ctx, m, loadOptions{From: from, To: to, FlushAt: 20}); err != nil {
			t.Fatal(err)
		}
	}
	// flip makes to the writable master once it has everything from.
	flip := func(from, to *testenv.MariaDB) {
		t.Helper()
		from.Exec(t, "SET GLOBAL read_only = ON")
		to.WaitCaughtUp(t, from, time.Minute)
		to.Exec(t, "SET GLOBAL read_only = OFF")
		e.primary = to
	}
	p := e.start(append([]string{"stream", "--source", multiSource(a, b)}, e.streamArgs()[3:]...)...)
	load(a, 0, 30)
	b.WaitCaughtUp(t, a, time.Minute)
	if out, code := e.run("snapshot", "--source", b.SourceURL(physUser, ""), "--store", e.store, "--cluster", e.cluster); code != 0 {
		t.Fatalf("snapshot of the passive master B failed:\n%s", out)
	}
	load(a, 30, 50)
	e.waitArchived(time.Minute)
	cps := []checkpoint{takeCheckpoint(t, a, "before the flip, on A")}

	// Writes go on while binarc notices the flip (it checks every 2 s).
	flip(a, b)
	load(b, 100, 140)
	p.waitLog(t, "FAILOVER", time.Minute)
	e.waitArchived(time.Minute)
	cps = append(cps, takeCheckpoint(t, b, "between the flips, on B"))

	flip(b, a)
	load(a, 200, 240)
	deadline := time.Now().Add(time.Minute)
	for len(logLines(p.out.String(), "FAILOVER")) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("binarc did not follow the flip back to A")
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.waitArchived(time.Minute)
	cps = append(cps, takeCheckpoint(t, a, "after the flip back, on A"))

	// A hard flip: A killed mid-stream, B made writable, binarc restarted
	// by hand with --source B.
	load(a, 240, 250)
	a.Kill(t)
	b.Exec(t, "STOP SLAVE", "SET GLOBAL read_only = OFF")
	p.kill()
	p = e.start(append([]string{"stream", "--source", b.SourceURL(replUser, "")}, e.streamArgs()[3:]...)...)
	e.primary = b
	load(b, 300, 340)
	e.waitArchived(time.Minute)
	cps = append(cps, takeCheckpoint(t, b, "after a hard flip to B"))
	load(b, 340, 350)
	e.waitArchived(time.Minute)
	final := tableChecksums(t, b)
	finalGTID := lastGTID(b.Query(t, "SELECT @@gtid_binlog_pos")[0][0])

	snapEnv := &snapEnv{env: e, replica: b}
	for _, cp := range cps {
		for _, to := range []string{cp.time.UTC().Format(time.RFC3339), cp.gtid} {
			srv, _ := snapEnv.restoreDatadir(t, "--to", to)
			compareChecksums(t, "restore --to "+to+" ("+cp.name+")", tableChecksums(t, srv), cp.sums)
		}
	}
	// By position on the newest timeline (named: the flips reused file
	// names), across the three joins.
	tls, err := e.catalog().Timelines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := cps[len(cps)-1]
	to := tls[len(tls)-1] + "/" + last.position
	srv, out := snapEnv.restoreDatadir(t, "--to", to)
	compareChecksums(t, "restore --to "+to+" ("+last.name+")", tableChecksums(t, srv), last.sums)
	replayedThroughServe(t, out)
	srv, out = snapEnv.restoreDatadir(t, "--to", "latest")
	compareChecksums(t, "restore --to latest", tableChecksums(t, srv), final)
	replayedThroughServe(t, out)
	// --skip-gtid across the joins: the last transaction before the
	// checkpoint on B's first timeline left out, the same through serve as
	// through the client, and not the same as with it.
	skipped, out := snapEnv.restoreDatadir(t, "--to", "latest", "--skip-gtid", cps[1].gtid)
	replayedThroughServe(t, out)
	clientSkipped, _ := snapEnv.restoreDatadir(t, "--to", "latest", "--skip-gtid", cps[1].gtid, "--replay", "client")
	compareChecksums(t, "--skip-gtid "+cps[1].gtid+": serve against client", tableChecksums(t, skipped), tableChecksums(t, clientSkipped))
	if maps.Equal(tableChecksums(t, skipped), final) {
		t.Errorf("restore --to latest --skip-gtid %s has every table as with it", cps[1].gtid)
	}
	// binarc serve streams across the three joins: a server restored to
	// the first checkpoint (on A, before the flips) replicates from it by
	// GTID and ends with every table as B has them now.
	behind, _ := snapEnv.restoreDatadir(t, "--to", cps[0].gtid)
	_, port := e.startServe(t)
	replicateFrom(t, behind, port, servePass, "MASTER_USE_GTID=slave_pos")
	waitGTID(t, behind, finalGTID, time.Minute)
	compareChecksums(t, "a replica of binarc serve from before the flips", tableChecksums(t, behind), final)
	if strings.Count(out, "  join ") != 3 {
		t.Errorf("the plan to latest does not cross the three joins:\n%s", out)
	}

	out, code := e.run("ls", "--store", e.store, "--cluster", e.cluster)
	t.Logf("binarc ls:\n%s", out)
	win := out[strings.Index(out, "restorable (any second in):"):]
	if code != 0 || strings.Count(win, "Z → 20") != 1 || !strings.Contains(win, "across 3 join") || strings.Count(win, "  join ") != 3 {
		t.Errorf("ls does not show one window across the three joins:\n%s", out)
	}
	p.stop(t)
}

// TestAddressMovesToAnotherServer: binarc streams from one address (a VIP)
// that moves to the promoted replica while binarc is connected. At its
// reconnect binarc notices the other server (its binlog's format
// description names another server_id) instead of splicing that server's
// file of the same name in, starts a timeline joined to the old one, and
// a restore with no snapshot from the old timeline's first file to latest
// equals the new primary; a bare file name both timelines hold is refused
// as ambiguous.
func TestAddressMovesToAnotherServer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{ServerID: 1})
	a := e.primary
	r1 := testenv.StartReplica(t, a, testenv.ReplicaOptions{ServerID: 3})
	vip := startProxy(t, a.Addr())
	ctx := context.Background()
	p := e.start(append([]string{"stream", "--source", "mysql://" + replUser + "@" + vip.Addr()}, e.streamArgs()[3:]...)...)
	if err := writeLoad(ctx, a, loadOptions{From: 0, To: 40, FlushAt: 15}); err != nil {
		t.Fatal(err)
	}
	r1.WaitCaughtUp(t, a, time.Minute)
	e.waitArchived(time.Minute)

	// A failover behind the address: A dies, R1 is promoted and
	// written to (its file of the name binarc is in grows past binarc's
	// position), then the address moves and the old connection drops.
	aFile := a.Query(t, "SHOW MASTER STATUS")[0][0]
	a.Kill(t) // no STOP event: binarc stands inside aFile, not at a file's end
	r1.Exec(t, "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = OFF")
	for r1.Query(t, "SHOW MASTER STATUS")[0][0] < aFile {
		r1.Exec(t, "FLUSH BINARY LOGS") // the same name as A's file binarc is in
	}
	if err := writeLoad(ctx, r1, loadOptions{From: 100, To: 130}); err != nil {
		t.Fatal(err)
	}
	vip.Retarget(r1.Addr())
	vip.Cut()
	e.primary = r1
	if err := writeLoad(ctx, r1, loadOptions{From: 130, To: 150, FlushAt: 10}); err != nil {
		t.Fatal(err)
	}
	e.waitArchived(time.Minute)
	p.stop(t)
	if !strings.Contains(p.out.String(), "another server answers at this address") {
		t.Errorf("binarc did not notice the other server behind the address by its format description:\n%s", tail(p.out.String(), 4000))
	}

	tls, err := e.catalog().Describe(ctx)
	if err != nil || len(tls) != 2 || tls[1].Info.SourceServerID != 3 {
		t.Fatalf("timelines %d (%v): want a second one, of server_id 3", len(tls), err)
	}
	out, code := e.run("ls", "--store", e.store, "--cluster", e.cluster)
	if code != 0 || !strings.Contains(out, "join "+tls[0].Name+" → "+tls[1].Name) || strings.Contains(out, "BROKEN") {
		t.Errorf("ls does not show the join:\n%s", out)
	}
	target := testenv.StartMariaDB(t, testenv.MariaDBOptions{ServerID: 99, NoLogBin: true})
	restore := func(from string) (string, int) {
		return e.runEnv([]string{"BINARC_TARGET_PASSWORD="}, "restore", "--store", e.store, "--cluster", e.cluster,
			"--from", from, "--to", "latest", "--target", "mysql://root@"+target.Addr())
	}
	both := tls[1].Files[0].File // the new timeline starts at a file of a name the old one has too
	if out, code := restore(both + ":4"); code == 0 || !strings.Contains(out, "ambiguous") || !strings.Contains(out, tls[1].Name) {
		t.Fatalf("a bare file name both timelines hold (%s) must be refused as ambiguous (%d):\n%s", both, code, out)
	}
	first := tls[0].Files[0].File
	out, code = restore(tls[0].Name + "/" + first + ":4")
	if code != 0 {
		t.Fatalf("restore across the join: %s", out)
	}
	compareChecksums(t, "restore --from "+tls[0].Name+"/"+first+":4 --to latest", tableChecksums(t, target), tableChecksums(t, r1))
}

// replayedThroughServe checks a restore's output says its replay went
// through the server's replication applier, one timeline after the other
// (at least two).
func replayedThroughServe(t *testing.T, out string) {
	t.Helper()
	if !strings.Contains(out, "replaying through the server's replication applier") || strings.Contains(out, "mariadb-binlog | mariadb") {
		t.Errorf("the restore did not replay through serve:\n%s", out)
	}
	if want := "replaying timeline 2 of"; !strings.Contains(out, want) {
		t.Errorf("the restore does not say %q:\n%s", want, out)
	}
}
