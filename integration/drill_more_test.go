package integration

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/archive/archivetest"
	"github.com/binarc/binarc/drill"
	"github.com/binarc/binarc/internal/binlogtest"
)

// TestDrillFindsRemovedTransaction: one transaction cut out of a complete
// archived file, the events after it renumbered with valid CRC32s, the
// segments and the index rewritten to match. binarc verify sees a sound
// archive; the drill names the table that differs and exits non-zero.
func TestDrillFindsRemovedTransaction(t *testing.T) {
	t.Parallel()
	e := newDrillEnv(t, 0, func(e *snapEnv) {
		e.primary.Exec(t, "CREATE TABLE app.victim (id INT PRIMARY KEY, v VARCHAR(32)) ENGINE=InnoDB")
		for i := 1; i <= 3; i++ {
			e.primary.Exec(t, fmt.Sprintf("INSERT INTO app.victim VALUES (%d, 'victim-%d')", i, i))
		}
		e.primary.Exec(t, "FLUSH BINARY LOGS", "INSERT INTO app.accounts VALUES (800001, 'later', 1, 'x')")
	})
	file := e.removeTransaction(t, "victim-2")
	if out, code := e.verify(); code != 0 {
		t.Fatalf("verify of the tampered archive exited %d (the test meant a change verify cannot see):\n%s", code, out)
	}
	scratch := reachableTempDir(t)
	out, code, rep := e.runDrill(t, e.drillArgs(scratch, e.withReplica()...)...)
	t.Logf("drill (transaction cut from %s):\n%s", file, drillOutput(out))
	if code == 0 || rep.Outcome() != drill.Different || !strings.Contains(out, "DIFFERENT") {
		t.Fatalf("drill of an archive missing a transaction exited %d, outcome %s", code, rep.Outcome())
	}
	for _, tr := range rep.Tables {
		want := drill.Equal
		if tr.Table == "app.victim" {
			want = drill.Different
		}
		if tr.Status != want {
			t.Errorf("%s: %s (%s); want %s", tr.Table, tr.Status, tr.Note, want)
		}
		if tr.Table == "app.victim" && (tr.Rows != 2 || !strings.Contains(tr.Note, "3 rows")) {
			t.Errorf("app.victim's note should say the restore has 2 rows and the replica 3: %+v", tr)
		}
	}
	if got := threadsOf(t, e); got != "Yes/Yes" {
		t.Errorf("replica threads after the drill: %s", got)
	}
	noScratchLeft(t, scratch)
}

// removeTransaction cuts the transaction whose events hold marker out of
// the complete archived file holding it, and returns the file's name.
func (e *snapEnv) removeTransaction(t *testing.T, marker string) string {
	t.Helper()
	ctx := context.Background()
	cat := e.catalog()
	tls, err := cat.Timelines(ctx)
	noErr(t, err)
	tl := tls[len(tls)-1]
	files, err := cat.Files(ctx, tl)
	noErr(t, err)
	for _, f := range files {
		if !f.Indexed {
			continue
		}
		plain, err := archivetest.ReadFile(ctx, cat, tl, f.Name)
		noErr(t, err)
		if !bytes.Contains(plain, []byte(marker)) {
			continue
		}
		noErr(t, archivetest.ReplaceFile(ctx, cat, tl, f.Name, cutTransaction(t, plain, marker)))
		return f.Name
	}
	t.Fatalf("no complete archived file holds %q", marker)
	return ""
}

// cutTransaction removes the transaction holding marker from a binlog
// file (binlogtest.Splice renumbers the later events and gives them valid
// CRC32s).
func cutTransaction(t *testing.T, plain []byte, marker string) []byte {
	t.Helper()
	spans, err := binlogtest.Transactions(plain)
	noErr(t, err)
	for _, sp := range spans {
		if !bytes.Contains(plain[sp.Start:sp.End], []byte(marker)) {
			continue
		}
		out, err := binlogtest.Splice(plain, sp.Start, sp.End, nil)
		noErr(t, err)
		return out
	}
	t.Fatalf("no transaction holds %q", marker)
	return nil
}

// TestDrillLeavesStoppedSQLThread: a replica whose SQL thread its
// operator stopped is compared where it stands and left stopped; when the
// restore's point is past it, the drill does not move it.
func TestDrillLeavesStoppedSQLThread(t *testing.T) {
	t.Parallel()
	e := newDrillEnv(t, 0, nil)
	e.replica.Exec(t, "STOP SLAVE SQL_THREAD")
	scratch := reachableTempDir(t)
	out, code, rep := e.runDrill(t, e.drillArgs(scratch, e.withReplica()...)...)
	if code != 0 || rep.Outcome() != drill.Equal || rep.Count(drill.Equal) != len(rep.Tables) {
		t.Fatalf("drill with the SQL thread stopped at the restore's point exited %d, outcome %s:\n%s", code, rep.Outcome(), drillOutput(out))
	}
	if got := threadsOf(t, e); got != "Yes/No" {
		t.Errorf("replica threads after the drill: %s; want Yes/No, as the operator left them", got)
	}

	// The archive moves on; the replica's SQL thread stays where the
	// operator stopped it.
	at := e.replica.Query(t, "SELECT @@gtid_slave_pos")[0][0]
	p := e.start(e.streamArgs("--no-compact")...)
	e.primary.Exec(t, "INSERT INTO app.accounts VALUES (700001, 'after the stop', 1, 'x')")
	e.waitArchived(time.Minute)
	p.stop(t)
	out, code, rep = e.runDrill(t, e.drillArgs(scratch, e.withReplica()...)...)
	t.Logf("drill:\n%s", drillOutput(out))
	if code != 0 || rep.Outcome() != drill.Incomplete || !strings.Contains(strings.Join(rep.Notes, " "), "stopped by its operator") {
		t.Errorf("drill past the stopped SQL thread exited %d, outcome %s, notes %v", code, rep.Outcome(), rep.Notes)
	}
	if got, now := threadsOf(t, e), e.replica.Query(t, "SELECT @@gtid_slave_pos")[0][0]; got != "Yes/No" || now != at {
		t.Errorf("replica after the drill: threads %s at %s; want Yes/No still at %s", got, now, at)
	}
}

// TestDrillMaxReplicaPause: a pause budget too small for any chunk of a
// large table: the tables are skipped, the report says so, and the
// replica runs again.
func TestDrillMaxReplicaPause(t *testing.T) {
	t.Parallel()
	e := newDrillEnv(t, 8, nil)
	scratch := reachableTempDir(t)
	out, code, rep := e.runDrill(t, e.drillArgs(scratch, append(e.withReplica(), "--chunk-time", "1ms", "--max-replica-pause", "1ms")...)...)
	t.Logf("drill:\n%s", drillOutput(out))
	if code != 0 || rep.Count(drill.Equal) != 0 || rep.Count(drill.Skipped) != len(rep.Tables) {
		t.Fatalf("drill with a 1ms pause exited %d and compared %d tables; want none", code, rep.Count(drill.Equal))
	}
	for _, tr := range rep.Tables {
		if tr.Table == "app.bulk" && (tr.Chunks < 2 || tr.Rows != 8*1024 || !strings.Contains(tr.Note, "--max-replica-pause 1ms")) {
			t.Errorf("app.bulk: %+v; want several chunks, skipped for the pause", tr)
		}
	}
	if !strings.Contains(strings.Join(rep.Notes, " "), "not compared") || !strings.Contains(out, "note:") {
		t.Errorf("the report does not say tables were left out: %v", rep.Notes)
	}
	if got := threadsOf(t, e); got != "Yes/Yes" {
		t.Errorf("replica threads after the drill: %s", got)
	}
}

// TestDrillWithoutReplica: CHECK TABLE and row counts on the restore, its
// GTID position that of the archive's end.
func TestDrillWithoutReplica(t *testing.T) {
	t.Parallel()
	e := newDrillEnv(t, 0, nil)
	scratch := reachableTempDir(t)
	out, code, rep := e.runDrill(t, e.drillArgs(scratch)...)
	t.Logf("drill:\n%s", drillOutput(out))
	if code != 0 || rep.Mode != "check" || rep.Outcome() != drill.Equal || rep.Count(drill.Checked) != len(rep.Tables) || len(rep.Tables) < 4 {
		t.Fatalf("drill without a replica exited %d: %+v", code, rep)
	}
	want := e.primary.Query(t, "SELECT COUNT(*) FROM app.accounts")[0][0]
	for _, tr := range rep.Tables {
		if tr.Table == "app.accounts" && fmt.Sprint(tr.Rows) != want {
			t.Errorf("app.accounts: %d rows restored; the primary has %s", tr.Rows, want)
		}
	}
	if gtid := e.primary.Query(t, "SELECT @@gtid_binlog_pos")[0][0]; rep.GTID != gtid {
		t.Errorf("restored GTID %s; the primary is at %s", rep.GTID, gtid)
	}
	noScratchLeft(t, scratch)

	// The primary given as --replica is refused before anything is
	// restored: a drill never pauses it.
	out, code, rep = e.runDrill(t, e.drillArgs(scratch, "--replica", e.primary.SourceURL(drillUser, ""))...)
	if code != 1 || rep.Outcome() != "failed" || !strings.Contains(out, "looks like the primary") || len(rep.Phases) != 0 {
		t.Errorf("drill against the primary exited %d, outcome %s, phases %v:\n%s", code, rep.Outcome(), rep.Phases, drillOutput(out))
	}
	noScratchLeft(t, scratch)
}

// TestDrillScheduled: binarc drill --schedule drills again and again,
// records each, and exports the last one's metrics.
func TestDrillScheduled(t *testing.T) {
	t.Parallel()
	e := newDrillEnv(t, 0, nil)
	scratch := reachableTempDir(t)
	p := e.start(e.drillArgs(scratch, "--schedule", "@every 1s", "--metrics-addr", "127.0.0.1:0")...)
	deadline := time.Now().Add(4 * time.Minute)
	var recs []*drill.Report
	for len(recs) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d drill records after 4 minutes:\n%s", len(recs), tail(p.out.String(), 4000))
		}
		time.Sleep(time.Second)
		recs = e.drillRecords(t)
	}
	for _, r := range recs {
		if r.Outcome() != drill.Equal {
			t.Errorf("scheduled drill at %s: %s %s", r.Started, r.Outcome(), r.Error)
		}
	}
	s := newScraper(t, p)
	s.waitFor("a successful drill in the series", func(m metrics) bool {
		return m.get("binarc_drill_last_success_timestamp_seconds") >= float64(recs[0].Finished.Unix()) &&
			m.get("binarc_drill_restore_seconds") > 0 && m.get("binarc_drill_tables_different") == 0
	})
	p.stop(t)
	noScratchLeft(t, scratch)
}

// TestDrillReplicaAheadOfTheArchive: beside a primary taking writes, the
// replica is past the restore's point when it is paused: the drill
// brings the restore on to the replica's position from the archive and
// compares there; every table is equal and the replica replicates on.
func TestDrillReplicaAheadOfTheArchive(t *testing.T) {
	t.Parallel()
	e := newDrillEnv(t, 0, nil)
	p := e.start(e.streamArgs("--no-compact")...)
	w := e.startWriter(5000)
	scratch := reachableTempDir(t)
	out, code, rep := e.runDrill(t, e.drillArgs(scratch, e.withReplica()...)...)
	w.stop(t)
	t.Logf("drill:\n%s", drillOutput(out))
	if code != 0 || rep.Outcome() != drill.Equal || rep.Count(drill.Equal) != len(rep.Tables) {
		t.Fatalf("drill beside a writing primary exited %d, outcome %s", code, rep.Outcome())
	}
	if !strings.Contains(strings.Join(rep.Notes, " "), "brought on to its position") {
		t.Errorf("the replica was not ahead of the restore (the writer wrote nothing during the drill?): notes %v", rep.Notes)
	}
	if got := threadsOf(t, e); got != "Yes/Yes" {
		t.Errorf("replica threads after the drill: %s", got)
	}
	e.replica.WaitCaughtUp(t, e.primary, time.Minute)
	p.stop(t)
}

// TestDrillLogicalSnapshot: a logical snapshot is loaded into an empty
// temporary server, as binarc restore --target does, brought to the
// archive's end, and compared with the replica: every table equal.
func TestDrillLogicalSnapshot(t *testing.T) {
	t.Parallel()
	e := newDrillEnvOf(t, logUser, 0, nil)
	scratch := reachableTempDir(t)
	out, code, rep := e.runDrill(t, e.drillArgs(scratch, e.withReplica()...)...)
	t.Logf("drill:\n%s", drillOutput(out))
	if code != 0 || rep.Outcome() != drill.Equal || rep.Count(drill.Equal) != len(rep.Tables) || len(rep.Tables) < 5 || !strings.HasSuffix(rep.Snapshot, "-logical") {
		t.Fatalf("drill of a logical snapshot exited %d, outcome %s, snapshot %s", code, rep.Outcome(), rep.Snapshot)
	}
	phases := map[string]bool{}
	for _, p := range rep.Phases {
		phases[p.Name] = true
	}
	if !phases["load"] || !phases["replay"] || rep.Transactions == 0 {
		t.Errorf("phases %+v, %d transactions; want the dump's load and the replay", rep.Phases, rep.Transactions)
	}
	if got := threadsOf(t, e); got != "Yes/Yes" {
		t.Errorf("replica threads after the drill: %s", got)
	}
	noScratchLeft(t, scratch)
}
