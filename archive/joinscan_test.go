package archive

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/klauspost/compress/zstd"
)

var joinT0 = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

func joinAt(sec int) time.Time { return joinT0.Add(time.Duration(sec) * time.Second) }

// fileSpec is one binlog file of a test timeline: its name, the GTID
// state its Gtid_list holds (none when noState), and its transactions as
// "GTID@second" ("-@second": without a GTID; "GTID/s@second": two
// statements, statement-based, as MariaDB writes them).
type fileSpec struct {
	name    string
	start   []string
	noState bool
	txs     string
	// at is when the file was started (second), for its header events.
	at int
}

// joinTimelines stores timelines made of specs, the i-th created at
// created[i] seconds, and returns the built files of each.
func joinTimelines(t *testing.T, specs [][]fileSpec, created []int) (Catalog, []string, [][]*binlogtest.File) {
	t.Helper()
	ctx := context.Background()
	mem := objstore.NewMemory()
	c := Catalog{Store: mem, Layout: Layout{Cluster: "c"}}
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	var names []string
	built := make([][]*binlogtest.File, len(specs))
	for i, files := range specs {
		tl := FormatTimeline(i+1, joinAt(created[i]))
		names = append(names, tl)
		info, _ := json.Marshal(TimelineInfo{Version: 1, Timeline: tl, Created: joinAt(created[i]), StartFile: files[0].name, SourceServerID: uint32(i + 1), Reason: "test"})
		if _, err := mem.Put(ctx, c.Layout.TimelineKey(tl), info, objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, spec := range files {
			f := binlogtest.NewFile(spec.name, spec.start...)
			if spec.at != 0 {
				f = binlogtest.NewFileAt(spec.name, joinAt(spec.at), spec.start...)
			}
			if spec.noState {
				f = binlogtest.NewFileNoState(spec.name)
			}
			for _, tx := range strings.Fields(spec.txs) {
				g, sec, _ := strings.Cut(tx, "@")
				n, err := strconv.Atoi(sec)
				if err != nil {
					t.Fatalf("transaction %q: %v", tx, err)
				}
				if g == "-" {
					f.TxNoGTID(joinAt(n))
				} else if g, ok := strings.CutSuffix(g, "/s"); ok {
					f.TxStatements(g, joinAt(n), "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (2)")
				} else {
					f.Tx(g, joinAt(n))
				}
			}
			key := c.Layout.SegmentKey(tl, spec.name, 0, uint64(len(f.Bytes())))
			if _, err := mem.Put(ctx, key, enc.EncodeAll(f.Bytes(), nil), objstore.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			built[i] = append(built[i], f)
		}
	}
	return c, names, built
}

// endOf is the point just past GTID g's transaction in files.
func endOf(t *testing.T, files []*binlogtest.File, g string) Point {
	t.Helper()
	for _, f := range files {
		if end, ok := f.Ends[g]; ok {
			return Point{File: f.File, Offset: end}
		}
	}
	t.Fatalf("no transaction %s", g)
	return Point{}
}

// TestComputeJoin: where a timeline meets the previous one, for every
// shape of switch, and why a join no restore crosses is broken.
func TestComputeJoin(t *testing.T) {
	old5 := []fileSpec{{name: "a-bin.000001", txs: "0-1-1@100 0-1-2@101 0-1-3@102 0-1-4@103 0-1-5@104"}}
	cases := []struct {
		name    string
		specs   [][]fileSpec
		created []int
		// want: the join of the second timeline. at and previousEnd
		// name the GTID the point is just past ("" when broken).
		broken             string
		final              bool
		lost, errant, meet string
		at, previousEnd    string
		switchAt           int
	}{
		{name: "promotion with lost and errant transactions", created: []int{0, 110},
			specs: [][]fileSpec{old5, {{name: "b-bin.000001", txs: "0-1-1@100 0-9-7@100 0-1-2@101 0-1-3@102 0-2-6@120 0-2-7@121"}}},
			final: true, lost: "0-1-4..5", errant: "0-9-7", meet: "0-1-3,0-9-7", at: "0-1-3", previousEnd: "0-1-3", switchAt: 110},
		{name: "statement-based transactions on both sides", created: []int{0, 110},
			specs: [][]fileSpec{{{name: "a-bin.000001", txs: "0-1-1/s@100 0-1-2/s@101 0-1-3/s@102 0-1-4/s@103 0-1-5/s@104"}},
				{{name: "b-bin.000001", txs: "0-1-1/s@100 0-1-2/s@101 0-1-3/s@102 0-2-6/s@120"}}},
			final: true, lost: "0-1-4..5", meet: "0-1-3", at: "0-1-3", previousEnd: "0-1-3", switchAt: 110},
		{name: "provisional while the new timeline has written nothing of its own", created: []int{0, 110},
			specs: [][]fileSpec{old5, {{name: "b-bin.000001", txs: "0-1-1@100 0-1-2@101 0-1-3@102"}}},
			final: false, lost: "0-1-4..5", meet: "0-1-3", at: "0-1-3", previousEnd: "0-1-3", switchAt: 110},
		{name: "final once a later timeline follows", created: []int{0, 110, 200},
			specs: [][]fileSpec{old5, {{name: "b-bin.000001", txs: "0-1-1@100 0-1-2@101 0-1-3@102"}}, {{name: "c-bin.000001", txs: "0-1-1@100 0-1-2@101 0-1-3@102 0-3-4@210"}}},
			final: true, lost: "0-1-4..5", meet: "0-1-3", at: "0-1-3", previousEnd: "0-1-3", switchAt: 110},
		{name: "switch time is the new server's first own transaction when earlier", created: []int{0, 300},
			specs: [][]fileSpec{old5, {{name: "b-bin.000001", txs: "0-1-1@100 0-1-2@101 0-1-3@102 0-1-4@103 0-1-5@104 0-2-6@120"}}},
			final: true, meet: "0-1-5", at: "0-1-5", previousEnd: "0-1-5", switchAt: 120},
		{name: "lost across the old timeline's files", created: []int{0, 110},
			specs: [][]fileSpec{
				{{name: "a-bin.000001", txs: "0-1-1@100 0-1-2@101 0-1-3@102"}, {name: "a-bin.000002", start: []string{"0-1-3"}, txs: "0-1-4@103 0-1-5@104 0-1-6@105"}},
				{{name: "b-bin.000001", txs: "0-1-1@100 0-1-2@101 0-1-3@102 0-1-4@103 0-2-5@120"}}},
			final: true, lost: "0-1-5..6", meet: "0-1-4", at: "0-1-4", previousEnd: "0-1-4", switchAt: 110},
		{name: "meeting point in the new timeline's second file", created: []int{0, 110},
			specs: [][]fileSpec{old5, {{name: "b-bin.000001", txs: "0-1-1@100 0-1-2@101"}, {name: "b-bin.000002", start: []string{"0-1-2"}, txs: "0-1-3@102 0-2-4@120"}}},
			final: true, lost: "0-1-4..5", meet: "0-1-3", at: "0-1-3", previousEnd: "0-1-3", switchAt: 110},
		{name: "new timeline starting inside the shared history", created: []int{0, 110},
			specs: [][]fileSpec{old5, {{name: "b-bin.000004", start: []string{"0-1-2"}, txs: "0-1-3@102 0-1-4@103 0-2-5@120"}}},
			final: true, lost: "0-1-5", meet: "0-1-4", at: "0-1-4", previousEnd: "0-1-4", switchAt: 110},
		{name: "new server restored from a backup: its binlog starts empty, its first shared transaction tells its state", created: []int{0, 110},
			specs: [][]fileSpec{{{name: "a-bin.000001", start: []string{"0-2-7"}, txs: "0-1-8@100 0-1-9@101 0-1-10@102"}},
				{{name: "b-bin.000001", txs: "0-1-9@101 0-1-10@102 0-3-11@120"}}},
			final: true, meet: "0-1-10,0-2-7", at: "0-1-10", previousEnd: "0-1-10", switchAt: 110},
		{name: "new server restored from a backup: its binlog starts with only the servers it replicated since", created: []int{0, 110},
			specs: [][]fileSpec{{{name: "a-bin.000001", start: []string{"0-2-7"}, txs: "0-1-8@100 0-1-9@101 0-1-10@102"}},
				{{name: "b-bin.000002", start: []string{"0-1-8"}, txs: "0-1-9@101 0-1-10@102 0-3-11@120"}}},
			final: true, meet: "0-1-10,0-2-7", at: "0-1-10", previousEnd: "0-1-10", switchAt: 110},
		{name: "gap between the timelines", created: []int{0, 110},
			specs:  [][]fileSpec{{{name: "a-bin.000001", txs: "0-1-1@100 0-1-2@101"}}, {{name: "b-bin.000005", start: []string{"0-1-6"}, txs: "0-1-7@120"}}},
			broken: "a gap: the new timeline's binlog starts after transactions the archive never got (0-1-3..6)", final: true},
		{name: "no shared history (RESET MASTER: the same GTIDs, later)", created: []int{0, 150},
			specs:  [][]fileSpec{{{name: "a-bin.000001", txs: "0-1-1@100 0-1-2@101 0-1-3@102"}}, {{name: "a-bin.000001", txs: "0-1-1@200 0-1-2@201"}}},
			broken: "shares no history", final: true},
		{name: "old timeline without a GTID state", created: []int{0, 110},
			specs:  [][]fileSpec{{{name: "a-bin.000001", noState: true, txs: "0-1-1@100"}}, {{name: "b-bin.000001", txs: "0-1-1@100 0-2-2@120"}}},
			broken: "records no GTID state", final: true},
		{name: "old timeline with a transaction without GTID", created: []int{0, 110},
			specs:  [][]fileSpec{{{name: "a-bin.000001", txs: "0-1-1@100 -@101"}}, {{name: "b-bin.000001", txs: "0-1-1@100 0-2-2@120"}}},
			broken: "has transactions without GTIDs", final: true},
		{name: "new timeline without a GTID state", created: []int{0, 110},
			specs:  [][]fileSpec{{{name: "a-bin.000001", txs: "0-1-1@100"}}, {{name: "b-bin.000001", noState: true, txs: "0-1-1@100 0-2-2@120"}}},
			broken: "has transactions without GTIDs", final: true},
		// (In one domain, applying 0-1-11 implies having 0-2-5 before it:
		// the start is inferred, as the restored server's case above. In
		// another domain, nothing is implied.)
		{name: "new server lacks another domain's history from before the old archive", created: []int{0, 110},
			specs:  [][]fileSpec{{{name: "a-bin.000003", start: []string{"0-1-10", "1-2-5"}, txs: "0-1-11@100 0-1-12@101"}}, {{name: "b-bin.000001", start: []string{"0-1-10"}, txs: "0-1-11@100 0-3-12@120"}}},
			broken: "the new server lacks transactions from before the start of timeline", final: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cat, names, files := joinTimelines(t, c.specs, c.created)
			j := computedJoin(t, cat, 1)
			if j.Timeline != names[1] || j.Previous != names[0] || j.Version != JoinVersion {
				t.Fatalf("join %s ← %s (version %d), want %s ← %s", j.Timeline, j.Previous, j.Version, names[1], names[0])
			}
			if !strings.Contains(j.Broken, c.broken) || (c.broken == "") != (j.Broken == "") || j.Final != c.final {
				t.Fatalf("broken %q final %v, want broken %q final %v", j.Broken, j.Final, c.broken, c.final)
			}
			if c.broken != "" {
				return
			}
			got := strings.Join([]string{strings.Join(j.Lost, ","), strings.Join(j.Errant, ","), j.Meet}, " | ")
			if want := strings.Join([]string{c.lost, c.errant, c.meet}, " | "); got != want {
				t.Fatalf("lost | errant | meet = %s, want %s", got, want)
			}
			if at, prev := endOf(t, files[1], c.at), endOf(t, files[0], c.previousEnd); j.At != at || j.PreviousEnd != prev {
				t.Fatalf("at %v previous end %v, want %v %v", j.At, j.PreviousEnd, at, prev)
			}
			if !j.SwitchTime.Equal(joinAt(c.switchAt)) {
				t.Fatalf("switch time %s, want %s", j.SwitchTime, joinAt(c.switchAt))
			}
		})
	}
}

// TestComputeJoinRejoinsAnOlderTimeline: a server that never had the
// previous timeline's own transactions (it branched from the timeline
// before) meets that older timeline; the join names it as Parent, and
// what the previous timeline's history held after the meeting point is
// lost — a reader that took the previous timeline's history and then the
// new one would hold 0-1-1..2 twice (the 60-minute campaign's bug).
func TestComputeJoinRejoinsAnOlderTimeline(t *testing.T) {
	specs := [][]fileSpec{
		{{name: "a-bin.000001", txs: "0-1-1@100 0-1-2@101 0-1-3@102 0-1-4@103 0-1-5@104"}},
		{{name: "b-bin.000001", txs: "0-1-1@100 0-1-2@101 0-1-3@102 0-2-4@120 0-2-5@121"}},
		{{name: "c-bin.000001", txs: "0-1-1@100 0-1-2@101 0-3-3@130 0-3-4@131"}},
	}
	for _, extra := range []bool{false, true} {
		specs, created := specs, []int{0, 110, 125}
		if extra {
			// One more timeline between, itself continuing the second:
			// the search goes back two steps.
			specs = [][]fileSpec{specs[0], specs[1], {{name: "d-bin.000001", txs: "0-1-1@100 0-1-2@101 0-1-3@102 0-2-4@120 0-2-5@121 0-4-6@122"}}, specs[2]}
			created = []int{0, 110, 121, 125}
		}
		cat, names, files := joinTimelines(t, specs, created)
		h, err := NewHistory(context.Background(), cat, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		last := len(names) - 1
		j, err := h.computeJoin(last)
		if err != nil {
			t.Fatal(err)
		}
		wantLost := "0-1-3,0-2-4..5"
		if extra {
			wantLost += ",0-4-6"
		}
		if j.Broken != "" || !j.Final || j.Previous != names[last-1] || j.Parent != names[0] || j.From() != names[0] || j.Version != JoinVersionParent {
			t.Fatalf("extra=%v: join %+v, want previous %s, parent %s, final, version %d", extra, j, names[last-1], names[0], JoinVersionParent)
		}
		if got := strings.Join(j.Lost, ","); got != wantLost || j.Meet != "0-1-2" || len(j.Errant) != 0 {
			t.Fatalf("extra=%v: lost %s meet %s errant %v, want lost %s meet 0-1-2", extra, got, j.Meet, j.Errant, wantLost)
		}
		if at, prev := endOf(t, files[last], "0-1-2"), endOf(t, files[0], "0-1-2"); j.At != at || j.PreviousEnd != prev {
			t.Fatalf("extra=%v: at %v previous end %v, want %v and %v on %s", extra, j.At, j.PreviousEnd, at, prev, names[0])
		}
		if !strings.Contains(j.String(), "rejoins the history of timeline "+names[0]) {
			t.Fatalf("extra=%v: %s", extra, j)
		}
		// Recorded, it reads back the same, and the second timeline's
		// join is an ordinary one.
		if _, _, err := RecordJoins(context.Background(), cat, t.TempDir()); err != nil {
			t.Fatal(err)
		}
		rj, err := ReadJoin(context.Background(), cat, names[last])
		if err != nil || rj == nil || rj.Parent != names[0] || rj.Version != JoinVersionParent {
			t.Fatalf("extra=%v: recorded %+v, %v", extra, rj, err)
		}
		if j1, _ := ReadJoin(context.Background(), cat, names[1]); j1 == nil || j1.Parent != "" || j1.Version != JoinVersion {
			t.Fatalf("extra=%v: the second timeline's join %+v", extra, j1)
		}
	}
}

// TestComputeJoinAfterATimelineWithNothingOfItsOwn: master/master flips,
// A → B → A → B, where A's second timeline archived nothing of its own
// before B took over again (B had archived A's writes as its copies). B's
// join meets A's second timeline at its start: it has everything that
// timeline started from, so the join stays with it (no parent).
func TestComputeJoinAfterATimelineWithNothingOfItsOwn(t *testing.T) {
	b := fileSpec{name: "b-bin.000001", txs: "0-1-1@100 0-1-2@101 0-2-3@110 0-1-4@112 0-1-5@113"}
	specs := [][]fileSpec{
		{{name: "a-bin.000001", txs: "0-1-1@100 0-1-2@101"}},
		{b},
		{{name: "a-bin.000003", start: []string{"0-1-5", "0-2-3"}, at: 114}},
		{{name: b.name, txs: b.txs + " 0-2-6@130"}},
	}
	cat, names, _ := joinTimelines(t, specs, []int{0, 105, 111, 125})
	h, err := NewHistory(context.Background(), cat, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	j, err := h.computeJoin(3)
	if err != nil {
		t.Fatal(err)
	}
	if j.Broken != "" || j.Previous != names[2] || j.Parent != "" || !j.Final || j.Meet != "0-1-5,0-2-3" {
		t.Fatalf("join %s; want it to continue %s", j, names[2])
	}
}

// TestComputeJoinAfterARestoredServer (the 60-minute campaign's finding):
// X archives with server 83's entry in its binlog state; R, restored from
// the archive, takes over (its binlog states only what it binlogged
// since: no 83); then X comes back. X's binlog still states 0-83-20, which
// R's timeline never mentions but its join met: the join continues R's
// timeline, nothing lost, not a gap.
//
// The fourth 60-minute run found the same across two restored servers:
// S, restored from R's history, does not state 83 either, nor does its
// join with R; X's return after S must still continue S's timeline.
func TestComputeJoinAfterARestoredServer(t *testing.T) {
	x := fileSpec{name: "x-bin.000001", start: []string{"0-83-20"}, txs: "0-1-21@100 0-1-22@101"}
	r := fileSpec{name: "r-bin.000001", txs: "0-1-22@101 0-5-23@110 0-5-24@111"}
	for _, c := range []struct {
		name    string
		specs   [][]fileSpec
		created []int
	}{
		{name: "after R", created: []int{0, 105, 115}, specs: [][]fileSpec{{x}, {r},
			{{name: "x-bin.000002", start: []string{"0-83-20", "0-1-22", "0-5-24"}, at: 112, txs: "0-1-25@120"}}}},
		{name: "after S, restored from R", created: []int{0, 105, 113, 118}, specs: [][]fileSpec{{x}, {r},
			{{name: "s-bin.000001", txs: "0-5-24@111 0-6-25@115 0-6-26@116"}},
			{{name: "x-bin.000002", start: []string{"0-83-20", "0-1-22", "0-5-24", "0-6-26"}, at: 117, txs: "0-1-27@120"}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cat, names, _ := joinTimelines(t, c.specs, c.created)
			h, err := NewHistory(context.Background(), cat, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if j, err := h.Join(1); err != nil || j.Broken != "" || !strings.Contains(j.Meet, "0-83-20") {
				t.Fatalf("join of R's timeline %s (%v); want it to meet X's with 0-83-20", j, err)
			}
			last := len(names) - 1
			j, err := h.computeJoin(last)
			if err != nil {
				t.Fatal(err)
			}
			if j.Broken != "" || j.Previous != names[last-1] || j.Parent != "" || len(j.Lost) != 0 || !j.Final {
				t.Fatalf("join %s; want X's return to continue %s with nothing lost", j, names[last-1])
			}
		})
	}
}

// TestComputeJoinAfterAPromotedRestoredServer: a server restored from the
// archive and promoted, whose binlog states only the last transaction it
// applied and then holds only its own, had the old timeline's domain state
// at that transaction (the 60-minute run of 2026-12-07 read it as lacking
// the old timeline's other servers: a broken join).
func TestComputeJoinAfterAPromotedRestoredServer(t *testing.T) {
	x := fileSpec{name: "x-bin.000001", start: []string{"0-83-20"}, txs: "0-1-21@100 0-1-22@101"}
	s := fileSpec{name: "s-bin.000002", start: []string{"0-1-22"}, at: 109, txs: "0-6-23@110 0-6-24@111"}
	cat, names, _ := joinTimelines(t, [][]fileSpec{{x}, {s}}, []int{0, 105})
	j := computedJoin(t, cat, 1)
	if j.Broken != "" || j.Previous != names[0] || len(j.Lost) != 0 || !strings.Contains(j.Meet, "0-83-20") || !strings.Contains(j.Meet, "0-1-22") {
		t.Fatalf("join %s (meet %s); want S to continue X's history with nothing lost", j, j.Meet)
	}
}

// computedJoin is timeline i's join, computed from the archive in cat.
func computedJoin(t *testing.T, cat Catalog, i int) *Join {
	t.Helper()
	h, err := NewHistory(context.Background(), cat, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	j, err := h.computeJoin(i)
	if err != nil {
		t.Fatal(err)
	}
	return j
}
