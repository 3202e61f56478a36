package chaos

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/internal/testenv"
)

// binlogText is mariadb-binlog output for three transactions of a file,
// trimmed to the lines the checker reads.
func binlogText(gtids ...string) string {
	var b strings.Builder
	b.WriteString("# at 4\n#261206 15:00:00 server id 1  end_log_pos 256 CRC32 0x1  Start: binlog v 4\n")
	for i, g := range gtids {
		pos := 300 + i*400
		b.WriteString("# at " + itoa(pos) + "\n")
		b.WriteString("#261206 15:00:01 server id 1  end_log_pos " + itoa(pos+42) + " CRC32 0x2  GTID " + g + " trans\n")
		b.WriteString("/*M!100001 SET @@session.gtid_seq_no=1*//*!*/;\nBEGIN\n")
		b.WriteString("# at " + itoa(pos+42) + "\n#261206 15:00:01 server id 1  end_log_pos " + itoa(pos+300) + " CRC32 0x3  Write_rows: table id 1 flags: STMT_END_F\n")
	}
	return b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestParseBinlogText(t *testing.T) {
	ev := parseBinlogText(binlogText("0-1-1", "0-1-2"), "000001-x", "mysql-bin.000001")
	if len(ev) != 2 || ev[0].GTID != "0-1-1" || ev[0].Pos != 300 || ev[1].Pos != 700 || ev[1].File != "mysql-bin.000001" {
		t.Fatalf("parsed %+v", ev)
	}
}

// acked makes the records of acknowledged transactions with these GTIDs,
// all on the final master.
func acked(gtids ...string) ([]Tx, map[int64]bool) {
	final := map[int64]bool{}
	var recs []Tx
	for i, g := range gtids {
		id := int64(10_000_001 + i)
		recs = append(recs, Tx{ID: id, Writer: 1, Status: Acked, GTID: g, Server: "A", At: time.Unix(int64(1000+i), 0)})
		final[id] = true
	}
	return recs, final
}

// TestCheckerFindsARemovedSegment: an archive one of whose segments lost
// its transactions (the file still reads, CRCs and index fine) is reported
// by check 1, naming each missing transaction.
func TestCheckerFindsARemovedSegment(t *testing.T) {
	recs, final := acked("0-1-1", "0-1-2", "0-1-3", "0-1-4")
	whole := Timeline{Name: "000001-a", Events: parseBinlogText(binlogText("0-1-1", "0-1-2", "0-1-3", "0-1-4"), "000001-a", "mysql-bin.000001")}
	hist, problems := History([]Timeline{whole})
	if m := Missing(recs, final, hist); len(m) != 0 || len(problems) != 0 {
		t.Fatalf("the whole archive: missing %v, problems %v", m, problems)
	}
	cut := Timeline{Name: "000001-a", Events: parseBinlogText(binlogText("0-1-1", "0-1-4"), "000001-a", "mysql-bin.000001")}
	hist, _ = History([]Timeline{cut})
	m := Missing(recs, final, hist)
	if len(m) != 2 || !strings.Contains(m[0], "0-1-2") || !strings.Contains(m[1], "0-1-3") || !strings.Contains(m[0], "row 10000002") {
		t.Fatalf("a segment's transactions removed: the checker reported %q", m)
	}
}

// TestHistoryFollowsARejoin: a server that rejoins an older timeline's
// history (its join names that timeline as parent) continues it; the
// timeline between is not in the history.
func TestHistoryFollowsARejoin(t *testing.T) {
	a := Timeline{Name: "000001-a", Events: parseBinlogText(binlogText("0-1-1", "0-1-2", "0-1-3"), "000001-a", "mysql-bin.000001")}
	b := Timeline{Name: "000002-b", Events: parseBinlogText(binlogText("0-1-1", "0-1-2", "0-1-3", "0-2-4"), "000002-b", "mysql-bin.000001")}
	b.Join = &JoinPoint{Timeline: b.Name, Previous: a.Name, At: Coord{File: "mysql-bin.000001", Offset: 1400}, PreviousEnd: Coord{File: "mysql-bin.000001", Offset: 1400}}
	empty := Timeline{Name: "000003-x"} // holds no binlog: no step, no join
	c := Timeline{Name: "000004-c", Events: parseBinlogText(binlogText("0-1-1", "0-1-2", "0-3-3"), "000004-c", "mysql-bin.000001")}
	c.Join = &JoinPoint{Timeline: c.Name, Previous: b.Name, Parent: a.Name, At: Coord{File: "mysql-bin.000001", Offset: 1100}, PreviousEnd: Coord{File: "mysql-bin.000001", Offset: 1100}}
	hist, problems := History([]Timeline{a, b, empty, c})
	var got []string
	for _, e := range hist {
		got = append(got, e.Timeline+":"+e.GTID)
	}
	if want := "000001-a:0-1-1 000001-a:0-1-2 000004-c:0-3-3"; strings.Join(got, " ") != want || len(problems) != 0 || len(Duplicates(hist)) != 0 {
		t.Fatalf("history %v (problems %v), want %s", got, problems, want)
	}
}

// TestCheckerFindsADuplicateAcrossAJoin: the new timeline's join says it
// starts after 0-1-3, but one timeline repeats 0-1-3 past the join point:
// check 2 names the transaction; with the join honoured nothing is twice.
func TestCheckerFindsADuplicateAcrossAJoin(t *testing.T) {
	prev := Timeline{Name: "000001-a", Events: parseBinlogText(binlogText("0-1-1", "0-1-2", "0-1-3"), "000001-a", "mysql-bin.000001")}
	// B's file holds A's three (replicated) and one of its own.
	next := Timeline{Name: "000002-b", Events: parseBinlogText(binlogText("0-1-1", "0-1-2", "0-1-3", "0-2-4"), "000002-b", "mysql-bin.000001")}
	next.Join = &JoinPoint{Timeline: "000002-b", Previous: "000001-a", At: Coord{File: "mysql-bin.000001", Offset: 1400}, PreviousEnd: Coord{File: "mysql-bin.000001", Offset: 1400}}
	hist, problems := History([]Timeline{prev, next})
	if d := Duplicates(hist); len(d) != 0 || len(problems) != 0 || len(hist) != 4 {
		t.Fatalf("an honest join: duplicates %v, problems %v, history %v", d, problems, hist)
	}
	// The join placed one transaction too early: 0-1-3 is on both sides.
	next.Join.At.Offset = 1100
	hist, _ = History([]Timeline{prev, next})
	d := Duplicates(hist)
	if len(d) != 1 || !strings.Contains(d[0], "0-1-3") || !strings.Contains(d[0], "000001-a") || !strings.Contains(d[0], "000002-b") {
		t.Fatalf("a transaction duplicated across the join: the checker reported %q", d)
	}
	// A timeline with no join.json is reported too.
	next.Join = nil
	if _, problems := History([]Timeline{prev, next}); len(problems) != 1 {
		t.Fatalf("a missing join.json: problems %v", problems)
	}
}

// TestModelAt: the model counts the acknowledged rows before the
// checkpoint on the winning history, leaves lost ones out, and drops a hot
// row an uncertain transaction touched.
func TestModelAt(t *testing.T) {
	recs, final := acked("0-1-1", "0-1-2", "0-1-3")
	recs[0].HotKey, recs[1].HotKey = 1, 2
	delete(final, recs[2].ID) // lost
	recs = append(recs, Tx{ID: 99, Status: Uncertain, HotKey: 2, At: time.Unix(1001, 5)})
	m := ModelAt(recs, final, Checkpoint{Time: time.Unix(1010, 0)})
	if m.Count != 2 || m.Hot[1] != recs[0].ID || len(m.Excluded) != 1 {
		t.Fatalf("model %+v", m)
	}
	if _, ok := m.Hot[2]; ok {
		t.Fatalf("hot row 2, touched by an uncertain transaction, is in the model: %v", m)
	}
	if early := ModelAt(recs, final, Checkpoint{Time: time.Unix(1001, 0)}); early.Count != 1 {
		t.Fatalf("model before the second commit: %v", early)
	}
}

// TestModelAtTheCheckpointsRows: a checkpoint that read the server's rows
// is modelled by them, not by the final master: a row the cluster later
// lost (it went on from an older branch) is in the model, and the
// checkpoint is skipped only when that row never reached the archive.
func TestModelAtTheCheckpointsRows(t *testing.T) {
	recs, final := acked("0-1-1", "0-1-2", "0-1-3")
	delete(final, recs[1].ID) // not on the final master
	k := Checkpoint{Time: time.Unix(1010, 0), Rows: idRangesOf([][]string{{"10000001"}, {"10000002"}, {"10000003"}})}
	if m := ModelAt(recs, final, k); m.Count != 3 {
		t.Fatalf("model %v: want the three rows the server had", m)
	}
	if !k.Rows.Has(10000002) || k.Rows.Has(10000004) || len(k.Rows) != 1 {
		t.Fatalf("rows %v", k.Rows)
	}
	loss := Loss{Tx: recs[1], Archived: "declared lost by the join of 000009-x"}
	if lostBefore([]Loss{loss}, k) {
		t.Fatal("a row the archive has on the branch the checkpoint is on: skipped")
	}
	loss.Archived = neverArchived + "; acknowledged during the semi-sync fallback x"
	if !lostBefore([]Loss{loss}, k) {
		t.Fatal("a row the checkpoint's server had that never reached the archive: not skipped")
	}
	if lostBefore([]Loss{loss}, Checkpoint{Time: k.Time, Rows: idRangesOf([][]string{{"10000001"}})}) {
		t.Fatal("a row the checkpoint's server did not have: skipped")
	}
}

// TestScheduleIsReproducible: a seed gives the same schedule every time,
// and another seed another.
func TestScheduleIsReproducible(t *testing.T) {
	a, b, c := NewSchedule(7, 3*time.Minute), NewSchedule(7, 3*time.Minute), NewSchedule(8, 3*time.Minute)
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("schedules of one seed: %d and %d steps", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("step %d differs: %v vs %v", i, a[i], b[i])
		}
		if i > 0 && a[i].At < a[i-1].At {
			t.Fatalf("steps out of order at %d", i)
		}
	}
	same := len(a) == len(c)
	for i := 0; same && i < len(a); i++ {
		same = a[i] == c[i]
	}
	if same {
		t.Fatal("seeds 7 and 8 drew the same schedule")
	}
}

// TestDeclareLosses: a loss in a join's lost range is named as declared by
// it; one outside every range never reached binarc.
func TestDeclareLosses(t *testing.T) {
	losses := []Loss{{Tx: Tx{GTID: "0-1-1947"}}, {Tx: Tx{GTID: "0-1-1994"}}, {Tx: Tx{GTID: "0-11-7"}}}
	tls := []Timeline{{Name: "000001-a"}, {Name: "000002-b", Join: &JoinPoint{Lost: []string{"0-1-1946..1993", "0-11-7"}}}}
	DeclareLosses(losses, tls)
	if !strings.Contains(losses[0].Archived, "000002-b") || losses[1].Archived != "never reached binarc" || !strings.Contains(losses[2].Archived, "000002-b") {
		t.Fatalf("losses %+v", losses)
	}
}

// TestModelHotRowByGTID: the hot row's value is the update with the
// highest GTID before the checkpoint, even when its record came first.
func TestModelHotRowByGTID(t *testing.T) {
	recs, final := acked("0-1-8", "0-1-7")
	recs[0].HotKey, recs[1].HotKey = 4, 4
	m := ModelAt(recs, final, Checkpoint{Time: time.Unix(1010, 0)})
	if m.Hot[4] != recs[0].ID {
		t.Fatalf("hot row 4 = %d, want %d (GTID 0-1-8)", m.Hot[4], recs[0].ID)
	}
}

// TestChooseTimeline replays seed 11's CI failure: B's timelines 4 (from
// mysql-bin.000023) and 6 (from mysql-bin.000034, joined at 25178), a
// checkpoint on B at mysql-bin.000034 taken a second before timeline 6 was
// named. The position belongs to timeline 6's server files, before its
// join, so it is the previous timeline's state, not timeline 4's.
func TestChooseTimeline(t *testing.T) {
	metas := []timelineMeta{
		{Name: "000003-a", ServerID: 1, StartFile: "mysql-bin.000014"},
		{Name: "000004-b", ServerID: 2, StartFile: "mysql-bin.000023", Join: &JoinPoint{At: Coord{File: "mysql-bin.000023", Offset: 119757}}},
		{Name: "000005-c", ServerID: 11, StartFile: "mysql-bin.000032", Join: &JoinPoint{At: Coord{File: "mysql-bin.000032", Offset: 129941}}},
		{Name: "000006-d", ServerID: 2, StartFile: "mysql-bin.000034", Join: &JoinPoint{At: Coord{File: "mysql-bin.000034", Offset: 25178}}},
	}
	for _, c := range []struct {
		file, pos, want, err string
	}{
		{"mysql-bin.000034", "358", "", "before 000006-d's join"},
		{"mysql-bin.000034", "30000", "000006-d", ""},
		{"mysql-bin.000035", "4", "000006-d", ""},
		{"mysql-bin.000030", "900", "000004-b", ""},
		{"mysql-bin.000023", "200", "", "before 000004-b's join"},
		{"mysql-bin.000010", "4", "", "no timeline of server B"},
	} {
		got, err := chooseTimeline(metas, Checkpoint{Server: "B", ID: 2, File: c.file, Pos: c.pos})
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s:%s: got %q, %v; want an error naming %q", c.file, c.pos, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s:%s: got %q, %v; want %s", c.file, c.pos, got, err, c.want)
		}
	}
	if !binlogFileLE("mysql-bin.999999", "mysql-bin.1000000") || binlogFileLE("mysql-bin.000010", "mysql-bin.000009") {
		t.Error("binlogFileLE orders files by their numbers")
	}
}

// TestFallbackCovers: a loss is excused under --semi-sync only when its
// server acknowledged it while that server had fallen back to
// asynchronous, give or take the sampling period.
func TestFallbackCovers(t *testing.T) {
	at := time.Unix(1000, 0)
	fs := []Fallback{{Server: "A", From: at, To: at.Add(5 * time.Second)}, {Server: "B", From: at.Add(time.Minute)}}
	for _, c := range []struct {
		server string
		t      time.Time
		want   bool
	}{
		{"A", at.Add(2 * time.Second), true},
		{"A", at.Add(-100 * time.Millisecond), true},
		{"A", at.Add(-time.Second), false},
		{"A", at.Add(6 * time.Second), false},
		{"B", at.Add(2 * time.Second), false},
		{"B", at.Add(2 * time.Minute), true}, // open until the server went away
	} {
		if _, got := inFallback(fs, Tx{Server: c.server, At: c.t}); got != c.want {
			t.Errorf("%s at %v: covered %v, want %v", c.server, c.t.Sub(at), got, c.want)
		}
	}
}

// TestAfterEachSnapshot: each snapshot gets the first checkpoint after it,
// if one comes before the next snapshot.
func TestAfterEachSnapshot(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(int64(1000+s), 0) }
	ks := []Checkpoint{{Time: at(5), GTID: "a"}, {Time: at(12), GTID: "b"}, {Time: at(14), GTID: "c"}, {Time: at(40), GTID: "d"}}
	got := afterEachSnapshot(ks, []time.Time{at(1), at(10), at(20), at(30)})
	var names []string
	for _, k := range got {
		names = append(names, k.GTID)
	}
	if strings.Join(names, ",") != "a,b,d" {
		t.Fatalf("checkpoints after each snapshot: %v; want a (after 1), b (after 10), none between 20 and 30, d (after 30)", names)
	}
}

// TestArchivedEnd: how far a timeline directory holds a file, from its
// index or its segments' names.
func TestArchivedEnd(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "mysql-bin.000002"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"mysql-bin.000002/00000000000000000000-00000000000000005526.zst", "mysql-bin.000002/00000000000000005526-00000000000000007648.zst"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "mysql-bin.000001.index.json"), []byte(`{"version":1,"size":131254}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]uint64{"mysql-bin.000001": 131254, "mysql-bin.000002": 7648, "mysql-bin.000003": 0} {
		if got := archivedEnd(dir, file); got != want {
			t.Errorf("%s: %d, want %d", file, got, want)
		}
	}
}

// TestExitedByItself: a binarc stream run that ends without the campaign
// stopping it is reported with its last log line (check 6); one the
// campaign killed is not.
func TestExitedByItself(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "stream-001.log")
	start := func() *binarcRun {
		p, err := testenv.StartProcess("binarc stream", exec.Command("sh", "-c", "echo 'binarc: error: access denied' >> "+logPath+"; exit 3"))
		if err != nil {
			t.Fatal(err)
		}
		<-p.Done()
		return &binarcRun{n: 1, proc: p, logPath: logPath}
	}
	if d := start().exitedByItself(); !strings.Contains(d, "run 1") || !strings.Contains(d, "access denied") {
		t.Fatalf("a run that exited by itself: %q", d)
	}
	killed := start()
	killed.kill()
	if d := killed.exitedByItself(); d != "" {
		t.Fatalf("a run the campaign killed is reported: %q", d)
	}
}

// TestSwitchUnseen: a checkpoint on the new primary right after a hard
// failover, before the new primary's first commit in an earlier second, is
// the old primary's history by time (the 20-minute run's one mismatch);
// once the new primary has committed a second before, it is not.
func TestSwitchUnseen(t *testing.T) {
	flip := time.Unix(1000, 500_000_000)
	k := Checkpoint{Time: time.Unix(1001, 0), Server: "B"}
	recs := []Tx{{ID: 1, Server: "A", At: time.Unix(1000, 400_000_000)}}
	if !switchUnseen(recs, []time.Time{flip}, k) {
		t.Fatal("no commit on B since the flip: the switch is unseen")
	}
	recs = append(recs, Tx{ID: 2, Server: "B", At: time.Unix(999, 0).Add(time.Second + 600_000_000)})
	if switchUnseen(recs, []time.Time{flip}, Checkpoint{Time: time.Unix(1002, 0), Server: "B"}) != false {
		t.Fatal("B committed in the second before the checkpoint's: the switch is seen")
	}
	if switchUnseen(recs, []time.Time{time.Unix(1005, 0)}, k) {
		t.Fatal("a flip after the checkpoint")
	}
}

// TestErrorLines: a failed restore's verdict keeps binarc's error line
// even when many log lines follow it (seed 44's lost its cause).
func TestErrorLines(t *testing.T) {
	out := "a\nbinarc: error: plan: no archived file holds mysql-bin.000008:390\nb\nc\nd\ne\nf\ng\n"
	got := errorLines(out, 2)
	if got != "binarc: error: plan: no archived file holds mysql-bin.000008:390\nf\ng" {
		t.Fatalf("errorLines:\n%s", got)
	}
	if got := errorLines("x\ny\nz", 2); got != "y\nz" {
		t.Fatalf("no error line: %q", got)
	}
}
