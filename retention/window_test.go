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
