package restore

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/serve"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// TestAppliedCounts: bytes and transactions applied at a replica's
// position, across files and around a skipped range.
func TestAppliedCounts(t *testing.T) {
	rs := []ReplayRange{
		{File: "b.000001", Start: 100, Stop: 500},
		{File: "b.000002", Start: 4, Stop: 200}, // a skipped transaction [200,300)
		{File: "b.000002", Start: 300, Stop: 400},
	}
	for _, c := range []struct {
		at    replication.Position
		bytes uint64
	}{
		{replication.Position{File: "b.000001", Offset: 100}, 0},
		{replication.Position{File: "b.000001", Offset: 300}, 200},
		{replication.Position{File: "b.000002", Offset: 4}, 400},
		{replication.Position{File: "b.000002", Offset: 250}, 596},
		{replication.Position{File: "b.000002", Offset: 400}, 696},
		{replication.Position{File: "b.000003", Offset: 4}, 696},
	} {
		if got := appliedBytes(rs, c.at); got != c.bytes {
			t.Errorf("appliedBytes(%s) = %d, want %d", c.at, got, c.bytes)
		}
	}
	if rangeBytes(rs) != 696 {
		t.Errorf("rangeBytes = %d, want 696", rangeBytes(rs))
	}
	if !atOrAfter(replication.Position{File: "b.000002", Offset: 4}, replication.Position{File: "b.000001", Offset: 900}) ||
		atOrAfter(replication.Position{File: "b.000001", Offset: 4}, replication.Position{File: "b.000001", Offset: 900}) ||
		!atOrAfter(replication.Position{File: "b.000001", Offset: 4}, replication.Position{}) {
		t.Error("atOrAfter")
	}
}

// TestTxTally: transactions applied at a replica's position, counted to
// within markEvery, per timeline even when file names repeat.
func TestTxTally(t *testing.T) {
	var tt txTally
	for i := range 1000 {
		tt.add("t1", "b.000001", uint64(100+i*10)) // ends 100..10090
	}
	for i := range 300 {
		tt.add("t1", "b.000002", uint64(100+i*10))
	}
	for i := range 10 {
		tt.add("t2", "b.000001", uint64(100+i*10))
	}
	if tt.total("t1") != 1300 || tt.total("t2") != 10 || tt.total("") != 1310 {
		t.Errorf("totals %d %d %d", tt.total("t1"), tt.total("t2"), tt.total(""))
	}
	for _, c := range []struct {
		tl       string
		at       replication.Position
		min, max uint64
	}{
		{"t1", replication.Position{File: "b.000001", Offset: 4}, 0, 0},
		{"t1", replication.Position{File: "b.000001", Offset: 5000}, 491 - markEvery, 491},
		{"t1", replication.Position{File: "b.000002", Offset: 4}, 1000, 1000},
		{"t1", replication.Position{File: "b.000002", Offset: 100000}, 1300 - markEvery, 1300},
		{"t1", replication.Position{File: "b.000003", Offset: 4}, 1300, 1300},
		{"t2", replication.Position{File: "b.000001", Offset: 100000}, 0, 10},
	} {
		if got := tt.applied(c.tl, c.at); got < c.min || got > c.max {
			t.Errorf("applied(%s, %s) = %d, want %d..%d", c.tl, c.at, got, c.min, c.max)
		}
	}
}

// TestRangeSource: serve is handed the events of the ranges only (the
// head of the file too, which serve reads for the format description),
// nothing between two ranges of a file and nothing after the last; plans
// are split by timeline even when file names repeat.
func TestRangeSource(t *testing.T) {
	dir := t.TempDir()
	b := binlogtest.New("b.000001")
	data := append([]byte(nil), replication.Magic...)
	var starts []uint64
	add := func(ev replication.Event) { starts = append(starts, ev.Start); data = append(data, ev.Raw...) }
	add(b.Next(gomysql.FORMAT_DESCRIPTION_EVENT, 100))
	for i := 0; i < 5; i++ {
		add(b.NextBody(gomysql.QUERY_EVENT, binlogtest.QueryBody("INSERT")))
	}
	path := filepath.Join(dir, "b.000001")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	// Serve events 1..4, without event 2 (cut out), from event 1.
	rs := []ReplayRange{
		{Timeline: "t1", File: "b.000001", Path: path, Start: starts[1], Stop: starts[2]},
		{Timeline: "t1", File: "b.000001", Path: path, Start: starts[3], Stop: starts[5]},
	}
	src := newRangeSource(rs)
	files, err := src.Files(context.Background())
	if err != nil || len(files) != 1 || files[0].Size != starts[5] || !files[0].Complete {
		t.Fatalf("Files = %+v, %v", files, err)
	}
	read := func(from uint64) []uint64 {
		var got []uint64
		err := src.Read(context.Background(), files[0], from, func(off uint64, _ replication.Header, _ []byte) error {
			got = append(got, off)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got, want := read(starts[1]), []uint64{starts[1], starts[3], starts[4]}; !slices.Equal(got, want) {
		t.Errorf("read from the first range: %v, want %v", got, want)
	}
	if got, want := read(4), []uint64{starts[0], starts[1], starts[3], starts[4]}; !slices.Equal(got, want) {
		t.Errorf("read from the head: %v, want %v", got, want)
	}
	if err := src.Read(context.Background(), serve.File{Name: "b.000009", Size: 100}, 4, nil); err == nil {
		t.Error("a file outside the plan was read")
	}
	g := byTimeline([]ReplayRange{{Timeline: "t1", File: "b.000001"}, {Timeline: "t1", File: "b.000002"}, {Timeline: "t2", File: "b.000001"}})
	if len(g) != 2 || len(g[0]) != 2 || len(g[1]) != 1 || g[1][0].Timeline != "t2" {
		t.Errorf("byTimeline = %+v", g)
	}
}
