package serve

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/binarc/binarc/replication"
)

// Join is where a timeline takes over from the one before it (a
// promotion, a flip between masters): the restore package works it out
// from the archive, and serve streams across it.
type Join struct {
	// Previous is the timeline whose history this one continues: the one
	// before it, or an older one it rejoins.
	Timeline, Previous string
	// PreviousEnd is where the previous timeline's history stops being
	// the new one's; At is where the new timeline goes on, and Meet the
	// GTID state there.
	PreviousEnd, At replication.Position
	Meet            string
	// Broken says why nothing streams across the join.
	Broken string
	// Final: the join cannot change any more.
	Final bool
}

// chainCache keeps the joins while the timelines stay the same: working
// them out may read the archive, and a following stream lists it every
// second.
type chainCache struct {
	key   string
	at    time.Time
	joins map[string]*Join
	final bool
}

// joinsOf returns the joins of tls by timeline, from the cache when the
// timelines are the same and every join was final (else at most every 5
// s).
func (a *ArchiveSource) joinsOf(ctx context.Context, tls []string) (map[string]*Join, error) {
	// One computation at a time: working the joins out reads segments,
	// and many clients connecting at once would each read them (and hold
	// them) before the first filled the cache.
	a.joinsMu.Lock()
	defer a.joinsMu.Unlock()
	key := strings.Join(tls, ",")
	a.mu.Lock()
	c := a.chain
	a.mu.Unlock()
	if c.key == key && (c.final || time.Since(c.at) < 5*time.Second) {
		return c.joins, nil
	}
	js, err := a.Joins(ctx)
	if err != nil {
		return nil, fmt.Errorf("work out the joins between the archive's timelines: %w", err)
	}
	c = chainCache{key: key, at: time.Now(), joins: map[string]*Join{}, final: true}
	for _, j := range js {
		if j != nil {
			c.joins[j.Timeline] = j
			c.final = c.final && j.Final
		}
	}
	a.mu.Lock()
	a.chain = c
	a.mu.Unlock()
	return c.joins, nil
}

// chainFiles lists the files of the timelines joined to one another, in
// history order: each timeline up to where the next one takes over (its
// last file cut there), the next from where its history goes on (File.Start
// and StartState). The chain starts after the newest join nothing crosses,
// and ends at the newest timeline whose join is final: a timeline that has
// not archived past its switch yet is not streamed until it has.
func (a *ArchiveSource) chainFiles(ctx context.Context) ([]File, error) {
	tls, err := a.Catalog.Timelines(ctx)
	if err != nil {
		return nil, err
	}
	if len(tls) == 0 {
		return nil, fmt.Errorf("cluster %q has no archived binlog", a.Catalog.Layout.Cluster)
	}
	joins, err := a.joinsOf(ctx, tls)
	if err != nil {
		return nil, err
	}
	var chain []string
	for i, tl := range tls {
		j := joins[tl]
		switch {
		case i == 0:
			chain = []string{tl}
		case j == nil:
			// A timeline that holds no binlog.
		case j.Broken != "":
			chain = []string{tl}
		case !j.Final:
			// Not streamed until its switch is archived past.
		case slices.Contains(chain, j.Previous):
			// Usually the last; an older one when the new server rejoins
			// its history (the timelines between are not in this one's).
			chain = append(chain[:slices.Index(chain, j.Previous)+1], tl)
		default:
			chain = []string{tl}
		}
	}
	var out []File
	for ci, tl := range chain {
		files, err := a.timelineFiles(ctx, tl)
		if err != nil {
			return nil, err
		}
		if ci > 0 {
			j := joins[tl]
			k := indexOf(files, j.At.File)
			if k < 0 {
				return nil, fmt.Errorf("timeline %s goes on at %s, which it does not hold (pruned?)", tl, j.At)
			}
			files = files[k:]
			files[0].Start, files[0].StartState = j.At.Offset, j.Meet
		}
		if ci+1 < len(chain) {
			j := joins[chain[ci+1]]
			k := indexOf(files, j.PreviousEnd.File)
			if k < 0 {
				return nil, fmt.Errorf("timeline %s ends at %s, which it does not hold (pruned?)", tl, j.PreviousEnd)
			}
			if j.PreviousEnd.Offset <= replication.MagicLen {
				files = files[:k] // nothing of that file is shared history
			} else {
				files = files[:k+1]
				files[k].Size, files[k].Complete = min(files[k].Size, j.PreviousEnd.Offset), true
			}
		}
		out = append(out, files...)
	}
	return out, nil
}

func indexOf(files []File, name string) int {
	for i, f := range files {
		if f.Name == name {
			return i
		}
	}
	return -1
}
