package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/replication"
)

// File is one binlog file a Source can stream.
type File struct {
	// Timeline is the archive's timeline the file is on: a source that
	// streams across timeline joins may list two files of one name.
	Timeline string
	Name     string
	// Start, when past the file's head, is where the stream enters the
	// file after a timeline join (what lies before it the previous
	// timeline held), and StartState the GTID state there.
	Start      uint64
	StartState string
	// Size is how many bytes of it are there to read now.
	Size uint64
	// Complete: no byte will be added to the file.
	Complete  bool
	FirstGTID string
	LastGTID  string
}

// Source is what serve streams: binlog files in order, byte for byte as
// the primary wrote them.
type Source interface {
	// Files lists the files in binlog order, as they stand now.
	Files(ctx context.Context) ([]File, error)
	// Read calls fn with each event of f from offset from (an event
	// boundary at or after 4) to f.Size. raw is only valid during the call.
	Read(ctx context.Context, f File, from uint64, fn func(off uint64, h replication.Header, raw []byte) error) error
}

// ErrNotBoundary means a start position is not where an event starts.
var ErrNotBoundary = errors.New("not an event boundary")

// ArchiveSource streams the newest timeline of an archive, straight from
// the store: segments are fetched a few ahead of the stream (bounded
// memory), and each is checked (zstd checksum, size) before any of its
// events is sent.
type ArchiveSource struct {
	Catalog archive.Catalog
	// Timeline to stream; empty means the newest, or with Joins every
	// timeline joined to the newest.
	Timeline string
	// Joins, if set, says where each timeline takes over from the one
	// before it (the restore package works it out from the archive).
	Joins func(ctx context.Context) ([]*Join, error)

	// ReadSlots, above zero, is how many files are read at once across
	// every stream (ArchiveOptions sets it): each read holds a decoder
	// with its window and buffers, so serve's memory stays bounded however
	// many clients read, and the others wait their turn with heartbeats.
	ReadSlots int

	mu      sync.Mutex
	joinsMu sync.Mutex // held while the joins are worked out (chain.go)
	slots   chan struct{}
	// states caches file states (statesMu held while one is read): a
	// compacted file's for good, one still in segments for a second.
	// Reading such a state reads the segments, and every stream asks.
	statesMu sync.Mutex
	states   map[string]cachedState
	// complete caches complete files, which never change: a following
	// stream lists the archive every second, and reads only the live
	// file's state then.
	complete map[string]File
	chain    chainCache
}

var _ Source = (*ArchiveSource)(nil)

func (a *ArchiveSource) readSlots() chan struct{} {
	if a.ReadSlots <= 0 {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.slots == nil {
		a.slots = make(chan struct{}, a.ReadSlots)
	}
	return a.slots
}

func (a *ArchiveSource) timeline(ctx context.Context) (string, error) {
	if a.Timeline != "" {
		return a.Timeline, nil
	}
	tls, err := a.Catalog.Timelines(ctx)
	if err != nil {
		return "", err
	}
	if len(tls) == 0 {
		return "", fmt.Errorf("cluster %q has no archived binlog", a.Catalog.Layout.Cluster)
	}
	return tls[len(tls)-1], nil
}

var _ PrimaryDescriber = (*ArchiveSource)(nil)

// Primary describes the primary of the newest timeline, as the archive
// recorded it when the timeline began.
func (a *ArchiveSource) Primary(ctx context.Context) (Primary, error) {
	tls, err := a.Catalog.Timelines(ctx)
	if err != nil {
		return Primary{}, err
	}
	if len(tls) == 0 {
		return Primary{}, fmt.Errorf("cluster %q has no archived binlog", a.Catalog.Layout.Cluster)
	}
	ti, err := a.Catalog.ReadTimeline(ctx, tls[len(tls)-1])
	if err != nil {
		return Primary{}, err
	}
	flavor := "mariadb"
	if ti.SourceFlavor == string(replication.FlavorMySQL) {
		flavor = "mysql"
	}
	return Primary{Version: ti.SourceVersion, Flavor: flavor, ServerUUID: ti.SourceServerUUID}, nil
}

// Files lists the timeline's files, or, with Joins, the files of the
// timelines joined to one another (chain.go).
func (a *ArchiveSource) Files(ctx context.Context) ([]File, error) {
	if a.Joins != nil && a.Timeline == "" {
		return a.chainFiles(ctx)
	}
	tl, err := a.timeline(ctx)
	if err != nil {
		return nil, err
	}
	return a.timelineFiles(ctx, tl)
}

// timelineFiles lists one timeline's files. Only the last one is read
// beyond its listing when it is not complete.
func (a *ArchiveSource) timelineFiles(ctx context.Context, tl string) ([]File, error) {
	refs, err := a.Catalog.Files(ctx, tl)
	if err != nil {
		return nil, err
	}
	out := make([]File, 0, len(refs))
	for _, r := range refs {
		a.mu.Lock()
		f, ok := a.complete[tl+"/"+r.Name]
		a.mu.Unlock()
		if ok {
			out = append(out, f)
			continue
		}
		fs, err := a.fileState(ctx, tl, r)
		if err != nil {
			return nil, err
		}
		if fs.Gap != nil {
			return nil, fs.Gap
		}
		f = File{Timeline: tl, Name: fs.File, Size: fs.Size, Complete: fs.Complete, FirstGTID: fs.FirstGTID, LastGTID: fs.LastGTID}
		if f.Complete {
			a.mu.Lock()
			if a.complete == nil {
				a.complete = map[string]File{}
			}
			a.complete[tl+"/"+r.Name] = f
			a.mu.Unlock()
		}
		out = append(out, f)
	}
	return out, nil
}

func (a *ArchiveSource) Read(ctx context.Context, f File, from uint64, fn func(uint64, replication.Header, []byte) error) error {
	release, err := takeSlot(ctx, a.readSlots())
	if err != nil {
		return err
	}
	defer release()
	next := from
	deliver := func(off uint64, h replication.Header, raw []byte) error {
		if err := fn(off, h, raw); err != nil {
			return err
		}
		next = off + uint64(len(raw))
		return nil
	}
	err = a.read(ctx, f, next, deliver)
	if errors.Is(err, objstore.ErrNotExist) {
		// A compaction replaced the file's segments with one object while
		// the state said segments: read its state again and go on from
		// the next event, once.
		a.forget(f)
		err = a.read(ctx, f, next, deliver)
	}
	return err
}

func (a *ArchiveSource) read(ctx context.Context, f File, from uint64, fn func(uint64, replication.Header, []byte) error) error {
	tl := f.Timeline
	if tl == "" {
		var err error
		if tl, err = a.timeline(ctx); err != nil {
			return err
		}
	}
	ref, err := a.ref(ctx, tl, f.Name)
	if err != nil {
		return err
	}
	fs, err := a.fileState(ctx, tl, ref)
	if err != nil {
		return err
	}
	if fs.Gap != nil {
		return fs.Gap
	}
	from = max(from, replication.MagicLen)
	if fs.CompactedKey != "" {
		// One stream of the whole object; the bytes before from are read
		// and dropped.
		return readAll(ctx, a.Catalog, fs, from, f.Size, fn)
	}
	// Segments from the one holding from; a segment starts at an event.
	first := -1
	for i, s := range fs.Segments {
		if s.Start <= from && from < s.End {
			first = i
			break
		}
	}
	if first < 0 {
		if from == fs.Size {
			return nil
		}
		return fmt.Errorf("binlog=%s offset=%d: past the archived %d bytes", f.Name, from, fs.Size)
	}
	segs := fs.Segments[first:]
	hit := false
	err = a.Catalog.ReadSegments(ctx, segs, segmentsAhead, nil, func(i int, plain []byte, err error) error {
		if err != nil {
			return err
		}
		if segs[i].Start >= f.Size {
			return errStop
		}
		return replication.Events(plain, segs[i].Start, func(off uint64, h replication.Header, raw []byte) error {
			if off < from {
				return nil
			}
			if !hit && off != from {
				return fmt.Errorf("binlog=%s offset=%d: %w (the nearest events start at %d)", f.Name, from, ErrNotBoundary, off)
			}
			hit = true
			if off >= f.Size {
				return errStop
			}
			return fn(off, h, raw)
		})
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// cachedState is a file state and when it was read.
type cachedState struct {
	fs *archive.FileState
	at time.Time
}

// fileState is Catalog.FileState through the cache: many streams starting
// or following at once read the state once.
func (a *ArchiveSource) fileState(ctx context.Context, tl string, r archive.FileRef) (*archive.FileState, error) {
	key := tl + "/" + r.Name
	a.statesMu.Lock()
	defer a.statesMu.Unlock()
	// A compacted file's state is final; a file still in segments may be
	// compacted (its segments deleted) at any time.
	if c, ok := a.states[key]; ok && (c.fs.CompactedKey != "" || time.Since(c.at) < time.Second) {
		return c.fs, nil
	}
	fs, err := a.Catalog.FileState(ctx, tl, r)
	if err != nil {
		return nil, err
	}
	if a.states == nil {
		a.states = map[string]cachedState{}
	}
	if fs.Gap == nil {
		a.states[key] = cachedState{fs: fs, at: time.Now()}
	}
	return fs, nil
}

// forget drops a file's cached state.
func (a *ArchiveSource) forget(f File) {
	a.statesMu.Lock()
	defer a.statesMu.Unlock()
	for key := range a.states {
		if strings.HasSuffix(key, "/"+f.Name) && (f.Timeline == "" || key == f.Timeline+"/"+f.Name) {
			delete(a.states, key)
		}
	}
}

// ref finds a file in the timeline's listing.
func (a *ArchiveSource) ref(ctx context.Context, tl, file string) (archive.FileRef, error) {
	refs, err := a.Catalog.Files(ctx, tl)
	if err != nil {
		return archive.FileRef{}, err
	}
	for _, r := range refs {
		if r.Name == file {
			return r, nil
		}
	}
	return archive.FileRef{}, fmt.Errorf("binlog=%s timeline=%s: no longer in the archive (pruned?)", file, tl)
}

// segmentsAhead is how many segments a read fetches ahead of the one it
// sends: one, so the next is on its way while this one goes out. Each is
// up to a segment's size decompressed, per read slot.
const segmentsAhead = 2

// errStop ends a read early, without error.
var errStop = errors.New("stop reading")

// readAll streams a whole file through Rebuild and hands on the events
// from offset from to size.
func readAll(ctx context.Context, c archive.Catalog, fs *archive.FileState, from, size uint64, fn func(uint64, replication.Header, []byte) error) error {
	pr := c.Stream(ctx, fs)
	defer pr.Close()
	return walk(fs.File, pr, 0, from, size, fn)
}

// walk reads events from r (a file from offset start) and hands on those
// from offset from to size; from must be an event boundary.
func walk(name string, r io.Reader, start, from, size uint64, fn func(uint64, replication.Header, []byte) error) error {
	hit := from <= replication.MagicLen
	err := replication.ReadEvents(r, start, func(off uint64, h replication.Header, raw []byte) error {
		if off >= size {
			return errStop
		}
		if off < from {
			return nil
		}
		if !hit && off != from {
			return fmt.Errorf("binlog=%s offset=%d: %w (the nearest events start at %d)", name, from, ErrNotBoundary, off)
		}
		hit = true
		return fn(off, h, raw)
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// DirSource streams binlog files already rebuilt into a directory (a
// restore's fetched and checked files).
type DirSource struct {
	Dir   string
	Names []string
}

var _ Source = (*DirSource)(nil)

func (d *DirSource) Files(ctx context.Context) ([]File, error) {
	out := make([]File, 0, len(d.Names))
	for _, n := range d.Names {
		st, err := os.Stat(filepath.Join(d.Dir, n))
		if err != nil {
			return nil, err
		}
		out = append(out, File{Name: n, Size: uint64(st.Size()), Complete: true})
	}
	return out, nil
}

func (d *DirSource) Read(ctx context.Context, f File, from uint64, fn func(uint64, replication.Header, []byte) error) error {
	fh, err := os.Open(filepath.Join(d.Dir, f.Name))
	if err != nil {
		return err
	}
	defer fh.Close()
	return walk(f.Name, &ctxReader{ctx: ctx, r: fh}, 0, from, f.Size, fn)
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
