package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/replication"
)

// JoinVersion is the version of a join.json that continues the previous
// timeline; JoinVersionParent of one that names an older timeline as its
// Parent (a binarc that does not know it refuses it rather than read its
// previous_end on the wrong timeline).
const (
	JoinVersion       = 1
	JoinVersionParent = 2
)

// Point is a position in one timeline's binlog.
type Point struct {
	File   string `json:"file"`
	Offset uint64 `json:"offset"`
}

func (p Point) Pos() replication.Position {
	return replication.Position{File: p.File, Offset: p.Offset}
}

// Join is where a timeline's history meets the previous timeline's: a
// promotion, a flip between masters, a server that came back as another.
// It is worked out from the archived binlog by GTID, and recorded once
// (join.json in the new timeline's folder) when it can no longer change.
type Join struct {
	Version  int    `json:"version"`
	Timeline string `json:"timeline"`
	// Previous is the timeline archived before this one.
	Previous string `json:"previous"`
	// Parent, when set, is the older timeline whose history this one
	// continues: the new server never had what Previous (and the
	// timelines between) archived after the meeting point. PreviousEnd
	// is then a point in Parent. Empty: Previous.
	Parent string `json:"parent,omitempty"`
	// Meet is the last GTID state both histories share (binlog state).
	Meet string `json:"meet_gtid_state"`
	// At is the position in Timeline just after the shared history: replay
	// continues there.
	At Point `json:"at"`
	// PreviousEnd is the position in Previous (Parent, when set) just
	// after its last transaction the new server has: replay stops there.
	PreviousEnd Point `json:"previous_end"`
	// Lost are the transactions of Previous's history after Meet that the
	// new server never had (GTID ranges); Errant the new server's
	// transactions before At that history never had.
	Lost   []string `json:"lost,omitempty"`
	Errant []string `json:"errant,omitempty"`
	// SwitchTime is when the new timeline took over: its first own
	// transaction, or when binarc started it, whichever is earlier.
	SwitchTime time.Time `json:"switch_time"`
	// Broken says why no restore crosses this join (no GTIDs, a gap).
	Broken string `json:"broken,omitempty"`
	// Final: the join cannot change any more (the new timeline has
	// archived past the switch, or a gap is found). Only final joins are
	// recorded.
	Final bool `json:"-"`
}

// String is a one-line description for ls and plans.
func (j *Join) String() string {
	if j.Broken != "" {
		return fmt.Sprintf("join %s → %s: BROKEN, no restore crosses it: %s", j.Previous, j.Timeline, j.Broken)
	}
	s := fmt.Sprintf("join %s → %s at %s: %s ends at %s:%d, %s continues at %s:%d, shared GTID state %s",
		j.Previous, j.Timeline, j.SwitchTime.UTC().Format(time.RFC3339), j.From(), j.PreviousEnd.File, j.PreviousEnd.Offset,
		j.Timeline, j.At.File, j.At.Offset, orNone(j.Meet))
	if j.Parent != "" {
		s += fmt.Sprintf(" (it rejoins the history of timeline %s: what %s and the timelines between archived after that point is not in its history)", j.Parent, j.Previous)
	}
	s += "; lost at the switch: " + orNone(strings.Join(j.Lost, ","))
	s += "; errant: " + orNone(strings.Join(j.Errant, ","))
	if !j.Final {
		s += " (provisional: the new timeline has not archived past the switch yet)"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// From is the timeline whose history this one continues: Parent, or
// Previous.
func (j *Join) From() string {
	if j.Parent != "" {
		return j.Parent
	}
	return j.Previous
}

// LostHas tells whether g was lost at the switch.
func (j *Join) LostHas(g string) bool { return replication.InGTIDRanges(j.Lost, g) }

// join returns the join of timeline i with timeline i-1: recorded, or
// worked out now.
func (h *History) Join(i int) (*Join, error) {
	if j, ok := h.joins[i]; ok {
		return j, nil
	}
	j, err := readJoin(h.ctx, h.Catalog, h.Timelines[i].Name)
	if err != nil {
		return nil, err
	}
	if j == nil {
		if j, err = h.computeJoin(i); err != nil {
			return nil, err
		}
	}
	h.joins[i] = j
	return j, nil
}

// ReadJoin reads the recorded join of timeline tl; nil when none is
// recorded.
func ReadJoin(ctx context.Context, c Catalog, tl string) (*Join, error) {
	return readJoin(ctx, c, tl)
}

func readJoin(ctx context.Context, c Catalog, tl string) (*Join, error) {
	data, _, err := objstore.ReadSmall(ctx, c.Store, c.Layout.JoinKey(tl))
	if errors.Is(err, objstore.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", c.Layout.JoinKey(tl), err)
	}
	if data, err = c.Trust.Check(c.Layout.JoinKey(tl), data); err != nil {
		return nil, err
	}
	var j Join
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("%s is not a readable join record (%v): run binarc verify", c.Layout.JoinKey(tl), err)
	}
	if j.Version < 1 {
		return nil, fmt.Errorf("%s is not a readable join record (no version): run binarc verify", c.Layout.JoinKey(tl))
	}
	if j.Version > JoinVersionParent {
		return nil, fmt.Errorf("%s has version %d, this binarc knows %d: upgrade binarc", c.Layout.JoinKey(tl), j.Version, JoinVersionParent)
	}
	if (j.Parent != "") != (j.Version >= JoinVersionParent) {
		return nil, fmt.Errorf("%s is not a readable join record (version %d with parent %q): run binarc verify", c.Layout.JoinKey(tl), j.Version, j.Parent)
	}
	j.Final = true
	return &j, nil
}

// maxHeldJoins bounds how many recorded joins HeldState reads back along
// a timeline's history: each is one small GET.
const maxHeldJoins = 32

// HeldState is what the archive's history holds at the end of timeline
// tl: end (its end state), with the states its recorded joins met, back
// along its history to a broken or unrecorded join. It is
// History.addHistory for a writer, which has the catalog and no fetched
// files: only recorded joins are read, none is computed. A server
// restored from the archive lists in its binlog only the servers it has
// binlogged since, so a timeline archived from it ends with a state that
// leaves out older servers the history has; another server, which kept
// them, names binlog files whose start states list them. Compared with
// the end state alone, those files looked as if they held what the
// archive never got, and binarc stream started the new timeline at the
// server's first binlog (the 60-minute run of 2026-12-07).
func (c Catalog) HeldState(ctx context.Context, tl string, end *replication.GTIDState) *replication.GTIDState {
	held := end.Clone()
	for i := 0; i < maxHeldJoins && tl != ""; i++ {
		j, err := readJoin(ctx, c, tl)
		if err != nil || j == nil || j.Broken != "" {
			break
		}
		meet, err := replication.ParseGTIDState(j.Meet)
		if err != nil {
			break
		}
		held.AddState(meet)
		tl = j.From()
	}
	return held
}

// RecordJoins works out the join of every timeline that follows another
// and records each that is final and not yet recorded (join.json, a
// conditional put: recorded once, never changed). It returns the joins
// still provisional. work is a scratch directory for fetched files.
func RecordJoins(ctx context.Context, c Catalog, work string) (pending int, recorded []*Join, err error) {
	if tls, err := c.Timelines(ctx); err != nil || len(tls) < 2 {
		return 0, nil, err
	}
	dir, err := os.MkdirTemp(work, "binarc-join-")
	if err != nil {
		return 0, nil, err
	}
	defer os.RemoveAll(dir)
	h, err := NewHistory(ctx, c, dir)
	if err != nil {
		return 0, nil, err
	}
	// A timeline holding no binlog yet (just started) will hold some.
	pending = len(h.All) - len(h.Timelines)
	for i := 1; i < len(h.Timelines); i++ {
		if j, err := readJoin(ctx, c, h.Timelines[i].Name); err != nil || j != nil {
			if err != nil {
				return 0, nil, err
			}
			continue
		}
		j, err := h.computeJoin(i)
		if err != nil {
			return 0, nil, err
		}
		switch {
		case !j.Final:
			pending++
		default:
			data, _ := json.MarshalIndent(j, "", "  ")
			if err := c.PutOnce(ctx, c.Layout.JoinKey(j.Timeline), append(data, '\n')); err != nil {
				return 0, nil, fmt.Errorf("record the join of timeline %s: %w", j.Timeline, err)
			}
			recorded = append(recorded, j)
		}
	}
	return pending, recorded, nil
}

// Joins returns the join of every timeline with the one before it
// (recorded or provisional), in the order Catalog.Describe lists the
// timelines; nil for the first and for timelines holding no binlog.
func Joins(ctx context.Context, c Catalog, work string) ([]*Join, error) {
	dir, err := os.MkdirTemp(work, "binarc-join-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	h, err := NewHistory(ctx, c, dir)
	if err != nil {
		if tls, lerr := c.Timelines(ctx); lerr == nil && len(tls) == 0 {
			return nil, nil
		}
		return nil, err
	}
	byName := map[string]*Join{}
	for i := 1; i < len(h.Timelines); i++ {
		j, err := h.Join(i)
		if err != nil {
			return nil, err
		}
		byName[j.Timeline] = j
	}
	out := make([]*Join, len(h.All))
	for i, tl := range h.All {
		out[i] = byName[tl.Name]
	}
	return out, nil
}
