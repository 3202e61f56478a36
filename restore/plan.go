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

// PlanRequest asks for the binlog part of a restore.
type PlanRequest struct {
	// Timeline holding From; empty means located: on the timelines of
	// FromServerID holding From.File, or by FromState.
	Timeline string
	// From is where the restored data stands: a snapshot's coordinates.
	From replication.Position
	// FromServerID is the server whose binlog From is on (0: unknown);
	// FromServerUUID its server_uuid when known (MySQL).
	FromServerID   uint32
	FromServerUUID string
	// FromState is the GTID state of the data at From ("" when unknown).
	FromState string
	Target    Target
	// Skip lists GTIDs of transactions to leave out.
	Skip []string
	// WorkDir receives the rebuilt binlog files the replay reads.
	WorkDir string
}

// ReplayRange is a byte range [Start, Stop) of one rebuilt file, cut at
// transaction boundaries.
type ReplayRange struct {
	Timeline    string
	File        string
	Path        string
	Start, Stop uint64
}

// Step is the part of one timeline a restore replays: from From to To.
type Step struct {
	Timeline string
	From     replication.Position
	To       replication.Position
}

// Plan is the binlog part of a restore: what to fetch and what to replay.
type Plan struct {
	// Timeline is the timeline the restore ends on; FromTimeline the one
	// it starts on.
	Timeline     string
	FromTimeline string
	From         replication.Position
	Target       Target
	// Stop is where replay ends on Timeline: everything before it is
	// applied.
	Stop replication.Position
	// Steps is the chain, one per timeline; archive.Joins the joins it crosses.
	Steps   []Step
	Joins   []*archive.Join
	Ranges  []ReplayRange
	Skipped []*archive.Transaction
	// Applied are transactions left out because the data already had
	// them (by GTID) when replay reached them after a join.
	Applied []*archive.Transaction
	// Last is the last transaction applied, if any.
	Last        *archive.Transaction
	Files       []*archive.FileState
	StoredBytes int64  // compressed bytes fetched
	ReplayBytes uint64 // binlog bytes replayed
	// tally counts the transactions replayed, for progress.
	tally txTally
}

// ErrOutsideWindow means the target is not restorable from the archive.
var ErrOutsideWindow = archive.ErrOutsideWindow

// PlanBinlog fetches the archived binlog from req.From onwards into
// req.WorkDir and returns the ranges to replay to the target. A target on
// a later timeline is reached across the joins between timelines: the old
// timeline is replayed up to where the histories meet, the new one from
// there, so what was lost at a switch is not applied to a target after it.
// Every segment it needs is downloaded and checked before anything is
// replayed.
func PlanBinlog(ctx context.Context, c archive.Catalog, req PlanRequest) (*Plan, error) {
	pl, err := newPlanner(ctx, c, req)
	if err != nil {
		return nil, err
	}
	for si := range pl.steps {
		if err := pl.walkStep(si); err != nil {
			return nil, err
		}
		if pl.found() {
			break
		}
	}
	return pl.finish()
}

// step is the part of one timeline a plan reads: from from to to, or to
// the timeline's end (or the target) when open.
type step struct {
	tl       int
	from, to replication.Position
	open     bool
}

// chain lists the steps from position from on timeline j to timeline k:
// each timeline of k's history up to where the next one's history meets
// it, the next from just after that point. It refuses a join no restore
// crosses, a start on a branch k's history left, and a start that already
// holds transactions lost at a switch it crosses.
func (h *history) chain(j, k int, from replication.Position, fromState *replication.GTIDState, target Target) ([]step, []*archive.Join, error) {
	path, joins, err := h.path(j, k, target)
	if err != nil {
		return nil, nil, err
	}
	steps := []step{{tl: j, from: from, open: true}}
	for n, jn := range joins {
		last := &steps[len(steps)-1]
		end := jn.PreviousEnd.Pos()
		if archive.ComparePoints(last.from, end) > 0 {
			return nil, nil, fmt.Errorf("%w: the restore starts at %s/%s, after the point where timeline %s meets %s (%s/%s): the data holds transactions lost at that switch (%s); restore from an earlier snapshot",
				ErrOutsideWindow, h.Timelines[last.tl].Name, last.from, jn.Timeline, jn.From(), jn.From(), end, strings.Join(jn.Lost, ","))
		}
		for _, g := range jn.Lost {
			if fromState.Has(replication.FirstOfRange(g)) {
				return nil, nil, fmt.Errorf("%w: the snapshot's data holds %s, lost at the switch to timeline %s: restore from an earlier snapshot", ErrOutsideWindow, g, jn.Timeline)
			}
		}
		last.to, last.open = end, false
		steps = append(steps, step{tl: path[n+1], from: jn.At.Pos(), open: true})
	}
	return steps, joins, nil
}

// path lists the timelines of k's history from j on (j first, k last) and
// the join into each after the first: k's join, the join of the timeline
// it continues, and so on back to j. It fails when a join on the way is
// broken, or when j is not in k's history (k's server never had what j
// archived after the point where the histories parted).
func (h *history) path(j, k int, target Target) ([]int, []*archive.Join, error) {
	path := []int{k}
	var joins []*archive.Join
	for cur := k; cur != j; {
		jn, err := h.Join(cur)
		if err != nil {
			return nil, nil, err
		}
		if jn.Broken != "" {
			return nil, nil, fmt.Errorf("%w: %s is on timeline %s, and no restore crosses from %s: %s", ErrOutsideWindow, target, h.Timelines[k].Name, jn.Previous, jn)
		}
		p := h.Index(jn.From())
		if p < j || p >= cur {
			return nil, nil, fmt.Errorf("%w: %s is on timeline %s, whose history does not pass through timeline %s where the restore starts (%s): the data holds transactions that history never had; restore from an earlier snapshot",
				ErrOutsideWindow, target, h.Timelines[k].Name, h.Timelines[j].Name, jn)
		}
		path, joins = append(path, p), append(joins, jn)
		cur = p
	}
	slices.Reverse(path)
	slices.Reverse(joins)
	return path, joins, nil
}

// ranges lists the byte ranges of the steps, leaving out the cut
// transactions.
func (h *history) ranges(steps []Step, cut []*archive.Transaction) []ReplayRange {
	var out []ReplayRange
	add := func(fs *archive.FileState, start, stop uint64) {
		start = max(start, replication.MagicLen)
		if stop > start {
			out = append(out, ReplayRange{Timeline: fs.Timeline, File: fs.File, Path: h.Path(fs), Start: start, Stop: stop})
		}
	}
	for _, st := range steps {
		for _, fs := range h.FilesFrom(h.Index(st.Timeline), st.From.File) {
			if replication.CompareBinlogNames(fs.File, st.To.File) > 0 {
				break
			}
			start, stop := uint64(0), fs.Size
			if fs.File == st.From.File {
				start = st.From.Offset
			}
			if fs.File == st.To.File {
				stop = st.To.Offset
			}
			for _, s := range cut {
				if s.Timeline == fs.Timeline && s.File == fs.File && s.Start >= start && s.End <= stop {
					add(fs, start, s.Start)
					start = s.End
				}
			}
			add(fs, start, stop)
		}
	}
	return out
}

// DescribeWindow says what a timeline covers, for error messages.
func DescribeWindow(tl *archive.TimelineState) string {
	if len(tl.Files) == 0 {
		return fmt.Sprintf("timeline %s holds no binlog yet", tl.Name)
	}
	first, last := tl.Files[0], tl.Files[len(tl.Files)-1]
	s := fmt.Sprintf("timeline %s covers %s:4 (%s) to %s:%d (%s)", tl.Name,
		first.File, first.FirstEventTime.Format(time.RFC3339), last.File, last.Size, last.LastEventTime.Format(time.RFC3339))
	for _, f := range tl.Files {
		if f.Gap != nil {
			s += "; gap: " + f.Gap.Error()
		}
	}
	return s
}
