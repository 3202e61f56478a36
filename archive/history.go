package archive

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/binarc/binarc/replication"
)

// History reads a cluster's archived binlog for a plan: every timeline,
// the joins between them, and the files it needs, fetched once into dir
// (one folder per timeline: two servers name their files alike).
type History struct {
	Catalog Catalog
	// All is every timeline, as listed; Timelines the ones holding binlog.
	All       []*TimelineState
	Timelines []*TimelineState
	// Dir is the work directory fetched files go into.
	Dir     string
	ctx     context.Context
	fetched map[string]*FileState
	order   []*FileState
	joins   map[int]*Join
}

// ErrOutsideWindow means a restore target (or a file it needs) is outside
// what the archive holds.
var ErrOutsideWindow = errors.New("restore target outside the restorable window")

// Context is the context the history reads the store with.
func (h *History) Context() context.Context { return h.ctx }

// Fetched lists the files fetched so far, in the order they were.
func (h *History) Fetched() []*FileState { return h.order }

// NewHistory lists the cluster's timelines; files are fetched into dir.
func NewHistory(ctx context.Context, c Catalog, dir string) (*History, error) {
	tls, err := c.Describe(ctx)
	if err != nil {
		return nil, err
	}
	// A timeline that holds no binlog (started, then left before anything
	// was archived: a switch and a switch back) is no step of any chain:
	// its neighbours are joined to each other.
	var held []*TimelineState
	for _, tl := range tls {
		if len(tl.Files) > 0 {
			held = append(held, tl)
		}
	}
	if len(held) == 0 {
		return nil, fmt.Errorf("cluster %q has no archived binlog", c.Layout.Cluster)
	}
	return &History{ctx: ctx, Catalog: c, All: tls, Timelines: held, Dir: dir, fetched: map[string]*FileState{}, joins: map[int]*Join{}}, nil
}

func (h *History) Index(name string) int {
	for i, tl := range h.Timelines {
		if tl.Name == name {
			return i
		}
	}
	return -1
}

func (h *History) Path(fs *FileState) string {
	return filepath.Join(h.Dir, fs.Timeline, fs.File)
}

// fetch rebuilds an archived file into the work directory, once.
func (h *History) Fetch(fs *FileState) (string, error) {
	p := h.Path(fs)
	if _, ok := h.fetched[p]; ok {
		return p, nil
	}
	if fs.Gap != nil {
		return "", fmt.Errorf("%w: %v", ErrOutsideWindow, fs.Gap)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", err
	}
	if err := rebuildTo(h.ctx, h.Catalog, fs, p); err != nil {
		return "", err
	}
	h.fetched[p] = fs
	h.order = append(h.order, fs)
	return p, nil
}

// Scan calls fn with each committed transaction of fs from offset from.
func (h *History) Scan(fs *FileState, from uint64, fn func(*Transaction) (bool, error)) error {
	_, err := h.ScanOpen(fs, from, fn)
	return err
}

// ScanOpen is Scan, and tells where a transaction whose commit is not in
// the archived file starts (0: none): the tail of a file the primary was
// still writing, or one a crash cut.
func (h *History) ScanOpen(fs *FileState, from uint64, fn func(*Transaction) (bool, error)) (open uint64, err error) {
	p, err := h.Fetch(fs)
	if err != nil {
		return 0, err
	}
	f, err := os.Open(p)
	if err != nil {
		return 0, err
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
func (h *History) StartState(fs *FileState) (*replication.GTIDState, bool, error) {
	if fs.StartGTIDState != nil {
		st, err := replication.ParseGTIDState(*fs.StartGTIDState)
		return st, err == nil, err
	}
	p, err := h.Fetch(fs)
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
func (h *History) StateAt(fs *FileState, off uint64) (*replication.GTIDState, bool, error) {
	st, ok, err := h.StartState(fs)
	if err != nil || !ok {
		return st, ok, err
	}
	err = h.Scan(fs, 0, func(t *Transaction) (bool, error) {
		if t.End > off {
			return false, nil
		}
		st.Add(t.GTID)
		return true, nil
	})
	return st, true, err
}

// filesFrom returns the files of timeline i from file on.
func (h *History) FilesFrom(i int, file string) []*FileState {
	for j, f := range h.Timelines[i].Files {
		if f.File == file {
			return h.Timelines[i].Files[j:]
		}
	}
	return nil
}

// ComparePoints orders two positions of one timeline.
func ComparePoints(a, b replication.Position) int {
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

// rebuildTo writes the archived file to path (through a temporary file).
func rebuildTo(ctx context.Context, c Catalog, fs *FileState, path string) error {
	tmp := path + ".part"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = c.Rebuild(ctx, fs, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("fetch %s: %w", fs.File, err)
	}
	return nil
}
