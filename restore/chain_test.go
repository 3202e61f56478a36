package restore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
	"github.com/klauspost/compress/zstd"
)

const (
	ctl1 = "000001-20261125T000000Z"
	ctl2 = "000002-20261125T001000Z"
)

// fakeFile writes a binlog file: format description, Gtid_list, then
// transactions (GTID, BEGIN, rows, XID) with the given GTIDs and times.
type fakeFile struct {
	b   *binlogtest.Binlog
	buf bytes.Buffer
	// ends maps a GTID to the offset just past its transaction, starts
	// to the offset of its GTID event.
	ends, starts map[string]uint64
}

func newFakeFile(name string, start []string) *fakeFile {
	f := &fakeFile{b: binlogtest.New(name), ends: map[string]uint64{}, starts: map[string]uint64{}}
	f.buf.Write(replication.Magic)
	f.add(f.b.NextBody(gomysql.FORMAT_DESCRIPTION_EVENT, make([]byte, 80)))
	body := binary.LittleEndian.AppendUint32(nil, uint32(len(start)))
	for _, g := range start {
		d, s, n, err := parseMariaGTID(g)
		if err != nil {
			panic(err)
		}
		body = binary.LittleEndian.AppendUint32(body, d)
		body = binary.LittleEndian.AppendUint32(body, s)
		body = binary.LittleEndian.AppendUint64(body, n)
	}
	f.add(f.b.NextBody(gomysql.MARIADB_GTID_LIST_EVENT, body))
	return f
}

func parseMariaGTID(g string) (uint32, uint32, uint64, error) {
	p := strings.Split(g, "-")
	d, e1 := strconv.ParseUint(p[0], 10, 32)
	s, e2 := strconv.ParseUint(p[1], 10, 32)
	n, e3 := strconv.ParseUint(p[2], 10, 64)
	return uint32(d), uint32(s), n, errors.Join(e1, e2, e3)
}

func (f *fakeFile) add(ev replication.Event) { f.buf.Write(ev.Raw) }

// tx appends a transaction GTID d-s-n at unix time ts.
func (f *fakeFile) tx(g string, ts time.Time) {
	d, s, n, err := parseMariaGTID(g)
	if err != nil {
		panic(err)
	}
	f.b.ServerID, f.b.TS = s, uint32(ts.Unix())
	body := binlogtest.MariaGTIDBody(n, 0)
	binary.LittleEndian.PutUint32(body[8:], d)
	f.starts[g] = f.b.Pos
	f.add(f.b.NextBody(gomysql.MARIADB_GTID_EVENT, body))
	f.b.TS = uint32(ts.Unix())
	f.add(f.b.NextBody(gomysql.QUERY_EVENT, binlogtest.QueryBody("BEGIN")))
	f.b.TS = uint32(ts.Unix())
	f.add(f.b.Next(gomysql.WRITE_ROWS_EVENTv1, 60))
	f.b.TS = uint32(ts.Unix())
	f.add(f.b.Next(gomysql.XID_EVENT, 31))
	f.ends[g] = f.b.Pos
}

// store puts the file in the archive as one segment (no index: a live
// file).
func (f *fakeFile) store(t *testing.T, mem *objstore.Memory, l archive.Layout, tl string) {
	t.Helper()
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	data := enc.EncodeAll(f.buf.Bytes(), nil)
	if _, err := mem.Put(context.Background(), l.SegmentKey(tl, f.b.File, 0, uint64(f.buf.Len())), data, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

func putTimeline(t *testing.T, mem *objstore.Memory, l archive.Layout, tl string, serverID uint32, created time.Time) {
	t.Helper()
	ti := archive.TimelineInfo{Version: 1, Timeline: tl, Created: created, StartFile: "mysql-bin.000001", SourceServerID: serverID, Reason: "test"}
	data, _ := json.Marshal(ti)
	if _, err := mem.Put(context.Background(), l.TimelineKey(tl), data, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

var t0 = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

// promotionArchive: server 1 wrote 0-1-1..5 (timeline 1); server 2, its
// replica, got 0-1-1..3 and had one errant transaction of its own (0-9-7)
// before it; it was promoted and wrote 0-2-6, 0-2-7 (timeline 2). Both
// name their file mysql-bin.000001.
func promotionArchive(t *testing.T) (archive.Catalog, *fakeFile, *fakeFile) {
	mem := objstore.NewMemory()
	l := archive.Layout{Cluster: "c"}
	putTimeline(t, mem, l, ctl1, 1, at(0))
	putTimeline(t, mem, l, ctl2, 2, at(110))
	a := newFakeFile("mysql-bin.000001", nil)
	for i, g := range []string{"0-1-1", "0-1-2", "0-1-3", "0-1-4", "0-1-5"} {
		a.tx(g, at(100+i))
	}
	a.store(t, mem, l, ctl1)
	b := newFakeFile("mysql-bin.000001", nil)
	b.tx("0-1-1", at(100))
	b.tx("0-9-7", at(100))
	b.tx("0-1-2", at(101))
	b.tx("0-1-3", at(102))
	b.tx("0-2-6", at(120))
	b.tx("0-2-7", at(121))
	b.store(t, mem, l, ctl2)
	return archive.Catalog{Store: mem, Layout: l}, a, b
}

func TestJoinLostAndErrant(t *testing.T) {
	cat, a, b := promotionArchive(t)
	joins, err := archive.Joins(context.Background(), cat, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	j := joins[1]
	if !j.Final || j.Broken != "" {
		t.Fatalf("join should be final and whole: %s", j)
	}
	if strings.Join(j.Lost, ",") != "0-1-4..5" || strings.Join(j.Errant, ",") != "0-9-7" {
		t.Fatalf("lost %v errant %v, want [0-1-4..5] [0-9-7]", j.Lost, j.Errant)
	}
	if j.At.Offset != b.ends["0-1-3"] || j.PreviousEnd.Offset != a.ends["0-1-3"] {
		t.Fatalf("join at %v / previous end %v, want %d / %d", j.At, j.PreviousEnd, b.ends["0-1-3"], a.ends["0-1-3"])
	}
	if !j.SwitchTime.Equal(at(110)) {
		t.Fatalf("switch time %s, want %s", j.SwitchTime, at(110))
	}
	st, _ := replication.ParseGTIDState(j.Meet)
	if !st.Has("0-1-3") || st.Has("0-1-4") || !st.Has("0-9-7") {
		t.Fatalf("meet state %s", j.Meet)
	}
	// Recorded once; a second record changes nothing.
	if _, rec, err := archive.RecordJoins(context.Background(), cat, t.TempDir()); err != nil || len(rec) != 1 {
		t.Fatalf("record: %v, %d recorded", err, len(rec))
	}
	if _, rec, err := archive.RecordJoins(context.Background(), cat, t.TempDir()); err != nil || len(rec) != 0 {
		t.Fatalf("second record: %v, %d recorded", err, len(rec))
	}
	if got, err := archive.ReadJoin(context.Background(), cat, ctl2); err != nil || got == nil || strings.Join(got.Lost, ",") != "0-1-4..5" {
		t.Fatalf("recorded join: %v %+v", err, got)
	}
}

// replayed lists the GTIDs of the transactions inside the plan's ranges.
func replayed(t *testing.T, p *Plan, files map[string]*fakeFile) []string {
	t.Helper()
	var out []string
	for _, r := range p.Ranges {
		f := files[r.Timeline]
		var in []string
		for g, s := range f.starts {
			if s >= r.Start && f.ends[g] <= r.Stop {
				in = append(in, g)
			}
		}
		sort.Slice(in, func(i, j int) bool { return f.starts[in[i]] < f.starts[in[j]] })
		out = append(out, in...)
	}
	return out
}

func TestPlanAcrossJoin(t *testing.T) {
	cat, a, b := promotionArchive(t)
	files := map[string]*fakeFile{ctl1: a, ctl2: b}
	// The snapshot of a replica of server 1, after 0-1-1.
	snap1 := PlanRequest{From: replication.Position{File: "mysql-bin.000001", Offset: a.ends["0-1-1"]}, FromServerID: 1, FromState: "0-1-1"}
	// The snapshot of a replica of server 2, after 0-2-6.
	snap2 := PlanRequest{From: replication.Position{File: "mysql-bin.000001", Offset: b.ends["0-2-6"]}, FromServerID: 2, FromState: "0-1-3,0-9-7,0-2-6"}
	cases := []struct {
		name   string
		req    PlanRequest
		target Target
		want   string // replayed GTIDs, or "error: substring"
		tl     string
	}{
		{"latest crosses the join and leaves the lost out", snap1, Target{Kind: TargetLatest}, "0-1-2 0-1-3 0-2-6 0-2-7", ctl2},
		{"time before the switch includes what was lost", snap1, Target{Kind: TargetTime, Time: at(105)}, "0-1-2 0-1-3 0-1-4 0-1-5", ctl1},
		{"time between lost transactions", snap1, Target{Kind: TargetTime, Time: at(104)}, "0-1-2 0-1-3 0-1-4", ctl1},
		{"time in the switch's second is before it", snap1, Target{Kind: TargetTime, Time: at(110)}, "0-1-2 0-1-3 0-1-4 0-1-5", ctl1},
		{"time after the switch excludes the lost", snap1, Target{Kind: TargetTime, Time: at(121)}, "0-1-2 0-1-3 0-2-6", ctl2},
		{"GTID on the new timeline", snap1, Target{Kind: TargetGTID, GTID: "0-2-6"}, "0-1-2 0-1-3 0-2-6", ctl2},
		{"a lost GTID is on the old timeline", snap1, Target{Kind: TargetGTID, GTID: "0-1-4"}, "0-1-2 0-1-3 0-1-4", ctl1},
		{"position on a named timeline", snap1, Target{Kind: TargetPosition, Timeline: ctl2, Position: replication.Position{File: "mysql-bin.000001", Offset: b.ends["0-2-6"]}}, "0-1-2 0-1-3 0-2-6", ctl2},
		{"position on the old timeline", snap1, Target{Kind: TargetPosition, Timeline: ctl1, Position: replication.Position{File: "mysql-bin.000001", Offset: a.ends["0-1-4"]}}, "0-1-2 0-1-3 0-1-4", ctl1},
		{"bare position is ambiguous", snap1, Target{Kind: TargetPosition, Position: replication.Position{File: "mysql-bin.000001", Offset: b.ends["0-2-6"]}}, "error: ambiguous", ""},
		{"snapshot of server 2 is found on its own timeline", snap2, Target{Kind: TargetLatest}, "0-2-7", ctl2},
		{"coordinates of an unknown server are ambiguous", PlanRequest{From: snap1.From}, Target{Kind: TargetLatest}, "error: ambiguous", ""},
		{"an unknown server is found by its GTID state", PlanRequest{From: replication.Position{File: "mysql-bin.000009", Offset: 4}, FromServerID: 7, FromState: "0-1-2"}, Target{Kind: TargetLatest}, "0-9-7 0-1-3 0-2-6 0-2-7", ctl2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := planOrRefusal(t, cat, c.req, c.target, c.want)
			if p == nil {
				return
			}
			if got := strings.Join(replayed(t, p, files), " "); got != c.want || p.Timeline != c.tl {
				t.Fatalf("replays %q on %s, want %q on %s; ranges %+v", got, p.Timeline, c.want, c.tl, p.Ranges)
			}
		})
	}
}

// TestPlanRefusesLostSnapshot: a snapshot holding transactions lost at a
// switch cannot start a restore to after it.
func TestPlanRefusesLostSnapshot(t *testing.T) {
	cat, a, _ := promotionArchive(t)
	req := PlanRequest{From: replication.Position{File: "mysql-bin.000001", Offset: a.ends["0-1-4"]}, FromServerID: 1, FromState: "0-1-4",
		Target: Target{Kind: TargetLatest}, WorkDir: t.TempDir()}
	_, err := PlanBinlog(context.Background(), cat, req)
	if !errors.Is(err, ErrOutsideWindow) || !strings.Contains(err.Error(), "0-1-4..5") {
		t.Fatalf("want a refusal naming the lost range, got %v", err)
	}
}

// TestJoinGap: the new timeline's binlog starts after transactions that
// neither timeline holds (purged before they were archived): no restore
// crosses, and the refusal names the missing range.
func TestJoinGap(t *testing.T) {
	mem := objstore.NewMemory()
	l := archive.Layout{Cluster: "c"}
	putTimeline(t, mem, l, ctl1, 1, at(0))
	putTimeline(t, mem, l, ctl2, 1, at(110))
	a := newFakeFile("mysql-bin.000001", nil)
	a.tx("0-1-1", at(100))
	a.tx("0-1-2", at(101))
	a.store(t, mem, l, ctl1)
	b := newFakeFile("mysql-bin.000005", []string{"0-1-6"})
	b.tx("0-1-7", at(120))
	b.store(t, mem, l, ctl2)
	cat := archive.Catalog{Store: mem, Layout: l}
	req := PlanRequest{From: replication.Position{File: "mysql-bin.000001", Offset: a.ends["0-1-1"]}, FromServerID: 1, FromState: "0-1-1",
		Target: Target{Kind: TargetLatest}, WorkDir: t.TempDir()}
	_, err := PlanBinlog(context.Background(), cat, req)
	if !errors.Is(err, ErrOutsideWindow) || !strings.Contains(err.Error(), "0-1-3..6") {
		t.Fatalf("want a refusal naming 0-1-3..6, got %v", err)
	}
	// Before the gap, the old timeline still restores.
	req.Target = Target{Kind: TargetGTID, GTID: "0-1-2"}
	if _, err := PlanBinlog(context.Background(), cat, req); err != nil {
		t.Fatal(err)
	}
}

// TestJoinNoSharedHistory: after a RESET MASTER (or with an unrelated
// server) the GTIDs start over: equal GTIDs are not a shared history, and
// no restore crosses.
func TestJoinNoSharedHistory(t *testing.T) {
	mem := objstore.NewMemory()
	l := archive.Layout{Cluster: "c"}
	putTimeline(t, mem, l, ctl1, 1, at(0))
	putTimeline(t, mem, l, ctl2, 1, at(150))
	a := newFakeFile("mysql-bin.000001", nil)
	for i, g := range []string{"0-1-1", "0-1-2", "0-1-3"} {
		a.tx(g, at(100+i))
	}
	a.store(t, mem, l, ctl1)
	b := newFakeFile("mysql-bin.000001", nil)
	b.tx("0-1-1", at(200))
	b.tx("0-1-2", at(201))
	b.store(t, mem, l, ctl2)
	cat := archive.Catalog{Store: mem, Layout: l}
	joins, err := archive.Joins(context.Background(), cat, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(joins[1].Broken, "shares no history") {
		t.Fatalf("join %s: want it broken, no shared history", joins[1])
	}
}

// TestPlanByServerUUID: on MySQL two servers may share a server_id; the
// snapshot's primary's server_uuid picks the timeline.
func TestPlanByServerUUID(t *testing.T) {
	mem := objstore.NewMemory()
	l := archive.Layout{Cluster: "c"}
	for _, tl := range []struct{ name, uuid string }{{ctl1, "aaaaaaaa-0000-0000-0000-000000000001"}, {ctl2, "bbbbbbbb-0000-0000-0000-000000000002"}} {
		ti := archive.TimelineInfo{Version: 2, Timeline: tl.name, StartFile: "mysql-bin.000001", SourceServerID: 1, SourceServerUUID: tl.uuid, Reason: "test"}
		data, _ := json.Marshal(ti)
		if _, err := mem.Put(context.Background(), l.TimelineKey(tl.name), data, objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		f := newFakeFile("mysql-bin.000001", nil)
		f.tx("0-1-1", at(100))
		f.store(t, mem, l, tl.name)
	}
	cat := archive.Catalog{Store: mem, Layout: l}
	req := PlanRequest{From: replication.Position{File: "mysql-bin.000001", Offset: 4}, FromServerID: 1, FromServerUUID: "BBBBBBBB-0000-0000-0000-000000000002",
		Target: Target{Kind: TargetLatest}, WorkDir: t.TempDir()}
	p, err := PlanBinlog(context.Background(), cat, req)
	if err != nil || p.FromTimeline != ctl2 {
		t.Fatalf("plan from %v (%v), want timeline %s", p, err, ctl2)
	}
	req.FromServerUUID = ""
	if _, err := PlanBinlog(context.Background(), cat, req); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Fatalf("without the uuid: want ambiguous, got %v", err)
	}
}

// planOrRefusal plans req to target; when want is "error: substring" the
// plan must be refused with that substring, and planOrRefusal returns nil.
func planOrRefusal(t *testing.T, cat archive.Catalog, req PlanRequest, target Target, want string) *Plan {
	t.Helper()
	req.Target, req.WorkDir = target, t.TempDir()
	p, err := PlanBinlog(context.Background(), cat, req)
	if want, isErr := strings.CutPrefix(want, "error: "); isErr {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("want an error with %q, got %v", want, err)
		}
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}
