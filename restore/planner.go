package restore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
)

// planner walks the chain of steps from a restore's start to its target,
// one transaction at a time: it visits each, decides whether the target
// stops replay before or after it, whether replay applies it or leaves it
// out, and keeps what it found in its fields until finish turns them into
// a Plan.
type planner struct {
	h   *history
	req PlanRequest
	// fromState is the GTID state of the data at the start; byGTID says
	// the start was located by it (the snapshot's coordinates are on no
	// timeline of the archive).
	fromState *replication.GTIDState
	byGTID    bool
	// steps is the chain from the start's timeline to the target's (the
	// last step is on the target's timeline); joins the joins between
	// them.
	steps []step
	joins []*archive.Join
	plan  *Plan

	// skip maps each --skip-gtid to its transaction, nil until met.
	skip map[string]*archive.Transaction
	// applied is the GTID state of the data as replay goes: fromState
	// and every transaction applied so far.
	applied *replication.GTIDState
	// cut lists the transactions left out of the ranges: skipped, or
	// already in the data.
	cut []*archive.Transaction
	// newest is the time of the newest transaction visited, for the
	// error of a time target after the archive's end.
	newest time.Time
	// stops[si] is where replay of steps[si] stops, as far as walked.
	stops []replication.Position
	// reached is the step the target was found on; -1 until it is.
	reached int
}

// newPlanner checks the request, locates its start and its target's
// timeline, and lays out the chain of steps between them.
func newPlanner(ctx context.Context, c archive.Catalog, req PlanRequest) (*planner, error) {
	h, err := newHistory(ctx, c, req.WorkDir)
	if err != nil {
		return nil, err
	}
	skip := map[string]*archive.Transaction{}
	for _, g := range req.Skip {
		if !IsGTID(g) {
			return nil, fmt.Errorf("--skip-gtid %q is not a GTID (0-1-2345 or uuid:n)", g)
		}
		skip[g] = nil
	}
	fromState, err := replication.ParseGTIDState(req.FromState)
	if err != nil {
		return nil, err
	}
	j, from, byGTID, err := h.locate(req, fromState)
	if err != nil {
		return nil, err
	}
	k, err := h.targetTimeline(j, req.Target)
	if err != nil {
		return nil, err
	}
	steps, joins, err := h.chain(j, k, from, fromState, req.Target)
	if err != nil {
		return nil, err
	}
	return &planner{
		h: h, req: req, fromState: fromState, byGTID: byGTID, steps: steps, joins: joins,
		plan:    &Plan{Timeline: h.Timelines[k].Name, FromTimeline: h.Timelines[j].Name, From: from, Target: req.Target},
		skip:    skip,
		applied: fromState.Clone(),
		stops:   make([]replication.Position, len(steps)),
		reached: -1,
	}, nil
}

// found tells whether the target has been reached.
func (pl *planner) found() bool { return pl.reached >= 0 }

// reach records that the target is at position at of step si.
func (pl *planner) reach(si int, at replication.Position) {
	pl.stops[si], pl.reached = at, si
}

// walkStep visits the transactions of step si, file by file, until the
// step's end or the target.
func (pl *planner) walkStep(si int) error {
	st := pl.steps[si]
	files := pl.h.FilesFrom(st.tl, st.from.File)
	if files == nil {
		tl := pl.h.Timelines[st.tl]
		return fmt.Errorf("%w: binlog %s is not in the archive of timeline %s\n%s", ErrOutsideWindow, st.from.File, tl.Name, DescribeWindow(tl))
	}
	pl.stops[si] = st.from
	for fi, fs := range files {
		if !st.open && replication.CompareBinlogNames(fs.File, st.to.File) > 0 {
			break
		}
		if err := pl.walkFile(si, fs, fi == 0); err != nil {
			return err
		}
		if pl.found() {
			return nil
		}
	}
	if !st.open {
		// The step ends where the next timeline's history meets it.
		pl.stops[si] = st.to
	}
	return nil
}

// walkFile fetches fs and visits its transactions: from the step's start
// when it is the step's first file, else from the file's start.
func (pl *planner) walkFile(si int, fs *archive.FileState, first bool) error {
	tl := pl.h.Timelines[pl.steps[si].tl]
	if fs.Gap != nil {
		return fmt.Errorf("%w: %v\n%s", ErrOutsideWindow, fs.Gap, DescribeWindow(tl))
	}
	off := uint64(0)
	if first {
		from := pl.steps[si].from
		if off = from.Offset; off > fs.Size {
			return fmt.Errorf("%w: %s is past the end of the archived %s of timeline %s (%d bytes)\n%s", ErrOutsideWindow, from, fs.File, tl.Name, fs.Size, DescribeWindow(tl))
		}
	}
	if _, err := pl.h.Fetch(fs); err != nil {
		return err
	}
	open, err := pl.h.ScanOpen(fs, off, func(t *archive.Transaction) (bool, error) {
		return pl.visit(si, fs, t)
	})
	if err != nil {
		return err
	}
	return pl.reachAtFileEnd(si, fs, open)
}

// visit handles transaction t of file fs in step si, and tells whether to
// go on to the next transaction.
func (pl *planner) visit(si int, fs *archive.FileState, t *archive.Transaction) (bool, error) {
	if st := pl.steps[si]; !st.open && fs.File == st.to.File && t.Start >= st.to.Offset {
		return false, nil // the step's end: the next timeline takes over
	}
	if t.Time.After(pl.newest) {
		pl.newest = t.Time
	}
	if stop, err := pl.stopsBefore(si, fs, t); stop || err != nil {
		return false, err
	}
	pl.take(si, t)
	pl.stops[si] = replication.Position{File: fs.File, Offset: t.End}
	if pl.stopsAfter(si, fs, t) {
		pl.reached = si
		return false, nil
	}
	return true, nil
}

// stopsBefore tells whether the target is the state just before t (a
// time at or before t's, a position at its start) and if so records it.
// A position inside t is refused.
func (pl *planner) stopsBefore(si int, fs *archive.FileState, t *archive.Transaction) (bool, error) {
	target := pl.req.Target
	switch {
	case target.Kind == TargetTime && !t.Time.Before(target.Time):
		pl.reach(si, replication.Position{File: fs.File, Offset: t.Start})
		return true, nil
	case target.Kind == TargetPosition && pl.onTargetFile(si, fs):
		tp := target.Position.Offset
		if pl.walked(si, fs) <= tp && tp <= t.Start {
			// At t's start, or between the transaction before it (or the
			// walk's start) and t: only events that change no data lie
			// between (a file's header, a Binlog_checkpoint a server
			// writes when it likes), so the state there is the state
			// before t. A checkpoint read with SHOW MASTER STATUS can
			// name such a place.
			pl.reach(si, replication.Position{File: fs.File, Offset: t.Start})
			return true, nil
		}
		if t.Start < tp && tp < t.End {
			return false, fmt.Errorf("--to %s is inside a transaction (%s:%d-%d, GTID %s): use its start or its end", target.Position, fs.File, t.Start, t.End, t.GTID)
		}
	}
	return false, nil
}

// stopsAfter tells whether the target is the state just after t: its
// GTID, or a position at its end.
func (pl *planner) stopsAfter(si int, fs *archive.FileState, t *archive.Transaction) bool {
	target := pl.req.Target
	switch target.Kind {
	case TargetGTID:
		return t.GTID == target.GTID
	case TargetPosition:
		return pl.onTargetFile(si, fs) && t.End == target.Position.Offset
	}
	return false
}

// walked is how far the walk of step si has gone in file fs: the end of
// the last transaction visited, the step's start, or 0 when it has
// visited nothing in fs yet.
func (pl *planner) walked(si int, fs *archive.FileState) uint64 {
	if at := pl.stops[si]; at.File == fs.File {
		return at.Offset
	}
	return 0
}

// reachAtFileEnd reaches a position target on fs after its last
// transaction and within what is archived of it: the state there is the
// state after that transaction (the events after it change no data). A
// position past the start of a transaction whose commit is not archived
// (open, when not 0) is inside that transaction, and refused.
func (pl *planner) reachAtFileEnd(si int, fs *archive.FileState, open uint64) error {
	target := pl.req.Target
	if pl.found() || target.Kind != TargetPosition || !pl.onTargetFile(si, fs) {
		return nil
	}
	tp := target.Position.Offset
	if open != 0 && open < tp && tp <= fs.Size {
		return fmt.Errorf("--to %s is inside a transaction whose commit is not in the archive (it starts at %s:%d): use its start, or wait for the stream to archive its commit", target.Position, fs.File, open)
	}
	if pl.walked(si, fs) <= tp && tp <= fs.Size {
		pl.reach(si, pl.stops[si])
	}
	return nil
}

// onTargetFile tells whether fs, in step si, is the file a position
// target names: on the target's timeline, which is the last step's.
func (pl *planner) onTargetFile(si int, fs *archive.FileState) bool {
	return si == len(pl.steps)-1 && fs.File == pl.req.Target.Position.File
}

// take decides what replay does with t: leave it out (a --skip-gtid, or
// already in the data) or apply it.
func (pl *planner) take(si int, t *archive.Transaction) {
	p := pl.plan
	if _, skip := pl.skip[t.GTID]; skip && t.GTID != "" {
		pl.skip[t.GTID] = t
		p.Skipped = append(p.Skipped, t)
		pl.cut = append(pl.cut, t)
		return
	}
	if pl.alreadyApplied(si, t) {
		p.Applied = append(p.Applied, t)
		pl.cut = append(pl.cut, t)
		return
	}
	pl.applied.Add(t.GTID)
	p.Last = t
	p.tally.add(t.Timeline, t.File, t.End)
}

// alreadyApplied tells whether the data holds t before replay reaches
// it, for two reasons that do not depend on each other:
//   - after a join (si > 0), an earlier step applied it, or the data held
//     it at the start: the new timeline replicated it too;
//   - on any step, when the start was located by the data's GTID state
//     (byGTID), that state covers t in MariaDB's sense (its domain's
//     position is at or past t's seq_no), as a replica at that state
//     would skip it.
//
// A transaction without a GTID is never known to be applied.
func (pl *planner) alreadyApplied(si int, t *archive.Transaction) bool {
	if t.GTID == "" {
		return false
	}
	appliedBeforeJoin := si > 0 && pl.applied.Has(t.GTID)
	coveredByStart := pl.byGTID && pl.fromState.Covers(t.GTID)
	return appliedBeforeJoin || coveredByStart
}

// lastStep is the step replay ends on: the target's, or the chain's last
// when the target was not met (latest, or a time after the archive).
func (pl *planner) lastStep() int {
	if pl.found() {
		return pl.reached
	}
	return len(pl.steps) - 1
}

// finish checks that the target and every --skip-gtid were met, and
// turns the walk into a Plan.
func (pl *planner) finish() (*Plan, error) {
	if err := pl.checkTarget(); err != nil {
		return nil, err
	}
	last := pl.lastStep()
	if err := pl.checkSkips(last); err != nil {
		return nil, err
	}
	p := pl.plan
	for i, st := range pl.steps[:last+1] {
		p.Steps = append(p.Steps, Step{Timeline: pl.h.Timelines[st.tl].Name, From: st.from, To: pl.stops[i]})
	}
	p.Joins = pl.joins[:last]
	end := p.Steps[len(p.Steps)-1]
	p.Timeline, p.Stop = end.Timeline, end.To
	p.Files = pl.h.Fetched()
	for _, fs := range p.Files {
		for _, s := range fs.Segments {
			p.StoredBytes += s.StoredSize
		}
	}
	p.Ranges = pl.h.ranges(p.Steps, pl.cut)
	for _, r := range p.Ranges {
		p.ReplayBytes += r.Stop - r.Start
	}
	return p, nil
}

// checkTarget refuses a target the walk did not meet, unless replaying
// everything walked is what it asks for: latest, or a time before the
// next timeline took over.
func (pl *planner) checkTarget() error {
	if pl.found() {
		return nil
	}
	target, req, p := pl.req.Target, pl.req, pl.plan
	k := pl.steps[len(pl.steps)-1].tl
	tl := pl.h.Timelines[k]
	switch target.Kind {
	case TargetTime:
		if k == len(pl.h.Timelines)-1 {
			return fmt.Errorf("%w: %s is after the newest archived transaction (%s); to restore everything archived, use --to latest\n%s",
				ErrOutsideWindow, target, pl.newest.Format(time.RFC3339), DescribeWindow(tl))
		}
		// The target is before the next timeline took over: all of this
		// one up to its end.
	case TargetGTID:
		return fmt.Errorf("%w: GTID %s is not in the archive after %s/%s\n%s", ErrOutsideWindow, target.GTID, p.FromTimeline, req.From, DescribeWindow(tl))
	case TargetPosition:
		return fmt.Errorf("%w: %s/%s is not a transaction boundary in the archive after %s/%s\n%s", ErrOutsideWindow, tl.Name, target.Position, p.FromTimeline, req.From, DescribeWindow(tl))
	}
	return nil
}

// checkSkips refuses the --skip-gtids the walk did not meet before the
// end of step last, naming each in the order given (not the skip map's,
// which varies run to run).
func (pl *planner) checkSkips(last int) error {
	var missing []string
	for _, g := range pl.req.Skip {
		if t, ok := pl.skip[g]; ok && t == nil && !slices.Contains(missing, g) {
			missing = append(missing, g)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("--skip-gtid %s: no such transaction between %s/%s and %s/%s", strings.Join(missing, ", "),
		pl.plan.FromTimeline, pl.req.From, pl.h.Timelines[pl.steps[last].tl].Name, pl.stops[last])
}
