package retention

import (
	"fmt"
	"strings"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/snapshot"
)

// Window is a span of time any second of which can be restored: from the
// oldest complete snapshot whose coordinates a timeline's contiguous
// archive holds (on a timeline of the server whose binlog they are on), to
// the newest durable event, across the joins that follow that timeline.
type Window struct {
	Timeline     string    `json:"timeline"`
	From         time.Time `json:"from"`
	FromSnapshot string    `json:"from_snapshot"`
	To           time.Time `json:"to"`
	// ToTimeline is the timeline the window ends on (Timeline when it
	// crosses no join).
	ToTimeline string `json:"to_timeline,omitempty"`
	ToPosition string `json:"to_position"`
	// Joins are the joins the window crosses, with what each lost.
	Joins []*archive.Join `json:"joins,omitempty"`
	// CutShort says why the window ends before the archive does (a gap, a
	// join no restore crosses).
	CutShort string `json:"cut_short,omitempty"`
}

// Windows works out the restorable windows of a cluster without looking
// at joins: one per timeline that has a usable snapshot.
func Windows(tls []*archive.TimelineState, snaps []snapshot.Entry) []Window {
	return WindowsAcross(tls, snaps, nil)
}

// WindowsAcross works out the restorable windows of a cluster: from each
// timeline with a usable snapshot not already inside an earlier window,
// across every join that connects (joins[i] joins timeline i to i-1; nil
// entries, or a nil slice, connect nothing).
func WindowsAcross(tls []*archive.TimelineState, snaps []snapshot.Entry, joins []*archive.Join) []Window {
	var out []Window
	covered := -1
	for i, tl := range tls {
		if i <= covered {
			continue
		}
		var best *snapshot.Manifest
		start := -1
		for _, e := range snaps {
			if !e.Complete || tl.Info != nil && tl.Info.SourceServerID != e.Manifest.BinlogServerID() {
				continue
			}
			for k, f := range tl.Files {
				if f.File == e.Manifest.Coordinates.File && e.Manifest.Coordinates.Pos <= f.Size && (best == nil || e.Manifest.Started.Before(best.Started)) {
					best, start = e.Manifest, k
				}
			}
		}
		if best == nil {
			continue
		}
		w := Window{Timeline: tl.Name, From: best.Started, FromSnapshot: best.ID}
		for k := i; k < len(tls); k++ {
			files := tls[k].Files
			if k > i && len(files) == 0 {
				continue // holds no binlog: the next timeline is joined across it
			}
			if k == i {
				files = files[start:]
			} else {
				var j *archive.Join
				if k < len(joins) {
					j = joins[k]
				}
				if j == nil {
					break
				}
				if j.Broken != "" {
					w.CutShort = j.String()
					break
				}
				if !inHistory(tls, joins, i, k) {
					w.CutShort = fmt.Sprintf("timeline %s, whose history does not hold this window's start (%s)", tls[k].Name, j)
					break
				}
				w.Joins = append(w.Joins, j)
				files = nil
				for x, f := range tls[k].Files {
					if f.File == j.At.File {
						files = tls[k].Files[x:]
					}
				}
			}
			covered = k
			w.ToTimeline = tls[k].Name
			gap := false
			for _, f := range files {
				if !f.LastEventTime.IsZero() {
					w.To = f.LastEventTime
				}
				w.ToPosition = replication.Position{File: f.File, Offset: f.Size}.String()
				if k > i {
					w.ToPosition = tls[k].Name + "/" + w.ToPosition
				}
				if f.Gap != nil {
					w.CutShort, gap = f.Gap.Error(), true
					break
				}
			}
			if gap {
				break
			}
		}
		out = append(out, w)
	}
	return out
}

// inHistory tells whether timeline i is in timeline k's history: k's
// join continues i, or a timeline whose history holds i.
func inHistory(tls []*archive.TimelineState, joins []*archive.Join, i, k int) bool {
	for k > i {
		if k >= len(joins) || joins[k] == nil || joins[k].Broken != "" {
			return false
		}
		p := k - 1
		for p >= 0 && tls[p].Name != joins[k].From() {
			p--
		}
		for p > i && len(tls[p].Files) == 0 {
			p-- // holds no binlog: the next timeline is joined across it
		}
		k = p
	}
	return k == i
}

// String renders a window for binarc ls.
func (w Window) String() string {
	tl := "timeline " + w.Timeline
	if w.ToTimeline != "" && w.ToTimeline != w.Timeline {
		tl = fmt.Sprintf("timelines %s to %s across %d join(s)", w.Timeline, w.ToTimeline, len(w.Joins))
	}
	s := fmt.Sprintf("%s → %s  (%s: from snapshot %s to the newest durable event, at %s)",
		w.From.UTC().Format(time.RFC3339), w.To.UTC().Format(time.RFC3339), tl, w.FromSnapshot, w.ToPosition)
	for _, j := range w.Joins {
		if len(j.Lost) > 0 {
			s += fmt.Sprintf("; lost at the switch to %s (%s): %s", j.Timeline, j.SwitchTime.UTC().Format(time.RFC3339), strings.Join(j.Lost, ","))
		}
	}
	if w.CutShort != "" {
		s += "; cut short by " + w.CutShort
	}
	return s
}
