package restore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
)

// locate finds the timeline and position a restore starts from. A bare
// file name means nothing across timelines (two servers name their files
// alike), so the coordinates are looked up only on the timelines of the
// server whose binlog they are on; where several hold the file, the GTID
// state at the coordinates must match the data's; a snapshot of a server
// no timeline was archived from is found by its GTID state.
func (h *history) locate(req PlanRequest, fromState *replication.GTIDState) (int, replication.Position, bool, error) {
	if req.Timeline != "" {
		i := h.Index(req.Timeline)
		if i < 0 {
			return 0, req.From, false, fmt.Errorf("%w: no timeline %s in cluster %q (it has %s)", ErrOutsideWindow, req.Timeline, h.Catalog.Layout.Cluster, h.names())
		}
		if h.FilesFrom(i, req.From.File) == nil {
			return 0, req.From, false, fmt.Errorf("%w: binlog %s is not in the archive of timeline %s\n%s", ErrOutsideWindow, req.From.File, req.Timeline, DescribeWindow(h.Timelines[i]))
		}
		return i, req.From, false, nil
	}
	var cands []int
	for i, tl := range h.Timelines {
		if req.FromServerID != 0 && (tl.Info == nil || tl.Info.SourceServerID != req.FromServerID) {
			continue
		}
		if req.FromServerUUID != "" && tl.Info != nil && tl.Info.SourceServerUUID != "" && !strings.EqualFold(tl.Info.SourceServerUUID, req.FromServerUUID) {
			continue // MySQL: the same server_id on another server
		}
		if fs := h.FilesFrom(i, req.From.File); fs != nil && fs[0].Size >= req.From.Offset {
			cands = append(cands, i)
		}
	}
	if len(cands) > 1 && !fromState.Empty() {
		var match []int
		for _, i := range cands {
			st, ok, err := h.StateAt(h.FilesFrom(i, req.From.File)[0], req.From.Offset)
			if err != nil {
				return 0, req.From, false, err
			}
			if ok && st.SamePosition(fromState) {
				match = append(match, i)
			}
		}
		if len(match) > 0 {
			// The same file with the same history (a server archived
			// again after a flip back): the oldest reaches every later
			// target.
			cands = match[:1]
		}
	}
	switch {
	case len(cands) == 1:
		return cands[0], req.From, false, nil
	case len(cands) > 1:
		var names []string
		for _, i := range cands {
			names = append(names, h.Timelines[i].Name+"/"+req.From.String())
		}
		return 0, req.From, false, fmt.Errorf("%w: %s is ambiguous: %d timelines hold a binlog of that name (%s); name the timeline (TIMELINE/FILE:POS) or the snapshot", ErrOutsideWindow, req.From, len(cands), strings.Join(names, ", "))
	}
	if !fromState.Empty() {
		i, pos, ok, err := h.locateByGTID(fromState)
		if err != nil {
			return 0, req.From, false, err
		}
		if ok {
			return i, pos, true, nil
		}
	}
	who := ""
	if req.FromServerID != 0 {
		who = fmt.Sprintf(" archived from server_id %d", req.FromServerID)
	}
	var b strings.Builder
	for _, tl := range h.Timelines {
		b.WriteString("\n" + DescribeWindow(tl))
	}
	state := ""
	if !fromState.Empty() {
		state = ", nor a position at its GTID state " + fromState.Pos()
	}
	return 0, req.From, false, fmt.Errorf("%w: binlog %s is not in the archive of any timeline%s%s%s", ErrOutsideWindow, req.From, who, state, b.String())
}

// locateByGTID finds where a server at state st stands in the archive:
// the newest timeline with a file whose starting state it covers, at the
// first transaction after that it does not have.
func (h *history) locateByGTID(st *replication.GTIDState) (int, replication.Position, bool, error) {
	for i := len(h.Timelines) - 1; i >= 0; i-- {
		files := h.Timelines[i].Files
		for k := len(files) - 1; k >= 0; k-- {
			fs := files[k]
			if fs.Gap != nil {
				continue
			}
			start, ok, err := h.StartState(fs)
			if err != nil {
				return 0, replication.Position{}, false, err
			}
			if !ok || !st.CoversState(start) {
				continue
			}
			// Found the file: the first transaction the state lacks,
			// from here on.
			for _, f := range files[k:] {
				var at *replication.Position
				err := h.Scan(f, 0, func(t *archive.Transaction) (bool, error) {
					if t.GTID != "" && !st.Covers(t.GTID) {
						at = &replication.Position{File: f.File, Offset: t.Start}
						return false, nil
					}
					return true, nil
				})
				if err != nil {
					return 0, replication.Position{}, false, err
				}
				if at != nil {
					return i, *at, true, nil
				}
			}
			last := files[len(files)-1]
			return i, replication.Position{File: last.File, Offset: last.Size}, true, nil
		}
	}
	return 0, replication.Position{}, false, nil
}

// targetTimeline is the timeline a restore ends on, starting on timeline
// j: for a position, the one it names (or the only one holding its file);
// for latest, the newest; for a time, the newest that had taken over
// before it; for a GTID, the one it was written on, or lost from.
func (h *history) targetTimeline(j int, t Target) (int, error) {
	last := len(h.Timelines) - 1
	switch t.Kind {
	case TargetPosition:
		if t.Timeline != "" {
			i := h.Index(t.Timeline)
			if i < 0 {
				return 0, fmt.Errorf("--to %s/%s: no timeline %s in cluster %q (it has %s)", t.Timeline, t.Position, t.Timeline, h.Catalog.Layout.Cluster, h.names())
			}
			if i < j {
				return 0, fmt.Errorf("%w: --to %s/%s is on a timeline before the one the restore starts on (%s)", ErrOutsideWindow, t.Timeline, t.Position, h.Timelines[j].Name)
			}
			return i, nil
		}
		var cands []string
		k := -1
		for i := range h.Timelines {
			if h.FilesFrom(i, t.Position.File) != nil {
				cands = append(cands, h.Timelines[i].Name+"/"+t.Position.String())
				k = i
			}
		}
		switch {
		case len(cands) == 0:
			return 0, fmt.Errorf("%w: binlog %s is in no timeline of the archive (%s)", ErrOutsideWindow, t.Position.File, h.names())
		case len(cands) > 1:
			return 0, fmt.Errorf("--to %s is ambiguous: %d timelines hold a binlog of that name (%s); give one as --to TIMELINE/FILE:POS", t.Position, len(cands), strings.Join(cands, ", "))
		case k < j:
			return 0, fmt.Errorf("%w: --to %s is on timeline %s, before the one the restore starts on (%s)", ErrOutsideWindow, t.Position, h.Timelines[k].Name, h.Timelines[j].Name)
		}
		return k, nil
	case TargetTime:
		k := j
		for i := j + 1; i <= last; i++ {
			jn, err := h.Join(i)
			if err != nil {
				return 0, err
			}
			// The switch is known to the second at best: a switch in the
			// target's own second happened at or after it.
			if jn.SwitchTime.Before(t.Time) {
				k = i
			}
		}
		return k, nil
	case TargetGTID:
		// The newest timeline whose history from j on still holds it.
		for k := last; k > j; k-- {
			if _, joins, err := h.path(j, k, t); err == nil && !lostOnPath(joins, t.GTID) {
				return k, nil
			} else if err != nil && !errors.Is(err, ErrOutsideWindow) {
				return 0, err
			}
		}
		return j, nil
	}
	return last, nil
}

func (h *history) names() string {
	var n []string
	for _, tl := range h.Timelines {
		n = append(n, tl.Name)
	}
	return strings.Join(n, ", ")
}

// lostOnPath tells whether one of joins lost g.
func lostOnPath(joins []*archive.Join, g string) bool {
	for _, jn := range joins {
		if jn.LostHas(g) {
			return true
		}
	}
	return false
}
