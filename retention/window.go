package retention

import (
	"fmt"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/snapshot"
)

// Window is a span of time any second of which can be restored: from the
// oldest complete snapshot whose coordinates the timeline's contiguous
// archive holds, to its newest durable event.
type Window struct {
	Timeline     string    `json:"timeline"`
	From         time.Time `json:"from"`
	FromSnapshot string    `json:"from_snapshot"`
	To           time.Time `json:"to"`
	ToPosition   string    `json:"to_position"`
	// CutShort says why the window ends before the timeline does (a gap).
	CutShort string `json:"cut_short,omitempty"`
}

// Windows works out the restorable windows of a cluster, one per timeline
// that has a usable snapshot. Between them are the breaks no restore
// crosses: before the first snapshot, and between timelines.
func Windows(tls []*archive.TimelineState, snaps []snapshot.Entry) []Window {
	var out []Window
	for _, tl := range tls {
		var best *snapshot.Manifest
		start := -1
		for _, e := range snaps {
			if !e.Complete {
				continue
			}
			for i, f := range tl.Files {
				if f.File == e.Manifest.Coordinates.File && e.Manifest.Coordinates.Pos <= f.Size && (best == nil || e.Manifest.Started.Before(best.Started)) {
					best, start = e.Manifest, i
				}
			}
		}
		if best == nil {
			continue
		}
		w := Window{Timeline: tl.Name, From: best.Started, FromSnapshot: best.ID}
		for _, f := range tl.Files[start:] {
			if !f.LastEventTime.IsZero() {
				w.To = f.LastEventTime
			}
			w.ToPosition = replication.Position{File: f.File, Offset: f.Size}.String()
			if f.Gap != nil {
				w.CutShort = f.Gap.Error()
				break
			}
		}
		out = append(out, w)
	}
	return out
}

// String renders a window for binarc ls.
func (w Window) String() string {
	s := fmt.Sprintf("%s → %s  (timeline %s: from snapshot %s to the newest durable event, at %s)",
		w.From.UTC().Format(time.RFC3339), w.To.UTC().Format(time.RFC3339), w.Timeline, w.FromSnapshot, w.ToPosition)
	if w.CutShort != "" {
		s += "; cut short by " + w.CutShort
	}
	return s
}
