package retention

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/lease"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/snapshot"
)

// Retention: what a prune keeps, and why. The rule (docs/RETENTION.md):
// to restore any point of the window [now-keep, now], keep the base — the
// newest complete snapshot taken at or before now-keep whose coordinates
// the archive holds — every snapshot after it, and all binlog from the base's
// coordinates on, in its timeline and every later one. Everything older
// goes, in whole files and whole timelines. With no base, nothing goes.

// MinKeep is the shortest --keep: retention counts hours and days, and a
// shorter value is more likely a typo (--keep 30) than a wish.
const MinKeep = time.Hour

// FailedSnapshotAge is how old an incomplete snapshot (no manifest) must be
// to count as a failed one's leftovers when it is still inside the window.
// A snapshot job holds its lease while it runs, and no backup runs this
// long without renewing it.
const FailedSnapshotAge = 24 * time.Hour

// ParseKeep reads a --keep value: a whole number with a unit, w (weeks), d
// (days), h, m or s, or several of them: 30d, 36h, 2w, 1w3d, 1d12h.
func ParseKeep(s string) (time.Duration, error) {
	units := map[string]time.Duration{"w": 7 * 24 * time.Hour, "d": 24 * time.Hour, "h": time.Hour, "m": time.Minute, "s": time.Second}
	bad := func(why string) error {
		return fmt.Errorf("keep %q: %s; use a number and a unit, w, d, h, m or s: 30d, 36h, 2w, 1w3d", s, why)
	}
	rest := strings.TrimSpace(s)
	if rest == "" {
		return 0, bad("empty")
	}
	var total time.Duration
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		j := i
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') {
			j++
		}
		unit, ok := units[rest[i:j]]
		if i == 0 || !ok {
			return 0, bad(fmt.Sprintf("%q is not a number with a unit", rest[:j]))
		}
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil || n > int64((1<<63-1)/unit) || total > (1<<63-1)-time.Duration(n)*unit {
			return 0, bad("too long")
		}
		total += time.Duration(n) * unit
		rest = rest[j:]
	}
	if total < MinKeep {
		return 0, bad(fmt.Sprintf("keep at least %s", MinKeep))
	}
	return total, nil
}

// FormatKeep writes a retention period in days and hours: 30d, 1d12h
// (for 36h), 12h.
func FormatKeep(d time.Duration) string {
	days, rest := d/(24*time.Hour), d%(24*time.Hour)
	hms := rest.String() // 12h0m0s, 1h30m0s
	if strings.HasSuffix(hms, "m0s") {
		hms = strings.TrimSuffix(hms, "0s")
	}
	if strings.HasSuffix(hms, "h0m") {
		hms = strings.TrimSuffix(hms, "0m")
	}
	switch {
	case days == 0:
		return hms
	case rest == 0:
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%s", days, hms)
}

// PruneState is what a prune decides from: the catalog and the snapshots,
// and the snapshot job's lease if someone holds it now.
type PruneState struct {
	// Timelines, oldest first. Of each file, the policy reads File and
	// Complete (indexed), and Size only of the files that snapshots'
	// coordinates name (LoadPruneState reads no other index).
	Timelines []*archive.TimelineState
	Snapshots []snapshot.Entry
	// SnapshotJob is the live holder of the snapshot lease, nil if none:
	// an incomplete snapshot may be its work in progress.
	SnapshotJob *lease.Info
	// Joins are the recorded joins by timeline (a timeline without one
	// is taken to continue the one before it).
	Joins map[string]*archive.Join
}

// continuesFrom tells whether timeline tb is in the history of every
// timeline after it that holds binlog: each continues it through its
// join (its parent, or the timeline before). A history that starts at a
// broken join after tb asks nothing of what comes before it (no restore
// crosses that join from anywhere). The first that does not is named.
func (st PruneState) continuesFrom(tb int) (bool, string) {
	index := map[string]int{}
	for i, tl := range st.Timelines {
		index[tl.Name] = i
	}
	for k := tb + 1; k < len(st.Timelines); k++ {
		if len(st.Timelines[k].Files) == 0 {
			continue
		}
		cur := k
		for cur > tb {
			j := st.Joins[st.Timelines[cur].Name]
			switch {
			case j != nil && j.Broken != "":
				cur = tb // its history starts here
			case j != nil:
				p, ok := index[j.From()]
				if !ok || p >= cur {
					return false, st.Timelines[k].Name
				}
				cur = p
			default:
				cur--
				for cur > tb && len(st.Timelines[cur].Files) == 0 {
					cur--
				}
			}
		}
		if cur != tb {
			return false, st.Timelines[k].Name
		}
	}
	return true, ""
}

// SnapshotDecision is what a prune does with one snapshot.
type SnapshotDecision struct {
	snapshot.Entry
	Delete bool
	Why    string
}

// FileDecision is what a prune does with one binlog file.
type FileDecision struct {
	File   string
	Delete bool
}

// TimelineDecision is what a prune does with one timeline: all of it
// (Whole), some files from its start, or nothing.
type TimelineDecision struct {
	Name  string
	Whole bool
	Why   string
	Files []FileDecision
}

// Deleting counts the files that go.
func (t TimelineDecision) Deleting() int {
	n := 0
	for _, f := range t.Files {
		if f.Delete {
			n++
		}
	}
	return n
}

// PrunePlan is what a prune keeps and deletes, and why.
type PrunePlan struct {
	Now    time.Time
	Keep   time.Duration
	Cutoff time.Time // now - keep: the start of the window
	// Base is the snapshot restores to the window's start begin from; nil
	// when none qualifies, and then KeepAll says why and nothing goes.
	Base         *snapshot.Manifest
	BaseTimeline string
	KeepAll      string
	// KeepFrom is where the kept binlog starts: the base's coordinates
	// file, or an earlier one a later snapshot needs (KeepFromWhy).
	KeepFrom    replication.Position
	KeepFromTL  string
	KeepFromWhy string
	// KeepBinlog, when set, says why no binlog goes this time even though
	// there is a base.
	KeepBinlog string
	Snapshots  []SnapshotDecision
	Timelines  []TimelineDecision
}

// binlogPoint is a binlog file in a timeline, by the timeline's index in
// the catalog.
type binlogPoint struct {
	tl   int
	file string
}

func (a binlogPoint) before(b binlogPoint) bool {
	if a.tl != b.tl {
		return a.tl < b.tl
	}
	return replication.CompareBinlogNames(a.file, b.file) < 0
}

// locate finds the timeline holding a snapshot's coordinates: only the
// timelines archived from the server whose binlog they are on (by
// server_id) count, for two servers may both have written a
// mysql-bin.000003 (a failover to a replica whose numbering started over),
// and a bare file name means nothing across them. Of several (a server
// archived again after a flip back), the oldest, which keeps more, never
// less. covered also asks that the archive hold the coordinates' offset,
// as a restore starting there needs.
func locate(tls []*archive.TimelineState, m *snapshot.Manifest, covered bool) (binlogPoint, bool) {
	for i, tl := range tls {
		if tl.Info != nil && (tl.Info.SourceServerID != m.BinlogServerID() ||
			tl.Info.SourceServerUUID != "" && m.BinlogServerUUID() != "" && !strings.EqualFold(tl.Info.SourceServerUUID, m.BinlogServerUUID())) {
			continue
		}
		for _, f := range tl.Files {
			if f.File == m.Coordinates.File && (!covered || m.Coordinates.Pos <= f.Size) {
				return binlogPoint{tl: i, file: f.File}, true
			}
		}
	}
	return binlogPoint{}, false
}

// PlanPrune decides what a prune with this keep does at now. It changes
// nothing; Prune carries the plan out.
func PlanPrune(st PruneState, keep time.Duration, now time.Time) *PrunePlan {
	p := &PrunePlan{Now: now.UTC(), Keep: keep, Cutoff: now.Add(-keep).UTC()}
	var base *snapshot.Entry
	var baseAt binlogPoint
	var passedOver []string
	for i := range st.Snapshots {
		e := &st.Snapshots[i]
		if !e.Complete || e.Manifest.Started.After(p.Cutoff) {
			continue
		}
		at, ok := locate(st.Timelines, e.Manifest, true)
		if !ok {
			passedOver = append(passedOver, fmt.Sprintf("%s (at %s: not in the archive)", e.ID, e.Manifest.Coordinates.File+":"+strconv.FormatUint(e.Manifest.Coordinates.Pos, 10)))
			continue
		}
		if ok, later := st.continuesFrom(at.tl); !ok {
			// A restore from it reaches no point of that timeline: a
			// server that rejoined an older branch, or a broken join.
			passedOver = append(passedOver, fmt.Sprintf("%s (on timeline %s, which is not in the history of timeline %s)", e.ID, st.Timelines[at.tl].Name, later))
			continue
		}
		if base == nil || e.Manifest.Started.After(base.Manifest.Started) {
			base, baseAt = e, at
		}
	}
	if base == nil {
		p.KeepAll = noBaseReason(st.Snapshots, p.Cutoff, passedOver)
		for _, e := range st.Snapshots {
			p.Snapshots = append(p.Snapshots, SnapshotDecision{Entry: e, Why: "kept: no base snapshot"})
		}
		for _, tl := range st.Timelines {
			p.Timelines = append(p.Timelines, keepTimeline(tl, "kept: no base snapshot"))
		}
		return p
	}
	p.Base, p.BaseTimeline = base.Manifest, st.Timelines[baseAt.tl].Name
	p.KeepFrom = replication.Position{File: baseAt.file, Offset: base.Manifest.Coordinates.Pos}
	p.KeepFromWhy = fmt.Sprintf("the base snapshot %s starts there", base.ID)
	keepFrom := baseAt
	p.Snapshots = decideSnapshots(st, p, base)
	for _, d := range p.Snapshots {
		e := d.Entry
		switch {
		case d.Delete:
		case e.Complete:
			// A later snapshot of a lagging replica can stand before the
			// base on the binlog: keep what it needs too.
			if at, ok := locate(st.Timelines, e.Manifest, false); ok && at.before(keepFrom) {
				keepFrom = at
				p.KeepFrom = replication.Position{File: at.file, Offset: e.Manifest.Coordinates.Pos}
				p.KeepFromWhy = fmt.Sprintf("snapshot %s, kept, starts there (before the base's %s)", e.ID, base.Manifest.Coordinates.File)
			}
		case e.Problem != "":
			p.KeepBinlog = fmt.Sprintf("snapshot %s, kept, has a manifest that does not read (%s): what binlog it needs is unknown", e.ID, e.Problem)
		}
	}
	p.KeepFromTL = st.Timelines[keepFrom.tl].Name
	p.Timelines = decideBinlog(st.Timelines, keepFrom, p.KeepBinlog)
	return p
}

func noBaseReason(snaps []snapshot.Entry, cutoff time.Time, passedOver []string) string {
	at := cutoff.Format(time.RFC3339)
	complete := 0
	for _, e := range snaps {
		if e.Complete {
			complete++
		}
	}
	switch {
	case complete == 0:
		return "there is no complete snapshot: without one, nothing in the archive can be restored, and nothing is known to be unneeded"
	case len(passedOver) == 0:
		return fmt.Sprintf("no complete snapshot was taken at or before the window's start (%s): a restore to that time has nothing to start from, so everything older is kept until a snapshot ages past it", at)
	}
	return fmt.Sprintf("no complete snapshot taken at or before the window's start (%s) has its coordinates in the archive and in the history of every later timeline (%s): a restore to that time has nothing to start from, so everything is kept",
		at, strings.Join(passedOver, "; "))
}

// decideSnapshots keeps the base and everything after it, deletes the
// complete snapshots before it, and deletes incomplete ones that are old
// and that no running snapshot job may be writing.
func decideSnapshots(st PruneState, p *PrunePlan, base *snapshot.Entry) []SnapshotDecision {
	var out []SnapshotDecision
	for _, e := range st.Snapshots {
		d := SnapshotDecision{Entry: e}
		switch {
		case e.Complete && e.ID == base.ID:
			d.Why = fmt.Sprintf("base: the newest complete snapshot taken at or before the window's start (%s) whose coordinates the archive holds", p.Cutoff.Format(time.RFC3339))
		case e.Complete && e.Manifest.Started.Before(base.Manifest.Started):
			d.Delete, d.Why = true, "older than the base snapshot"
		case e.Complete && e.Manifest.Started.After(p.Cutoff):
			d.Why = "in the window"
		case e.Complete:
			d.Why = "after the base snapshot"
		case e.Problem != "" && e.Time.Before(base.Manifest.Started):
			d.Delete, d.Why = true, "older than the base snapshot (its manifest does not read: "+e.Problem+")"
		case e.Problem != "":
			d.Why = "its manifest does not read (" + e.Problem + "): kept, with the binlog it may need; see binarc verify --snapshot " + e.ID
		case st.SnapshotJob != nil:
			d.Why = fmt.Sprintf("incomplete; a snapshot job (%s on %s, pid %d) holds the snapshot lease until %s and may be writing it",
				st.SnapshotJob.Command, st.SnapshotJob.Host, st.SnapshotJob.PID, st.SnapshotJob.Expires.Format(time.RFC3339))
		case e.Time.Before(p.Cutoff):
			d.Delete, d.Why = true, "incomplete (no manifest) and older than the window"
		case e.Time.Before(p.Now.Add(-FailedSnapshotAge)):
			d.Delete, d.Why = true, fmt.Sprintf("incomplete (no manifest) for more than %s: a failed snapshot's leftovers", FailedSnapshotAge)
		default:
			d.Why = "incomplete and recent: it may still be running"
		}
		out = append(out, d)
	}
	return out
}

func keepTimeline(tl *archive.TimelineState, why string) TimelineDecision {
	d := TimelineDecision{Name: tl.Name, Why: why}
	for _, f := range tl.Files {
		d.Files = append(d.Files, FileDecision{File: f.File})
	}
	return d
}

// decideBinlog deletes the timelines before from's and the files of from's
// timeline before from.file: whole files from the start of a timeline, so
// what is kept of every timeline is a contiguous run up to its end. In the
// newest timeline, which the archiver may be writing, it stops at the first
// file without an index: the archiver indexes files in order, and such a
// file is not finished.
func decideBinlog(tls []*archive.TimelineState, from binlogPoint, keepBinlog string) []TimelineDecision {
	var out []TimelineDecision
	for i, tl := range tls {
		switch {
		case keepBinlog != "":
			out = append(out, keepTimeline(tl, "kept: "+keepBinlog))
		case i < from.tl:
			d := TimelineDecision{Name: tl.Name, Whole: true, Why: fmt.Sprintf("ends before timeline %s, where the kept binlog starts", tls[from.tl].Name)}
			for _, f := range tl.Files {
				d.Files = append(d.Files, FileDecision{File: f.File, Delete: true})
			}
			out = append(out, d)
		case i == from.tl:
			d := TimelineDecision{Name: tl.Name, Why: fmt.Sprintf("the kept binlog starts at %s", from.file)}
			newest := i == len(tls)-1
			deleting := true
			for _, f := range tl.Files {
				if replication.CompareBinlogNames(f.File, from.file) >= 0 || (newest && !f.Complete) {
					deleting = false
				}
				d.Files = append(d.Files, FileDecision{File: f.File, Delete: deleting})
			}
			out = append(out, d)
		default:
			out = append(out, keepTimeline(tl, "after the timeline where the kept binlog starts"))
		}
	}
	return out
}
