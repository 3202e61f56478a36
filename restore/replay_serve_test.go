package restore

import (
	"testing"

	"github.com/binarc/binarc/replication"
)

// TestAppliedCounts: bytes and transactions applied at a replica's
// position, across files and around a skipped range.
func TestAppliedCounts(t *testing.T) {
	p := &Plan{Ranges: []ReplayRange{
		{File: "b.000001", Start: 100, Stop: 500},
		{File: "b.000002", Start: 4, Stop: 200}, // a skipped transaction [200,300)
		{File: "b.000002", Start: 300, Stop: 400},
	}}
	te := &txEnds{files: []string{"b.000001", "b.000002", ""}, ends: [][]uint64{{300, 500}, {200, 400}}, before: []uint64{0, 2, 4}}
	for _, c := range []struct {
		at        replication.Position
		bytes, tx uint64
	}{
		{replication.Position{File: "b.000001", Offset: 100}, 0, 0},
		{replication.Position{File: "b.000001", Offset: 300}, 200, 1},
		{replication.Position{File: "b.000002", Offset: 4}, 400, 2},
		{replication.Position{File: "b.000002", Offset: 250}, 596, 3},
		{replication.Position{File: "b.000002", Offset: 400}, 696, 4},
		{replication.Position{File: "b.000003", Offset: 4}, 696, 4},
	} {
		if got := appliedBytes(p, c.at); got != c.bytes {
			t.Errorf("appliedBytes(%s) = %d, want %d", c.at, got, c.bytes)
		}
		if got, total := te.applied(c.at); got != c.tx || total != 4 {
			t.Errorf("applied(%s) = %d of %d, want %d of 4", c.at, got, total, c.tx)
		}
	}
	if !atOrAfter(replication.Position{File: "b.000002", Offset: 4}, replication.Position{File: "b.000001", Offset: 900}) ||
		atOrAfter(replication.Position{File: "b.000001", Offset: 4}, replication.Position{File: "b.000001", Offset: 900}) ||
		!atOrAfter(replication.Position{File: "b.000001", Offset: 4}, replication.Position{}) {
		t.Error("atOrAfter")
	}
}
