package restore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
)

// history reads a cluster's archived binlog for a plan: every timeline,
// the joins between them, and the files it needs, fetched once into dir
// (one folder per timeline: two servers name their files alike).
type history struct {
	ctx     context.Context
	c       archive.Catalog
	all     []*archive.TimelineState // every timeline, as listed
	tls     []*archive.TimelineState // the ones holding binlog
	dir     string
	fetched map[string]*archive.FileState
	order   []*archive.FileState
	joins   map[int]*Join
}

func newHistory(ctx context.Context, c archive.Catalog, dir string) (*history, error) {
	tls, err := c.Describe(ctx)
	if err != nil {
		return nil, err
	}
	// A timeline that holds no binlog (started, then left before anything
	// was archived: a switch and a switch back) is no step of any chain:
	// its neighbours are joined to each other.
	var held []*archive.TimelineState
	for _, tl := range tls {
		if len(tl.Files) > 0 {
			held = append(held, tl)
		}
	}
	if len(held) == 0 {
		return nil, fmt.Errorf("cluster %q has no archived binlog", c.Layout.Cluster)
	}
	return &history{ctx: ctx, c: c, all: tls, tls: held, dir: dir, fetched: map[string]*archive.FileState{}, joins: map[int]*Join{}}, nil
}

func (h *history) index(name string) int {
	for i, tl := range h.tls {
		if tl.Name == name {
			return i
		}
	}
	return -1
}

func (h *history) path(fs *archive.FileState) string {
	return filepath.Join(h.dir, fs.Timeline, fs.File)
}

// fetch rebuilds an archived file into the work directory, once.
func (h *history) fetch(fs *archive.FileState) (string, error) {
	p := h.path(fs)
	if _, ok := h.fetched[p]; ok {
		return p, nil
	}
	if fs.Gap != nil {
		return "", fmt.Errorf("%w: %v", ErrOutsideWindow, fs.Gap)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", err
	}
	if err := rebuildTo(h.ctx, h.c, fs, p); err != nil {
		return "", err
	}
	h.fetched[p] = fs
	h.order = append(h.order, fs)
	return p, nil
}

// scan calls fn with each committed transaction of fs from offset from.
func (h *history) scan(fs *archive.FileState, from uint64, fn func(*Transaction) (bool, error)) error {
	p, err := h.fetch(fs)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return scanFile(fs.File, f, from, func(t *Transaction) (bool, error) {
		t.Timeline = fs.Timeline
		return fn(t)
	})
}

// startState is the GTID state at the start of an archived file: from its
// index, or read from the file itself (archives written before layout
// version 2). ok is false when the file records none.
func (h *history) startState(fs *archive.FileState) (*replication.GTIDState, bool, error) {
	if fs.StartGTIDState != nil {
		st, err := replication.ParseGTIDState(*fs.StartGTIDState)
		return st, err == nil, err
	}
	p, err := h.fetch(fs)
	if err != nil {
		return nil, false, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	st, ok, err := replication.FileStartState(f)
	if err != nil {
		return nil, false, fmt.Errorf("binlog=%s timeline=%s: %w", fs.File, fs.Timeline, err)
	}
	return st, ok, nil
}

// stateAt is the GTID state of a server that applied fs up to offset off.
func (h *history) stateAt(fs *archive.FileState, off uint64) (*replication.GTIDState, bool, error) {
	st, ok, err := h.startState(fs)
	if err != nil || !ok {
		return st, ok, err
	}
	err = h.scan(fs, 0, func(t *Transaction) (bool, error) {
		if t.End > off {
			return false, nil
		}
		st.Add(t.GTID)
		return true, nil
	})
	return st, true, err
}

// filesFrom returns the files of timeline i from file on.
func (h *history) filesFrom(i int, file string) []*archive.FileState {
	for j, f := range h.tls[i].Files {
		if f.File == file {
			return h.tls[i].Files[j:]
		}
	}
	return nil
}

// comparePoints orders two positions of one timeline.
func comparePoints(a, b replication.Position) int {
	if c := replication.CompareBinlogNames(a.File, b.File); c != 0 {
		return c
	}
	switch {
	case a.Offset < b.Offset:
		return -1
	case a.Offset > b.Offset:
		return 1
	}
	return 0
}
