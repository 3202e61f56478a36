package retention

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/snapshot"
)

func TestWindows(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	files := func(names ...string) []*archive.FileState {
		var fs []*archive.FileState
		for i, n := range names {
			fs = append(fs, &archive.FileState{File: n, Size: 1000, Complete: true,
				FirstEventTime: t0.Add(time.Duration(i) * time.Hour), LastEventTime: t0.Add(time.Duration(i)*time.Hour + 59*time.Minute)})
		}
		return fs
	}
	tl1 := &archive.TimelineState{Name: "000001-a", Info: &archive.TimelineInfo{}, Files: files("b.000001", "b.000002", "b.000003")}
	tl2 := &archive.TimelineState{Name: "000002-b", Info: &archive.TimelineInfo{Previous: &archive.TimelineEnd{Timeline: "000001-a"}}, Files: files("b.000007", "b.000008")}
	snap := func(id, file string, started time.Time) snapshot.Entry {
		return snapshot.Entry{ID: id, Complete: true, Manifest: &snapshot.Manifest{ID: id, Started: started, Coordinates: snapshot.Coordinates{File: file, Pos: 500}}}
	}
	snaps := []snapshot.Entry{
		snap("s1", "b.000002", t0.Add(90*time.Minute)),
		snap("s0", "b.000001", t0.Add(30*time.Minute)),
		{ID: "broken", Complete: false},
		snap("s9", "b.000099", t0), // its binlog is not archived
	}
	ws := Windows([]*archive.TimelineState{tl1, tl2}, snaps)
	if len(ws) != 1 {
		t.Fatalf("windows %+v: want one (timeline 2 has no snapshot)", ws)
	}
	w := ws[0]
	if w.FromSnapshot != "s0" || !w.From.Equal(t0.Add(30*time.Minute)) || !w.To.Equal(t0.Add(2*time.Hour+59*time.Minute)) || w.ToPosition != "b.000003:1000" {
		t.Fatalf("window %+v", w)
	}
	// A gap cuts the window short.
	tl1.Files[2].Gap = errors.New("gap in the archive: bytes [10,20) are not stored")
	if w := Windows([]*archive.TimelineState{tl1}, snaps)[0]; !strings.Contains(w.CutShort, "gap") {
		t.Fatalf("window with a gap: %+v", w)
	}
}

// TestWindowsAcrossJoins: two servers' timelines with the same file names;
// a snapshot is placed only on its own server's timeline, and a window
// runs on across a join that connects, with what was lost at it.
func TestWindowsAcrossJoins(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	files := func(at time.Time) []*archive.FileState {
		return []*archive.FileState{
			{File: "mysql-bin.000001", Size: 1000, Complete: true, FirstEventTime: at, LastEventTime: at.Add(time.Hour)},
			{File: "mysql-bin.000002", Size: 800, FirstEventTime: at.Add(time.Hour), LastEventTime: at.Add(2 * time.Hour)},
		}
	}
	tl1 := &archive.TimelineState{Name: "000001-a", Info: &archive.TimelineInfo{SourceServerID: 1}, Files: files(t0)}
	tl2 := &archive.TimelineState{Name: "000002-b", Info: &archive.TimelineInfo{SourceServerID: 2}, Files: files(t0.Add(3 * time.Hour))}
	snap := func(id string, server uint32, started time.Time) snapshot.Entry {
		return snapshot.Entry{ID: id, Complete: true, Manifest: &snapshot.Manifest{ID: id, Started: started, MasterServerID: server,
			Coordinates: snapshot.Coordinates{File: "mysql-bin.000001", Pos: 500}}}
	}
	tls := []*archive.TimelineState{tl1, tl2}
	// Only a snapshot of server 2's binlog: one window, on timeline 2.
	ws := Windows(tls, []snapshot.Entry{snap("s2", 2, t0.Add(3*time.Hour))})
	if len(ws) != 1 || ws[0].Timeline != "000002-b" {
		t.Fatalf("windows %+v: want one on timeline 2", ws)
	}
	// A snapshot of server 1's binlog and a join: one window across it.
	join := &archive.Join{Timeline: "000002-b", Previous: "000001-a", At: archive.Point{File: "mysql-bin.000001", Offset: 300},
		Lost: []string{"0-1-5..9"}, SwitchTime: t0.Add(3 * time.Hour), Final: true}
	snaps := []snapshot.Entry{snap("s1", 1, t0.Add(10*time.Minute)), snap("s2", 2, t0.Add(3*time.Hour))}
	ws = WindowsAcross(tls, snaps, []*archive.Join{nil, join})
	if len(ws) != 1 || ws[0].FromSnapshot != "s1" || ws[0].ToTimeline != "000002-b" || !ws[0].To.Equal(t0.Add(5*time.Hour)) ||
		ws[0].ToPosition != "000002-b/mysql-bin.000002:800" || !strings.Contains(ws[0].String(), "0-1-5..9") {
		t.Fatalf("windows %+v: want one from s1 across the join to timeline 2's end, lost range shown", ws)
	}
	// A join no restore crosses cuts the window short; timeline 2 has its
	// own.
	broken := *join
	broken.Broken = "no GTIDs"
	ws = WindowsAcross(tls, snaps, []*archive.Join{nil, &broken})
	if len(ws) != 2 || !strings.Contains(ws[0].CutShort, "no GTIDs") || ws[1].FromSnapshot != "s2" {
		t.Fatalf("windows %+v: want two, the first cut short by the broken join", ws)
	}
}

// TestWindowsAcrossARejoin: a timeline that rejoins an older timeline's
// history continues a window that started on that older timeline, and
// cuts short one that started on the timeline it left behind.
func TestWindowsAcrossARejoin(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	files := func(at time.Time) []*archive.FileState {
		return []*archive.FileState{{File: "mysql-bin.000001", Size: 1000, Complete: true, FirstEventTime: at, LastEventTime: at.Add(time.Hour)}}
	}
	var tls []*archive.TimelineState
	for i, name := range []string{"000001-a", "000002-b", "000003-c"} {
		tls = append(tls, &archive.TimelineState{Name: name, Info: &archive.TimelineInfo{SourceServerID: uint32(i + 1)}, Files: files(t0.Add(time.Duration(2*i) * time.Hour))})
	}
	snap := func(id string, server uint32, started time.Time) snapshot.Entry {
		return snapshot.Entry{ID: id, Complete: true, Manifest: &snapshot.Manifest{ID: id, Started: started, MasterServerID: server,
			Coordinates: snapshot.Coordinates{File: "mysql-bin.000001", Pos: 100}}}
	}
	joins := []*archive.Join{nil,
		{Timeline: "000002-b", Previous: "000001-a", At: archive.Point{File: "mysql-bin.000001", Offset: 300}, Final: true},
		{Timeline: "000003-c", Previous: "000002-b", Parent: "000001-a", At: archive.Point{File: "mysql-bin.000001", Offset: 200}, Lost: []string{"0-2-1..9"}, Final: true}}
	ws := WindowsAcross(tls, []snapshot.Entry{snap("s1", 1, t0.Add(time.Minute))}, joins)
	if len(ws) != 1 || ws[0].ToTimeline != "000003-c" || ws[0].CutShort != "" || len(ws[0].Joins) != 2 {
		t.Fatalf("windows %+v: want one from timeline 1 to timeline 3", ws)
	}
	ws = WindowsAcross(tls, []snapshot.Entry{snap("s2", 2, t0.Add(2*time.Hour+time.Minute))}, joins)
	if len(ws) != 1 || ws[0].ToTimeline != "000002-b" || !strings.Contains(ws[0].CutShort, "does not hold this window's start") {
		t.Fatalf("windows %+v: want one on timeline 2, cut short at timeline 3", ws)
	}
}
