package restore

import (
	"context"
	"encoding/binary"
	"sort"
	"strings"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/replication"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/binarc/binarc/replication"
)

const ctl3 = "000003-20261125T002000Z"

// twoJoinArchive: three timelines, two joins, two files on each of the
// first two. Server 1 wrote 0-1-1..5 (timeline 1); server 2 had 0-1-1..4
// when it was promoted at 110 and wrote 0-2-5..8 (timeline 2, 0-1-5
// lost); server 3 had up to 0-2-7 when it was promoted at 130 and wrote
// 0-3-8, 0-3-9 (timeline 3, 0-2-8 lost). Each server names its files
// differently, so a bare FILE:POS names one timeline.
func twoJoinArchive(t *testing.T) (archive.Catalog, map[string][]*fakeFile) {
	b := threeTimelines(t)
	old := []string{"0-1-1", "0-1-2", "0-1-3", "0-1-4"}
	b.add(ctl1, "mysql-bin.000001", nil, old[:3], []int{100, 101, 102})
	b.add(ctl1, "mysql-bin.000002", []string{"0-1-3"}, []string{"0-1-4", "0-1-5"}, []int{103, 104})
	b.add(ctl2, "s2-bin.000001", nil, append(old, "0-2-5", "0-2-6"), []int{100, 101, 102, 103, 120, 121})
	b.add(ctl2, "s2-bin.000002", []string{"0-1-4", "0-2-6"}, []string{"0-2-7", "0-2-8"}, []int{122, 123})
	b.add(ctl3, "s3-bin.000001", nil, append(old, "0-2-5", "0-2-6", "0-2-7", "0-3-8", "0-3-9"), []int{100, 101, 102, 103, 120, 121, 122, 140, 141})
	return b.cat, b.files
}

// archiveBuilder stores timelines ctl1, ctl2 and ctl3 (servers 1, 2 and
// 3, created at 0, 110 and 130) and the files added to them.
type archiveBuilder struct {
	t     *testing.T
	mem   *objstore.Memory
	cat   archive.Catalog
	files map[string][]*fakeFile
}

func threeTimelines(t *testing.T) *archiveBuilder {
	mem := objstore.NewMemory()
	l := archive.Layout{Cluster: "c"}
	putTimeline(t, mem, l, ctl1, 1, at(0))
	putTimeline(t, mem, l, ctl2, 2, at(110))
	putTimeline(t, mem, l, ctl3, 3, at(130))
	return &archiveBuilder{t: t, mem: mem, cat: archive.Catalog{Store: mem, Layout: l}, files: map[string][]*fakeFile{}}
}

// add stores file name of timeline tl, starting at GTID state start, with
// one transaction per GTID at the given seconds.
func (b *archiveBuilder) add(tl, name string, start []string, gtids []string, times []int) {
	f := newFakeFile(name, start)
	for i, g := range gtids {
		f.tx(g, at(times[i]))
	}
	f.store(b.t, b.mem, b.cat.Layout, tl)
	b.files[tl] = append(b.files[tl], f)
}

// find returns the file of timeline tl holding GTID g.
func find(files map[string][]*fakeFile, tl, g string) *fakeFile {
	for _, f := range files[tl] {
		if _, ok := f.ends[g]; ok {
			return f
		}
	}
	panic("no " + g + " on " + tl)
}

// replayedAcross lists the GTIDs inside the plan's ranges, in order.
func replayedAcross(p *Plan, files map[string][]*fakeFile) []string {
	var out []string
	for _, r := range p.Ranges {
		for _, f := range files[r.Timeline] {
			if f.b.File != r.File {
				continue
			}
			for _, g := range sortedByStart(f) {
				if f.starts[g] >= r.Start && f.ends[g] <= r.Stop {
					out = append(out, g)
				}
			}
		}
	}
	return out
}

func sortedByStart(f *fakeFile) []string {
	var gs []string
	for g := range f.starts {
		gs = append(gs, g)
	}
	sort.Slice(gs, func(i, j int) bool { return f.starts[gs[i]] < f.starts[gs[j]] })
	return gs
}

// TestPlanTargetsAcrossJoins: every kind of target, on each timeline of
// a chain with two joins, from a snapshot on the first.
func TestPlanTargetsAcrossJoins(t *testing.T) {
	cat, files := twoJoinArchive(t)
	pos := func(tl, g string, end bool) replication.Position {
		f := find(files, tl, g)
		if end {
			return replication.Position{File: f.b.File, Offset: f.ends[g]}
		}
		return replication.Position{File: f.b.File, Offset: f.starts[g]}
	}
	posTarget := func(tl, named, g string, end bool) Target {
		return Target{Kind: TargetPosition, Timeline: named, Position: pos(tl, g, end)}
	}
	inside := pos(ctl2, "0-2-6", false)
	inside.Offset++
	first := []string{"0-1-2", "0-1-3", "0-1-4"}
	second := []string{"0-2-5", "0-2-6", "0-2-7"}
	all := strings.Join(append(append(append([]string{}, first...), second...), "0-3-8", "0-3-9"), " ")
	cases := []struct {
		name   string
		target Target
		skip   []string
		want   string // replayed GTIDs, or "error: substring"
		tl     string // timeline the plan ends on
		joins  int    // joins crossed
		skips  string // GTIDs left out by --skip-gtid
	}{
		{name: "latest crosses both joins", target: Target{Kind: TargetLatest}, want: all, tl: ctl3, joins: 2},
		{name: "time on the first timeline", target: Target{Kind: TargetTime, Time: at(104)}, want: "0-1-2 0-1-3 0-1-4", tl: ctl1},
		{name: "time in the first switch's second stays before it", target: Target{Kind: TargetTime, Time: at(110)}, want: "0-1-2 0-1-3 0-1-4 0-1-5", tl: ctl1},
		{name: "time after the first switch, before the new server wrote", target: Target{Kind: TargetTime, Time: at(115)}, want: "0-1-2 0-1-3 0-1-4", tl: ctl2, joins: 1},
		{name: "time inside the second timeline's second file", target: Target{Kind: TargetTime, Time: at(123)}, want: "0-1-2 0-1-3 0-1-4 0-2-5 0-2-6 0-2-7", tl: ctl2, joins: 1},
		{name: "time in the second switch's second includes what it lost", target: Target{Kind: TargetTime, Time: at(130)}, want: "0-1-2 0-1-3 0-1-4 0-2-5 0-2-6 0-2-7 0-2-8", tl: ctl2, joins: 1},
		{name: "time on the last timeline", target: Target{Kind: TargetTime, Time: at(141)}, want: "0-1-2 0-1-3 0-1-4 0-2-5 0-2-6 0-2-7 0-3-8", tl: ctl3, joins: 2},
		{name: "time after the archive", target: Target{Kind: TargetTime, Time: at(500)}, want: "error: after the newest archived transaction"},
		{name: "GTID on the second timeline", target: Target{Kind: TargetGTID, GTID: "0-2-6"}, want: "0-1-2 0-1-3 0-1-4 0-2-5 0-2-6", tl: ctl2, joins: 1},
		{name: "GTID lost at the first switch", target: Target{Kind: TargetGTID, GTID: "0-1-5"}, want: "0-1-2 0-1-3 0-1-4 0-1-5", tl: ctl1},
		{name: "GTID lost at the second switch", target: Target{Kind: TargetGTID, GTID: "0-2-8"}, want: "0-1-2 0-1-3 0-1-4 0-2-5 0-2-6 0-2-7 0-2-8", tl: ctl2, joins: 1},
		{name: "GTID on the last timeline", target: Target{Kind: TargetGTID, GTID: "0-3-9"}, want: all, tl: ctl3, joins: 2},
		{name: "GTID not archived", target: Target{Kind: TargetGTID, GTID: "0-3-99"}, want: "error: GTID 0-3-99 is not in the archive"},
		{name: "bare position on the first timeline", target: posTarget(ctl1, "", "0-1-3", true), want: "0-1-2 0-1-3", tl: ctl1},
		{name: "bare position at a start on the second timeline's second file", target: posTarget(ctl2, "", "0-2-8", false), want: "0-1-2 0-1-3 0-1-4 0-2-5 0-2-6 0-2-7", tl: ctl2, joins: 1},
		{name: "named position at an end", target: posTarget(ctl3, ctl3, "0-3-8", true), want: "0-1-2 0-1-3 0-1-4 0-2-5 0-2-6 0-2-7 0-3-8", tl: ctl3, joins: 2},
		{name: "named position on the first timeline after its join point", target: posTarget(ctl1, ctl1, "0-1-5", true), want: "0-1-2 0-1-3 0-1-4 0-1-5", tl: ctl1},
		{name: "position inside a transaction", target: Target{Kind: TargetPosition, Position: inside}, want: "error: inside a transaction"},
		{name: "position before the new timeline's join point", target: posTarget(ctl2, ctl2, "0-1-2", true), want: "error: not a transaction boundary"},
		{name: "position at a file's start, before its first transaction", target: Target{Kind: TargetPosition, Position: replication.Position{File: "s2-bin.000002", Offset: 4}}, want: "0-1-2 0-1-3 0-1-4 0-2-5 0-2-6", tl: ctl2, joins: 1},
		{name: "position past what is archived of a file", target: Target{Kind: TargetPosition, Position: replication.Position{File: "s2-bin.000002", Offset: 1 << 20}}, want: "error: not a transaction boundary"},
		{name: "skip on each timeline", target: Target{Kind: TargetLatest}, skip: []string{"0-1-3", "0-2-7", "0-3-8"}, want: "0-1-2 0-1-4 0-2-5 0-2-6 0-3-9", tl: ctl3, joins: 2, skips: "0-1-3 0-2-7 0-3-8"},
		{name: "skip with a GTID target", target: Target{Kind: TargetGTID, GTID: "0-2-8"}, skip: []string{"0-2-5"}, want: "0-1-2 0-1-3 0-1-4 0-2-6 0-2-7 0-2-8", tl: ctl2, joins: 1, skips: "0-2-5"},
		{name: "skip of a transaction lost at a crossed switch", target: Target{Kind: TargetLatest}, skip: []string{"0-1-5"}, want: "error: --skip-gtid 0-1-5: no such transaction"},
		{name: "skip after the target", target: Target{Kind: TargetGTID, GTID: "0-2-6"}, skip: []string{"0-3-9"}, want: "error: --skip-gtid 0-3-9: no such transaction"},
		{name: "skip of the target itself", target: Target{Kind: TargetGTID, GTID: "0-2-6"}, skip: []string{"0-2-6"}, want: "0-1-2 0-1-3 0-1-4 0-2-5", tl: ctl2, joins: 1, skips: "0-2-6"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := find(files, ctl1, "0-1-1")
			req := PlanRequest{From: replication.Position{File: f.b.File, Offset: f.ends["0-1-1"]}, FromServerID: 1, FromState: "0-1-1", Skip: c.skip}
			p := planOrRefusal(t, cat, req, c.target, c.want)
			if p == nil {
				return
			}
			got := strings.Join(replayedAcross(p, files), " ")
			if got != c.want || p.Timeline != c.tl || len(p.Joins) != c.joins || len(p.Steps) != c.joins+1 {
				t.Fatalf("replays %q on %s across %d joins (%d steps), want %q on %s across %d; ranges %+v",
					got, p.Timeline, len(p.Joins), len(p.Steps), c.want, c.tl, c.joins, p.Ranges)
			}
			var skipped []string
			for _, s := range p.Skipped {
				skipped = append(skipped, s.GTID)
			}
			if strings.Join(skipped, " ") != c.skips {
				t.Fatalf("skipped %v, want %s", skipped, c.skips)
			}
			if last := p.Steps[len(p.Steps)-1]; p.Stop != last.To || p.Timeline != last.Timeline {
				t.Fatalf("stop %s/%s, last step %+v", p.Timeline, p.Stop, last)
			}
		})
	}
}

// TestPlanStartsOnEachTimeline: a snapshot on a later timeline, or one
// found by its GTID state alone, starts there and crosses what remains.
func TestPlanStartsOnEachTimeline(t *testing.T) {
	cat, files := twoJoinArchive(t)
	g2 := find(files, ctl2, "0-2-5")
	cases := []struct {
		name   string
		req    PlanRequest
		target Target
		want   string
		from   string
	}{
		{"on the second timeline, to latest", PlanRequest{From: replication.Position{File: g2.b.File, Offset: g2.ends["0-2-5"]}, FromServerID: 2, FromState: "0-1-4,0-2-5"},
			Target{Kind: TargetLatest}, "0-2-6 0-2-7 0-3-8 0-3-9", ctl2},
		{"on the second timeline, to a time on it", PlanRequest{From: replication.Position{File: g2.b.File, Offset: g2.ends["0-2-5"]}, FromServerID: 2, FromState: "0-1-4,0-2-5"},
			Target{Kind: TargetTime, Time: at(122)}, "0-2-6", ctl2},
		{"found by GTID state on the newest timeline", PlanRequest{From: replication.Position{File: "other-bin.000001", Offset: 4}, FromServerID: 9, FromState: "0-2-6"},
			Target{Kind: TargetLatest}, "0-2-7 0-3-8 0-3-9", ctl3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := c.req
			req.Target, req.WorkDir = c.target, t.TempDir()
			p, err := PlanBinlog(context.Background(), cat, req)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(replayedAcross(p, files), " "); got != c.want || p.FromTimeline != c.from {
				t.Fatalf("replays %q from %s, want %q from %s", got, p.FromTimeline, c.want, c.from)
			}
		})
	}
}

// TestAlreadyApplied: the two reasons a transaction is left out as
// already in the data are independent: an earlier step (only after a
// join), or the start's GTID state when the start was found by it (on
// any step).
func TestAlreadyApplied(t *testing.T) {
	state := func(s string) *replication.GTIDState {
		st, err := replication.ParseGTIDState(s)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	cases := []struct {
		name    string
		si      int
		byGTID  bool
		applied string
		from    string
		gtid    string
		want    bool
	}{
		{"first step: the applied state does not count", 0, false, "0-1-5", "0-1-5", "0-1-5", false},
		{"after a join: applied before", 1, false, "0-1-5", "", "0-1-5", true},
		{"after a join: not applied", 1, false, "0-1-5", "", "0-1-6", false},
		{"after a join: Has is exact (another server's seq_no)", 1, false, "0-1-5", "", "0-2-5", false},
		{"located by GTID, first step: covered by the domain's position", 0, true, "", "0-1-5", "0-2-4", true},
		{"located by GTID, first step: past the position", 0, true, "", "0-1-5", "0-1-6", false},
		{"located by GTID, after a join: still covered", 2, true, "", "0-1-5", "0-1-3", true},
		{"no GTID is never applied", 1, true, "0-1-5", "0-1-5", "", false},
	}
	for _, c := range cases {
		pl := &planner{byGTID: c.byGTID, applied: state(c.applied), fromState: state(c.from)}
		if got := pl.alreadyApplied(c.si, &archive.Transaction{GTID: c.gtid}); got != c.want {
			t.Errorf("%s: alreadyApplied = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestPlanMissingSkipsStable: every --skip-gtid the plan does not meet is
// named, in the order given, the same on every run (the error once named
// one of them, picked by map order).
func TestPlanMissingSkipsStable(t *testing.T) {
	cat, files := twoJoinArchive(t)
	f := find(files, ctl1, "0-1-1")
	req := PlanRequest{From: replication.Position{File: f.b.File, Offset: f.ends["0-1-1"]}, FromServerID: 1, FromState: "0-1-1",
		Target: Target{Kind: TargetLatest}, Skip: []string{"0-3-98", "0-2-6", "0-1-97", "0-3-98", "0-2-96"}}
	want := "--skip-gtid 0-3-98, 0-1-97, 0-2-96: no such transaction between " + ctl1 + "/" + req.From.String() + " and " + ctl3 + "/s3-bin.000001:"
	for i := 0; i < 20; i++ {
		req.WorkDir = t.TempDir()
		_, err := PlanBinlog(context.Background(), cat, req)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("run %d: %v, want an error starting %q", i, err, want)
		}
	}
}

// TestPlanPositionsBetweenTransactions: a position where only events that
// change no data lie between it and a transaction (a file's header, a
// Binlog_checkpoint MariaDB writes when the previous file's commits are
// durable, the last events of a file) is the state at that transaction's
// boundary, as SHOW MASTER STATUS can name it: seed 44 of the fault
// campaign read one from a server just promoted, and the restore to it was
// refused as "not a transaction boundary".
func TestPlanPositionsBetweenTransactions(t *testing.T) {
	b := threeTimelines(t)
	f := newFakeFile("mysql-bin.000001", nil)
	header := f.b.Pos
	checkpoint := func() (uint64, uint64) {
		start := f.b.Pos
		f.add(f.b.NextBody(gomysql.MARIADB_BINLOG_CHECKPOINT_EVENT, append(binary.LittleEndian.AppendUint32(nil, 16), "mysql-bin.000001"...)))
		return start, f.b.Pos
	}
	checkpoint()
	f.tx("0-1-1", at(100))
	midStart, midEnd := checkpoint()
	f.tx("0-1-2", at(101))
	tailStart, tailEnd := checkpoint()
	b.storeOn(ctl1, f)
	pos := positionIn("mysql-bin.000001")
	for _, c := range []struct {
		name   string
		target Target
		want   string
		from   uint64 // where the restore starts (the snapshot's position); 0: the file's start
	}{
		{"the file's start", pos(4), "", 0},
		{"the end of the file's header", pos(header), "", 0},
		{"the first transaction's start, after a checkpoint event", pos(f.starts["0-1-1"]), "", 0},
		{"a transaction's end", pos(midStart), "0-1-1", 0},
		{"after a checkpoint event between two transactions", pos(midEnd), "0-1-1", 0},
		{"inside a checkpoint event between two transactions", pos(midStart + 3), "0-1-1", 0},
		{"the last transaction's end, before the file's last event", pos(tailStart), "0-1-1 0-1-2", 0},
		{"the file's end, after its last event", pos(tailEnd), "0-1-1 0-1-2", 0},
		{"inside a transaction", pos(f.starts["0-1-2"] + 1), "error: inside a transaction", 0},
		{"past what is archived", pos(tailEnd + 1), "error: not a transaction boundary", 0},
		{"before where the restore starts", pos(header), "error: not a transaction boundary", midEnd},
		{"between a start inside the file and the next transaction", pos(midEnd), "", midEnd},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := PlanRequest{From: replication.Position{File: "mysql-bin.000001", Offset: c.from}, FromServerID: 1}
			if c.from == 0 {
				req.From.Offset = 4
			}
			p := planOrRefusal(t, b.cat, req, c.target, c.want)
			if p == nil {
				return
			}
			if got := strings.Join(replayedAcross(p, b.files), " "); got != c.want || p.Timeline != ctl1 {
				t.Fatalf("replays %q on %s, want %q on %s; ranges %+v", got, p.Timeline, c.want, ctl1, p.Ranges)
			}
		})
	}
}

// TestPlanRefusesAPositionInAnUnfinishedTail: a file the primary was still
// writing (or one a crash cut) ends inside a transaction whose commit is
// not archived; a position there is inside that transaction, not after
// the file's last one, and is refused. Its start is a boundary.
func TestPlanRefusesAPositionInAnUnfinishedTail(t *testing.T) {
	b := threeTimelines(t)
	f := newFakeFile("mysql-bin.000001", nil)
	f.tx("0-1-1", at(100))
	tail := f.b.Pos
	body := binlogtest.MariaGTIDBody(2, 0)
	f.add(f.b.NextBody(gomysql.MARIADB_GTID_EVENT, body))
	rows := f.b.Pos
	f.add(f.b.Next(gomysql.WRITE_ROWS_EVENTv1, 60))
	b.storeOn(ctl1, f)
	pos := positionIn("mysql-bin.000001")
	for _, c := range []struct {
		name   string
		target Target
		want   string
	}{
		{"the unfinished transaction's start", pos(tail), "0-1-1"},
		{"inside its GTID event", pos(tail + 5), "error: inside a transaction whose commit is not in the archive"},
		{"at its row event", pos(rows), "error: inside a transaction whose commit is not in the archive"},
		{"at the end of what is archived", pos(f.b.Pos), "error: inside a transaction whose commit is not in the archive"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := PlanRequest{From: replication.Position{File: "mysql-bin.000001", Offset: 4}, FromServerID: 1}
			p := planOrRefusal(t, b.cat, req, c.target, c.want)
			if p == nil {
				return
			}
			if got := strings.Join(replayedAcross(p, b.files), " "); got != c.want {
				t.Fatalf("replays %q, want %q; ranges %+v", got, c.want, p.Ranges)
			}
		})
	}
}

// storeOn stores f as a file of timeline tl.
func (b *archiveBuilder) storeOn(tl string, f *fakeFile) {
	f.store(b.t, b.mem, b.cat.Layout, tl)
	b.files[tl] = append(b.files[tl], f)
}

// positionIn makes position targets in file.
func positionIn(file string) func(off uint64) Target {
	return func(off uint64) Target {
		return Target{Kind: TargetPosition, Position: replication.Position{File: file, Offset: off}}
	}
}
