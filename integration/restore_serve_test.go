package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/integration/testenv"
)

// TestRestoreThroughServe: a --datadir restore applies the binlog through
// the temporary server's replication applier (the default), to a GTID with
// a transaction left out and to the latest, with the same tables as the
// client replay (--replay client) and the primary; afterwards no
// replication connection or file points at binarc.
func TestRestoreThroughServe(t *testing.T) {
	t.Parallel()
	e := newSnapEnv(t)
	ctx := context.Background()
	p := e.start(e.streamArgs()...)
	if err := writeLoad(ctx, e.primary, loadOptions{From: 0, To: 40, FlushAt: 30}); err != nil {
		t.Fatal(err)
	}
	e.caughtUpSnapshot(t, "snapshot", physUser)
	if err := writeLoad(ctx, e.primary, loadOptions{From: 40, To: 90, FlushAt: 30}); err != nil {
		t.Fatal(err)
	}
	before := takeCheckpoint(t, e.primary, "before the DROP")
	e.primary.Exec(t, "DROP TABLE app.accounts")
	drop := lastGTID(e.primary.Query(t, "SELECT @@gtid_binlog_pos")[0][0])
	e.primary.Exec(t, "INSERT INTO app.events (kind, payload) VALUES ('after', 'x')")
	after := tableChecksums(t, e.primary)
	e.waitArchived(time.Minute)

	srv, out := e.restoreDatadir(t, "--to", "latest", "--skip-gtid", drop)
	if !strings.Contains(out, "replaying through the server's replication applier") {
		t.Errorf("the restore did not replay through serve:\n%s", out)
	}
	if lines := logLines(out, "replay progress"); len(lines) == 0 {
		t.Errorf("the restore logged no progress:\n%s", out)
	} else if l := lines[len(lines)-1]; l["bytes"] != l["total_bytes"] || l["transactions"] != l["total_transactions"] || l["transactions"] == float64(0) {
		t.Errorf("the last progress line is not complete: %v", l)
	}
	got := tableChecksums(t, srv)
	if got["app.accounts"] != before.sums["app.accounts"] || got["app.events"] != after["app.events"] {
		t.Errorf("--skip-gtid %s: accounts %s (want %s), events %s (want %s)", drop, got["app.accounts"], before.sums["app.accounts"], got["app.events"], after["app.events"])
	}
	for _, r := range srv.Query(t, "SHOW ALL SLAVES STATUS") {
		for _, v := range r {
			if strings.Contains(v, "binarc") {
				t.Errorf("the restored server keeps a replication connection to binarc: %q", r)
			}
		}
	}
	ents, _ := os.ReadDir(srv.DataDir)
	for _, ent := range ents {
		if strings.Contains(ent.Name(), "binarc") {
			t.Errorf("the restored directory holds %s", filepath.Join(srv.DataDir, ent.Name()))
		}
	}

	clientSrv, out := e.restoreDatadir(t, "--to", before.gtid, "--replay", "client")
	if strings.Contains(out, "replication applier") {
		t.Errorf("--replay client went through serve:\n%s", out)
	}
	serveSrv, _ := e.restoreDatadir(t, "--to", before.gtid)
	compareChecksums(t, "--replay client", tableChecksums(t, clientSrv), before.sums)
	compareChecksums(t, "--replay serve", tableChecksums(t, serveSrv), before.sums)
	p.stop(t)
}

// TestRebuildReplicaFromArchive follows the README: restore --to latest
// into a new directory, start a server on it, let it catch up from binarc
// serve --follow while the primary writes on, switch it to the primary by
// GTID, and it replicates on without error or gap.
func TestRebuildReplicaFromArchive(t *testing.T) {
	t.Parallel()
	e := newSnapEnv(t)
	ctx := context.Background()
	p := e.start(e.streamArgs()...)
	if err := writeLoad(ctx, e.primary, loadOptions{From: 0, To: 30, FlushAt: 20}); err != nil {
		t.Fatal(err)
	}
	e.caughtUpSnapshot(t, "snapshot", physUser)
	if err := writeLoad(ctx, e.primary, loadOptions{From: 30, To: 60, FlushAt: 20}); err != nil {
		t.Fatal(err)
	}
	e.waitArchived(time.Minute)
	srv, _ := e.restoreDatadir(t, "--to", "latest")
	if pos := srv.Query(t, "SELECT @@gtid_slave_pos")[0][0]; pos != e.primary.Query(t, "SELECT @@gtid_binlog_pos")[0][0] {
		t.Fatalf("restored gtid_slave_pos %s, primary at %s", pos, e.primary.Query(t, "SELECT @@gtid_binlog_pos")[0][0])
	}
	_, port := e.startServe(t, "--follow")
	replicateFrom(t, srv, port, servePass, "MASTER_USE_GTID=slave_pos")
	if err := writeLoad(ctx, e.primary, loadOptions{From: 60, To: 100, FlushAt: 20}); err != nil {
		t.Fatal(err)
	}
	e.waitArchived(time.Minute)
	caught := takeCheckpoint(t, e.primary, "archived")
	waitGTID(t, srv, caught.gtid, time.Minute)
	compareChecksums(t, "caught up from the archive", tableChecksums(t, srv), caught.sums)

	switchToPrimary(t, e.env, srv, loadOptions{From: 100, To: 130, FlushAt: 20})
	compareChecksums(t, "replicating from the primary", tableChecksums(t, srv), tableChecksums(t, e.primary))
	checkReplicating(t, srv, "after the switch")
	p.stop(t)
}

// TestRestoreTargetThroughServe: --replay serve into a running --target
// server gives the primary's tables; a target whose server_id is the
// primary's (its applier would skip every event) is refused untouched.
func TestRestoreTargetThroughServe(t *testing.T) {
	t.Parallel()
	e, p := newLoadedEnv(t, 60)
	cp := takeCheckpoint(t, e.primary, "end")
	e.waitArchived(time.Minute)
	target, out := e.restoreInto(t, "--to", "latest", "--replay", "serve", "--replay-threads", "2")
	if !strings.Contains(out, "replaying through the server's replication applier") {
		t.Errorf("--replay serve did not replay through serve:\n%s", out)
	}
	compareChecksums(t, "--target --replay serve", tableChecksums(t, target), cp.sums)

	same := testenv.StartMariaDB(t, testenv.MariaDBOptions{ServerID: e.primary.ServerID, NoLogBin: true})
	out, code := e.runEnv([]string{"BINARC_TARGET_PASSWORD="}, "restore", "--store", e.store, "--cluster", e.cluster,
		"--from", "mysql-bin.000001:4", "--to", "latest", "--replay", "serve", "--target", "mysql://root@"+same.Addr())
	// The archive's own source is refused first, whatever the replay.
	expectFailure(t, out, code, "has server_id 1, the primary", "--force-target")
	// Forced past that, serve still refuses: the target's applier would
	// skip every event carrying its own server_id.
	out, code = e.runEnv([]string{"BINARC_TARGET_PASSWORD="}, "restore", "--store", e.store, "--cluster", e.cluster,
		"--from", "mysql-bin.000001:4", "--to", "latest", "--replay", "serve", "--force-target", "--target", "mysql://root@"+same.Addr())
	expectFailure(t, out, code, "server_id 1 is that of the archived primary of timeline", "--replay client")
	if n := same.Query(t, "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'app'")[0][0]; n != "0" {
		t.Errorf("a refused restore changed the target")
	}
	p.stop(t)
}
