package restore

import (
	"strings"
	"testing"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
)

// rejoinArchive: server 1 wrote 0-1-1..5 (timeline 1); server 2 had
// 0-1-1..4 when it was promoted at 110 and wrote 0-2-5, 0-2-6 (timeline 2);
// server 3, rebuilt long before from a copy holding 0-1-1..3, took over at
// 130 and wrote 0-3-4, 0-3-5 (timeline 3). Timeline 3's history is timeline
// 1's up to 0-1-3, then its own: it never had 0-1-4 nor timeline 2's.
func rejoinArchive(t *testing.T) (archive.Catalog, map[string][]*fakeFile) {
	b := threeTimelines(t)
	b.add(ctl1, "mysql-bin.000001", nil, []string{"0-1-1", "0-1-2", "0-1-3", "0-1-4", "0-1-5"}, []int{100, 101, 102, 103, 104})
	b.add(ctl2, "s2-bin.000001", nil, []string{"0-1-1", "0-1-2", "0-1-3", "0-1-4", "0-2-5", "0-2-6"}, []int{100, 101, 102, 103, 120, 121})
	b.add(ctl3, "s3-bin.000001", nil, []string{"0-1-1", "0-1-2", "0-1-3", "0-3-4", "0-3-5"}, []int{100, 101, 102, 140, 141})
	return b.cat, b.files
}

// TestPlanAcrossARejoin: a timeline that rejoins an older one's history
// is reached from it directly, never through the timeline between (whose
// copies of the shared transactions would be replayed twice, and whose own
// transactions the new server never had); a target on the abandoned
// branch still restores that branch.
func TestPlanAcrossARejoin(t *testing.T) {
	cat, files := rejoinArchive(t)
	f1 := find(files, ctl1, "0-1-1")
	fromFirst := PlanRequest{From: replication.Position{File: f1.b.File, Offset: f1.ends["0-1-1"]}, FromServerID: 1, FromState: "0-1-1"}
	f2 := find(files, ctl2, "0-2-5")
	fromBranch := PlanRequest{From: replication.Position{File: f2.b.File, Offset: f2.ends["0-2-5"]}, FromServerID: 2, FromState: "0-1-4,0-2-5"}
	cases := []struct {
		name   string
		req    PlanRequest
		target Target
		want   string // replayed GTIDs, or "error: substring"
		tl     string
		joins  int
	}{
		{"latest goes from timeline 1 straight to 3", fromFirst, Target{Kind: TargetLatest}, "0-1-2 0-1-3 0-3-4 0-3-5", ctl3, 1},
		{"a time on the abandoned branch restores it", fromFirst, Target{Kind: TargetTime, Time: at(125)}, "0-1-2 0-1-3 0-1-4 0-2-5 0-2-6", ctl2, 1},
		{"a time after the rejoin", fromFirst, Target{Kind: TargetTime, Time: at(141)}, "0-1-2 0-1-3 0-3-4", ctl3, 1},
		{"a GTID only the abandoned branch has", fromFirst, Target{Kind: TargetGTID, GTID: "0-2-6"}, "0-1-2 0-1-3 0-1-4 0-2-5 0-2-6", ctl2, 1},
		{"a GTID after the rejoin", fromFirst, Target{Kind: TargetGTID, GTID: "0-3-5"}, "0-1-2 0-1-3 0-3-4 0-3-5", ctl3, 1},
		{"a position after the rejoin", fromFirst, Target{Kind: TargetPosition, Timeline: ctl3, Position: replication.Position{File: "s3-bin.000001", Offset: find(files, ctl3, "0-3-4").ends["0-3-4"]}}, "0-1-2 0-1-3 0-3-4", ctl3, 1},
		{"a snapshot on the abandoned branch restores it", fromBranch, Target{Kind: TargetTime, Time: at(125)}, "0-2-6", ctl2, 0},
		{"a snapshot on the abandoned branch does not reach past the rejoin", fromBranch, Target{Kind: TargetLatest}, "error: does not pass through timeline " + ctl2, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := planOrRefusal(t, cat, c.req, c.target, c.want)
			if p == nil {
				return
			}
			if got := strings.Join(replayedAcross(p, files), " "); got != c.want || p.Timeline != c.tl || len(p.Joins) != c.joins {
				t.Fatalf("replays %q on %s across %d joins, want %q on %s across %d; ranges %+v", got, p.Timeline, len(p.Joins), c.want, c.tl, c.joins, p.Ranges)
			}
			if c.joins > 0 && c.tl == ctl3 && (p.Joins[0].Parent != ctl1 || p.Joins[0].Previous != ctl2) {
				t.Fatalf("crossed %s", p.Joins[0])
			}
		})
	}
}
