package archive

import (
	"fmt"
	"strings"
	"time"

	"github.com/binarc/binarc/replication"
)

// computeJoin works out where timeline i meets the history before it, by
// GTID: the new timeline's transactions are read from its start; those the
// old timeline has (by exact GTID: domain, server and seq_no) are shared,
// and the point after the last of them is where the histories meet. The
// scan ends at the first transaction of the new timeline the old never had
// that is newer than the old timeline's last transaction.
//
// The old timeline is timeline i-1, unless the new server shares none of
// i-1's own history (a server rebuilt long ago, or a master that comes
// back after several switches): then the histories meet on the timeline
// i-1 itself continued from, or further back, and the join names it as
// Parent. Everything archived after the meeting point on the timelines
// between is lost at this switch.
func (h *History) computeJoin(i int) (*Join, error) {
	j, s, err := h.scanJoin(i, i-1)
	if err != nil || (j.Broken != "" && !s.beforeStart) {
		return j, err
	}
	final := j.Final
	path := []int{i - 1}
	for cand := i - 1; cand > 0; {
		cj, err := h.Join(cand)
		if err != nil {
			return nil, err
		}
		if cj.Broken != "" || !s.meetsBefore(cj) {
			break
		}
		p := h.Index(cj.From())
		if p < 0 || p >= cand {
			break
		}
		pj, ps, err := h.scanJoin(i, p)
		if err != nil {
			return nil, err
		}
		if pj.Broken != "" && !ps.beforeStart {
			break // keep the nearest answer: a gap further back says nothing
		}
		j, s, cand = pj, ps, p
		path = append(path, p)
	}
	if cand := path[len(path)-1]; cand != i-1 {
		j.Previous, j.Final = h.Timelines[i-1].Name, j.Final && final
		if j.Broken != "" {
			return j, nil
		}
		j.Parent, j.Version = h.Timelines[cand].Name, JoinVersionParent
		if j.Lost, err = h.lostAlong(path, j); err != nil {
			return nil, err
		}
	}
	return j, nil
}

// scanJoin works out where timeline i meets timeline old.
func (h *History) scanJoin(i, old int) (*Join, *joinScan, error) {
	o, nw := h.Timelines[old], h.Timelines[i]
	s := &joinScan{h: h, old: o, nw: nw, newIsLast: i == len(h.Timelines)-1,
		j: &Join{Version: JoinVersion, Timeline: nw.Name, Previous: o.Name}}
	if nw.Info != nil {
		s.j.SwitchTime = nw.Info.Created
	}
	if len(o.Files) == 0 || len(nw.Files) == 0 {
		s.j.Broken = "one of the timelines holds no binlog"
		return s.j, s, nil
	}
	// Each phase reads what the next needs, or finds the join broken.
	for _, phase := range []func() error{s.readOldEnd, s.readNewStart, s.scanNew, s.meet, s.findLost} {
		if err := phase(); err != nil {
			return nil, nil, err
		}
		if s.j.Broken != "" {
			return s.j, s, nil
		}
	}
	if !s.newIsLast {
		s.j.Final = true // the new timeline is over too: nothing can change
	}
	return s.j, s, nil
}

// meetsBefore tells whether the histories met before the old timeline's
// own history begins (where its join cj continues the one before it): the
// new server lacks part of the state the old timeline started its own
// history from. (A position test would not do: a server rebuilt from a
// copy starts its binlog with a state that says little, so its first
// file's start "is contained" in anything; and a timeline that archived
// nothing of its own before the next switch meets at its very start.)
func (s *joinScan) meetsBefore(cj *Join) bool {
	if s.beforeStart {
		return true
	}
	meet, err := replication.ParseGTIDState(cj.Meet)
	return err == nil && !s.atState.Contains(meet)
}

// lostAlong lists the transactions of the history that ended at
// path[0] (followed back through its joins to path[len-1], where j meets
// it) after the meeting point that the new server never had.
func (h *History) lostAlong(path []int, j *Join) ([]string, error) {
	at, err := replication.ParseGTIDState(j.Meet)
	if err != nil {
		return nil, err
	}
	var lost []string
	from := j.PreviousEnd
	for k := len(path) - 1; k >= 0; k-- {
		tl := path[k]
		var to *Point
		var next *Join // the join into the next timeline of the path
		if k > 0 {
			if next, err = h.Join(path[k-1]); err != nil {
				return nil, err
			}
			to = &next.PreviousEnd
		}
		for _, fs := range h.FilesFrom(tl, from.File) {
			if to != nil && replication.CompareBinlogNames(fs.File, to.File) > 0 {
				break
			}
			if err := h.Scan(fs, 0, func(t *Transaction) (bool, error) {
				if fs.File == from.File && t.Start < from.Offset {
					return true, nil
				}
				if to != nil && fs.File == to.File && t.End > to.Offset {
					return false, nil
				}
				if t.GTID != "" && !at.Has(t.GTID) {
					lost = append(lost, t.GTID)
				}
				return true, nil
			}); err != nil {
				return nil, err
			}
		}
		if next != nil {
			from = next.At
		}
	}
	return replication.GTIDRanges(lost), nil
}

// joinScan is the work of computeJoin: the join it fills in, and what it
// has read of the old timeline's end and the new timeline's start.
type joinScan struct {
	h       *History
	old, nw *TimelineState
	// newIsLast: the new timeline is the newest, still being archived.
	newIsLast bool
	j         *Join

	// oldEnd is the GTID state at the end of the old timeline; oldLast
	// the time of its last transaction (far in the future when the old
	// timeline has no event times); oldNoGTID says its last file has a
	// transaction without a GTID.
	oldEnd    *replication.GTIDState
	oldLast   time.Time
	oldNoGTID bool
	// state is the new timeline's GTID state as far as scanned;
	// startEmpty says it started empty (no Gtid_list before the first
	// transaction).
	state      *replication.GTIDState
	startEmpty bool
	// at and atState: just after the last shared transaction, where the
	// histories meet so far.
	at      Point
	atState *replication.GTIDState
	// pending are the new timeline's own transactions since the last
	// shared one: errant if a shared one follows. errant are those
	// confirmed; firstNew the first pending one; shared counts the
	// shared transactions.
	pending, errant []string
	firstNew        *Transaction
	shared          int
	// beforeStart: the new server lacks what came before the old
	// timeline's archive (it meets an older timeline, if any).
	beforeStart bool
}

// readOldEnd reads the old timeline's last file: the GTID state at its
// end and the time of its last transaction.
func (s *joinScan) readOldEnd() error {
	lastOld := s.old.Files[len(s.old.Files)-1]
	oldEnd, ok, err := s.h.StartState(lastOld)
	if err != nil {
		return err
	}
	if !ok {
		s.j.Broken = fmt.Sprintf("%s of timeline %s records no GTID state (GTIDs off?): the histories cannot be matched", lastOld.File, s.old.Name)
		s.j.Final = true // the old timeline is over: this cannot change
		return nil
	}
	if err := s.h.Scan(lastOld, 0, func(t *Transaction) (bool, error) {
		oldEnd.Add(t.GTID)
		s.oldNoGTID = s.oldNoGTID || t.GTID == ""
		s.oldLast = t.Time
		return true, nil
	}); err != nil {
		return err
	}
	if err := s.h.addHistory(oldEnd, s.h.Index(s.old.Name)); err != nil {
		return err
	}
	s.oldEnd = oldEnd
	for k := len(s.old.Files) - 1; k >= 0 && s.oldLast.IsZero(); k-- {
		s.oldLast = s.old.Files[k].LastEventTime // no transaction in the last file
	}
	if s.oldLast.IsZero() {
		s.oldLast = time.Unix(1<<40, 0) // no event times at all: do not tell by time
	}
	return nil
}

// addHistory adds to st the states the history of timeline k met at each
// of its joins, back through them to the first timeline or a broken join.
// The history a timeline continues is part of its end: a server restored
// from a backup states in its binlog only the servers it has binlogged
// since, and one restored from it fewer still, yet each had what its join
// met; another server that kept those entries and comes back after them
// must not look as if it holds transactions the archive never got.
func (h *History) addHistory(st *replication.GTIDState, k int) error {
	for k > 0 {
		cj, err := h.Join(k)
		if err != nil {
			return err
		}
		meet, err := replication.ParseGTIDState(cj.Meet)
		if cj.Broken != "" || err != nil {
			return nil
		}
		st.AddState(meet)
		p := h.Index(cj.From())
		if p < 0 || p >= k {
			return nil
		}
		k = p
	}
	return nil
}

// readNewStart reads the GTID state at the start of the new timeline,
// and refuses a start after transactions the old timeline never had.
func (s *joinScan) readNewStart() error {
	state, ok, err := s.h.StartState(s.nw.Files[0])
	if err != nil {
		return err
	}
	if !ok || s.oldNoGTID {
		s.j.Broken = fmt.Sprintf("timeline %s or %s has transactions without GTIDs: the histories cannot be matched (turn GTIDs on)", s.old.Name, s.nw.Name)
		s.j.Final = true
		return nil
	}
	if gap := state.Beyond(s.oldEnd); len(gap) > 0 {
		s.j.Broken = fmt.Sprintf("a gap: the new timeline's binlog starts after transactions the archive never got (%s): they are in neither timeline; restore to after the switch needs a snapshot taken after it",
			strings.Join(gap, ","))
		s.j.Final = true // both ends are fixed
		return nil
	}
	s.state, s.startEmpty = state, state.Empty()
	s.at, s.atState = Point{File: s.nw.Files[0].File, Offset: replication.MagicLen}, state.Clone()
	// A server restored from the archive starts its binlog stating only
	// the servers it has binlogged since; where that state names a
	// transaction the old timeline has, the server had the domain's state
	// there (the 60-minute run of 2026-12-07: a restored server promoted
	// with only its own transactions after its start read as lacking the
	// old timeline's other servers).
	for _, g := range strings.Split(state.String(), ",") {
		if g != "" && s.oldEnd.Has(g) {
			if err := s.inferStart(g); err != nil {
				return err
			}
		}
	}
	return nil
}

// scanNew reads the new timeline from its start up to its first own
// transaction newer than the old timeline's end (which makes the join
// final), or to its end.
func (s *joinScan) scanNew() error {
	for _, fs := range s.nw.Files {
		if err := s.h.Scan(fs, 0, func(t *Transaction) (bool, error) {
			if s.shared == 0 && len(s.pending) == 0 && t.GTID != "" && s.oldEnd.Has(t.GTID) && !t.Time.After(s.oldLast) {
				if err := s.inferStart(t.GTID); err != nil {
					return false, err
				}
			}
			return s.visitNew(fs, t), nil
		}); err != nil {
			return err
		}
		if s.j.Final {
			break
		}
	}
	return nil
}

// inferStart is for the first transaction g of the new timeline, shared
// with the old one. A server's binlog states only what went through its
// binlog: one restored from a backup (or a copy), then replicated, starts
// its binlog with nothing, or with only the servers it has replicated
// since, of what it had. Applying g in g's domain means having every
// earlier transaction of that domain (a domain is applied in order): the
// new server's state there is the old timeline's just before g. Without
// this, such a server looked as if it lacked all history before (a broken
// join). Other domains are not inferred (they are applied independently).
func (s *joinScan) inferStart(g string) error {
	for k := len(s.old.Files) - 1; k >= 0; k-- {
		fs := s.old.Files[k]
		st, ok, err := s.h.StartState(fs)
		if err != nil || !ok {
			return err
		}
		if st.Has(g) {
			continue // g is in an earlier file
		}
		found := false
		if err := s.h.Scan(fs, 0, func(t *Transaction) (bool, error) {
			if found = t.GTID == g; found {
				return false, nil
			}
			st.Add(t.GTID)
			return true, nil
		}); err != nil || !found {
			return err
		}
		s.state.AddDomain(st, g)
		s.atState = s.state.Clone()
		return nil
	}
	return nil
}

// visitNew takes transaction t of the new timeline's file fs, and tells
// whether to read on.
func (s *joinScan) visitNew(fs *FileState, t *Transaction) bool {
	if t.GTID == "" {
		return true
	}
	s.state.Add(t.GTID)
	// Shared: the old timeline has it, and it is no newer than the old
	// timeline's end (after a RESET MASTER, seq_no start over: a later
	// transaction is a new one).
	if s.oldEnd.Has(t.GTID) && !t.Time.After(s.oldLast) {
		s.shared++
		s.errant = append(s.errant, s.pending...)
		s.pending, s.firstNew = nil, nil
		s.at, s.atState = Point{File: fs.File, Offset: t.End}, s.state.Clone()
		return true
	}
	s.pending = append(s.pending, t.GTID)
	if s.firstNew == nil {
		s.firstNew = t
	}
	if t.Time.After(s.oldLast) {
		s.j.Final = true
		return false
	}
	return true
}

// meet records where the histories meet, when they share any: the point,
// the shared state, the errant transactions, and the switch time (the
// new server's first own transaction, if before the timeline's start).
func (s *joinScan) meet() error {
	if s.shared == 0 && s.startEmpty {
		s.j.Broken = fmt.Sprintf("timeline %s shares no history with %s (no transaction of one is in the other's GTID state): an unrelated server, or a RESET MASTER", s.nw.Name, s.old.Name)
		return nil
	}
	if s.firstNew != nil && (s.j.SwitchTime.IsZero() || s.firstNew.Time.Before(s.j.SwitchTime)) {
		s.j.SwitchTime = s.firstNew.Time
	}
	s.j.At, s.j.Meet, s.j.Errant = s.at, s.atState.String(), replication.GTIDRanges(s.errant)
	return nil
}

// findLost reads the old timeline's transactions after the meeting
// point, which are lost, from the newest of its files that starts inside
// the shared history; PreviousEnd is just after the last one before them.
func (s *joinScan) findLost() error {
	start := -1
	for k := len(s.old.Files) - 1; k >= 0 && start < 0; k-- {
		st, ok, err := s.h.StartState(s.old.Files[k])
		if err != nil {
			return err
		}
		if ok && s.atState.Contains(st) {
			start = k
		} else if k == 0 {
			s.beforeStart = true
			s.j.Broken = fmt.Sprintf("the new server lacks transactions from before the start of timeline %s's archive (its state %s, the new server's %s)", s.old.Name, st, s.atState)
			return nil
		}
	}
	s.j.PreviousEnd = Point{File: s.old.Files[start].File, Offset: replication.MagicLen}
	var lost []string
	for _, fs := range s.old.Files[start:] {
		if err := s.h.Scan(fs, 0, func(t *Transaction) (bool, error) {
			if s.atState.Has(t.GTID) {
				if len(lost) == 0 {
					s.j.PreviousEnd = Point{File: fs.File, Offset: t.End}
				}
			} else if t.GTID != "" {
				lost = append(lost, t.GTID)
			}
			return true, nil
		}); err != nil {
			return err
		}
	}
	s.j.Lost = replication.GTIDRanges(lost)
	return nil
}
