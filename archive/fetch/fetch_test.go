package fetch

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
	"github.com/klauspost/compress/zstd"
)

const (
	ftl1 = "000001-20261125T000000Z"
	ftl2 = "000002-20261126T000000Z"
)

// fetchArchive is an archive of hand-cut plain segments in a memory store.
type fetchArchive struct {
	t   *testing.T
	mem *objstore.Memory
	cat archive.Catalog
	// shift moves the events of the next files stored this many seconds
	// later.
	shift uint32
}

// archivedFile is a binlog file as fetchArchive stored it.
type archivedFile struct {
	tl, name string
	// data is the file as Rebuild writes it (the in-use flag as the
	// primary's own copy has it).
	data   []byte
	events []uint64 // offset of each event
	cuts   []uint64 // segment boundaries: 0, ..., len(data)
}

func newFetchArchive(t *testing.T, timelines ...string) *fetchArchive {
	a := &fetchArchive{t: t, mem: objstore.NewMemory()}
	a.cat = archive.Catalog{Store: a.mem, Layout: archive.Layout{Cluster: "c"}}
	for _, tl := range timelines {
		plainTimeline(t, a.mem, a.cat.Layout, tl)
	}
	return a
}

// file archives a binlog file in timeline tl: a format description naming
// checksum algorithm alg, ten row events, and when complete a ROTATE and
// an index; three events to a segment.
func (a *fetchArchive) file(tl, name string, alg byte, complete bool) *archivedFile {
	a.t.Helper()
	return a.fileOf(tl, name, alg, complete, func(b *binlogtest.Binlog, add func(replication.Event)) {
		for i := 0; i < 10; i++ {
			add(b.Next(gomysql.WRITE_ROWS_EVENTv1, 200+i))
		}
	})
}

// fileOf is file with the events body adds between the format
// description and the ROTATE.
func (a *fetchArchive) fileOf(tl, name string, alg byte, complete bool, body func(b *binlogtest.Binlog, add func(replication.Event))) *archivedFile {
	a.t.Helper()
	b := binlogtest.New(name)
	b.TS += a.shift
	f := &archivedFile{tl: tl, name: name, data: append([]byte(nil), replication.Magic...)}
	add := func(ev replication.Event) {
		f.events = append(f.events, ev.Start)
		f.data = append(f.data, ev.Raw...)
	}
	add(b.FormatDescription(alg))
	body(b, add)
	if complete {
		add(b.Next(gomysql.ROTATE_EVENT, binlogtest.RotateSize))
	}
	for i := 0; i < len(f.events); i += 3 {
		f.cuts = append(f.cuts, f.events[i])
	}
	f.cuts[0] = 0
	f.cuts = append(f.cuts, uint64(len(f.data)))
	for i := 0; i+1 < len(f.cuts); i++ {
		a.putSegment(f, i)
	}
	if complete {
		must(a.t, archive.WriteFileIndex(context.Background(), a.mem, a.cat.Layout, tl, name, b.NextName(), nil))
	} else {
		f.data[replication.InUseFlagOffset] |= replication.FlagInUse
	}
	return f
}

// putSegment stores segment i of f (a valid zstd frame).
func (a *fetchArchive) putSegment(f *archivedFile, i int) {
	a.t.Helper()
	start, end := f.cuts[i], f.cuts[i+1]
	plain := append([]byte(nil), f.data[start:end]...)
	if start == 0 {
		plain[replication.InUseFlagOffset] &^= replication.FlagInUse // as the primary sends it
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	must(a.t, err)
	_, err = a.mem.Put(context.Background(), a.cat.Layout.SegmentKey(f.tl, f.name, start, end), enc.EncodeAll(plain, nil), objstore.PutOptions{})
	must(a.t, err)
}

// corrupt changes the bytes of f at offset off with change, and stores
// the segment holding them again.
func (a *fetchArchive) corrupt(f *archivedFile, off uint64, change func([]byte)) {
	a.t.Helper()
	change(f.data[off:])
	for i := 0; i+1 < len(f.cuts); i++ {
		if off >= f.cuts[i] && off < f.cuts[i+1] {
			a.putSegment(f, i)
		}
	}
}

// segmentKey is the key of the segment of f holding offset off.
func (a *fetchArchive) segmentKey(f *archivedFile, off uint64) string {
	for i := 0; i+1 < len(f.cuts); i++ {
		if off >= f.cuts[i] && off < f.cuts[i+1] {
			return a.cat.Layout.SegmentKey(f.tl, f.name, f.cuts[i], f.cuts[i+1])
		}
	}
	return ""
}

func (a *fetchArchive) fetch(req Request) ([]File, error) {
	return Files(context.Background(), a.cat, req)
}

// TestFetch: every file of the newest timeline, byte for byte, a complete
// one and a live one, with checksums on and off.
func TestFetch(t *testing.T) {
	a := newFetchArchive(t, ftl1)
	want := []*archivedFile{
		a.file(ftl1, "mysql-bin.000001", replication.ChecksumCRC32, true),
		a.file(ftl1, "mysql-bin.000002", replication.ChecksumNone, true),
		a.file(ftl1, "mysql-bin.000003", replication.ChecksumCRC32, false),
	}
	dir := filepath.Join(t.TempDir(), "new")
	var reported []string
	got, err := a.fetch(Request{Dir: dir, Fetched: func(f File) { reported = append(reported, f.File) }})
	must(t, err)
	if len(got) != len(want) || len(reported) != len(want) {
		t.Fatalf("fetched %+v, reported %v; want %d files", got, reported, len(want))
	}
	for i, w := range want {
		data, err := os.ReadFile(filepath.Join(dir, w.name))
		must(t, err)
		if !bytes.Equal(data, w.data) {
			t.Errorf("%s: %d bytes differ from the %d archived", w.name, len(data), len(w.data))
		}
		if g := got[i]; g.File != w.name || g.Timeline != ftl1 || g.Bytes != int64(len(w.data)) || g.Complete != (i < 2) || g.Path != filepath.Join(dir, w.name) {
			t.Errorf("result %d: %+v", i, g)
		}
	}
	expectOnly(t, dir, "mysql-bin.000001", "mysql-bin.000002", "mysql-bin.000003")
}

// TestFetchCorrupt: valid zstd holding an event whose length, CRC32 or
// position is wrong is refused, naming the file, the offset and the
// segment, and leaves no file, not even a temporary one.
func TestFetchCorrupt(t *testing.T) {
	setSize := func(n uint32) func([]byte) {
		return func(b []byte) { binary.LittleEndian.PutUint32(b[9:], n) }
	}
	for _, c := range []struct {
		name     string
		alg      byte
		complete bool
		event    int // index of the event to corrupt
		change   func(ev []byte)
		want     string
	}{
		{"length 8 too long", replication.ChecksumCRC32, true, 4, func(b []byte) { setSize(binary.LittleEndian.Uint32(b[9:]) + 8)(b) }, "CRC32 mismatch"},
		{"length 8 too short, live file", replication.ChecksumCRC32, false, 5, func(b []byte) { setSize(binary.LittleEndian.Uint32(b[9:]) - 8)(b) }, "CRC32 mismatch"},
		{"length past the end", replication.ChecksumCRC32, true, 7, setSize(1 << 29), "past the file's end"},
		{"length past any event", replication.ChecksumCRC32, true, 7, setSize(0xffffffff), "more than the largest event"},
		{"length under a header", replication.ChecksumCRC32, true, 4, setSize(5), "fewer than the header"},
		{"length without checksums", replication.ChecksumNone, true, 4, func(b []byte) { setSize(binary.LittleEndian.Uint32(b[9:]) + 8)(b) }, "has log_pos"},
		{"body bit flipped", replication.ChecksumCRC32, true, 6, func(b []byte) { b[30] ^= 1 }, "CRC32 mismatch"},
		{"not a format description first", replication.ChecksumCRC32, true, 0, func(b []byte) { b[4] = byte(gomysql.QUERY_EVENT) }, "not a format description"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newFetchArchive(t, ftl1)
			f := a.file(ftl1, "mysql-bin.000001", c.alg, c.complete)
			off := f.events[c.event]
			a.corrupt(f, off, c.change)
			dir := t.TempDir()
			_, err := a.fetch(Request{Dir: dir})
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("fetch of a corrupt file: %v; want ErrCorrupt", err)
			}
			for _, s := range []string{"binlog=mysql-bin.000001", fmt.Sprintf("offset=%d", off), "in segment " + a.segmentKey(f, off), c.want} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			expectOnly(t, dir)
		})
	}
}

// TestFetchBomb: a zstd bomb stored as a compacted file is reported as
// one, not as the zeros it decodes to, and leaves no file.
func TestFetchBomb(t *testing.T) {
	a := newFetchArchive(t, ftl1)
	f := a.file(ftl1, "mysql-bin.000001", replication.ChecksumCRC32, true)
	_, err := a.mem.Put(context.Background(), a.cat.Layout.CompactedKey(ftl1, f.name), binlogtest.ZstdBomb(t), objstore.PutOptions{})
	must(t, err)
	dir := t.TempDir()
	if _, err := a.fetch(Request{Dir: dir}); !errors.Is(err, archive.ErrOversize) || !strings.Contains(err.Error(), "zstd bomb") {
		t.Fatalf("fetch of a compacted bomb: %v; want archive.ErrOversize", err)
	}
	expectOnly(t, dir)
}

// twoTimelines is an archive of two timelines that both hold
// mysql-bin.000002: ftl1 has .000001 and .000002, ftl2 .000002 and an
// unfinished .000003. It returns ftl1's .000001 too.
func twoTimelines(t *testing.T) (*fetchArchive, *archivedFile) {
	t.Helper()
	a := newFetchArchive(t, ftl1, ftl2)
	one := a.file(ftl1, "mysql-bin.000001", replication.ChecksumCRC32, true)
	a.file(ftl1, "mysql-bin.000002", replication.ChecksumCRC32, true)
	a.file(ftl2, "mysql-bin.000002", replication.ChecksumCRC32, true)
	a.file(ftl2, "mysql-bin.000003", replication.ChecksumCRC32, false)
	return a, one
}

// TestFetchRefuses: what the archive does not hold, and a file already
// there, fail before anything is fetched, as bad requests.
func TestFetchRefuses(t *testing.T) {
	a, _ := twoTimelines(t)
	for _, c := range []struct {
		name string
		req  Request
		want string
	}{
		{"a name two timelines hold", Request{Files: []string{"mysql-bin.000002"}}, "is in 2 timelines"},
		{"names in two timelines", Request{Files: []string{"mysql-bin.000001", "mysql-bin.000003"}}, "different timelines"},
		{"no such timeline", Request{Timeline: "000009-20261127T000000Z"}, "no such timeline"},
		{"no such file", Request{Files: []string{"mysql-bin.000009"}}, `"mysql-bin.000009" is not in timeline ` + ftl2},
		{"not in the named timeline", Request{Timeline: ftl2, Files: []string{"mysql-bin.000001"}}, "is not in timeline " + ftl2},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.req.Dir = t.TempDir()
			_, err := a.fetch(c.req)
			if !errors.Is(err, archive.ErrRequest) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v; want archive.ErrRequest saying %q", err, c.want)
			}
			expectOnly(t, c.req.Dir)
		})
	}
	t.Run("an existing file", func(t *testing.T) {
		dir := t.TempDir()
		must(t, os.WriteFile(filepath.Join(dir, "mysql-bin.000003"), []byte("mine"), 0o600))
		_, err := a.fetch(Request{Dir: dir})
		if !errors.Is(err, archive.ErrRequest) || !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("%v; want archive.ErrRequest saying it exists", err)
		}
		expectOnly(t, dir, "mysql-bin.000003")
		if data, _ := os.ReadFile(filepath.Join(dir, "mysql-bin.000003")); string(data) != "mine" {
			t.Fatalf("the existing file was changed: %q", data)
		}
	})
	t.Run("an empty cluster", func(t *testing.T) {
		empty := archive.Catalog{Store: objstore.NewMemory(), Layout: archive.Layout{Cluster: "none"}}
		_, err := Files(context.Background(), empty, Request{Dir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), `cluster "none" has no archive`) {
			t.Fatalf("%v; want no archive", err)
		}
	})
}

// TestFetchPicksTimeline: named files go to the timeline holding them,
// none to the newest, --timeline to that one.
func TestFetchPicksTimeline(t *testing.T) {
	a, one := twoTimelines(t)
	for _, c := range []struct {
		name   string
		req    Request
		tl     string
		fetchd []string
	}{
		{"a name one timeline holds", Request{Files: []string{one.name}}, ftl1, []string{one.name}},
		{"no names: the newest", Request{}, ftl2, []string{"mysql-bin.000002", "mysql-bin.000003"}},
		{"a named timeline", Request{Timeline: ftl1}, ftl1, []string{"mysql-bin.000001", "mysql-bin.000002"}},
		{"a shared name in a named timeline", Request{Timeline: ftl1, Files: []string{"mysql-bin.000002"}}, ftl1, []string{"mysql-bin.000002"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.req.Dir = t.TempDir()
			got, err := a.fetch(c.req)
			must(t, err)
			var names []string
			for _, f := range got {
				names = append(names, f.File)
				if f.Timeline != c.tl {
					t.Errorf("%s fetched from %s; want %s", f.File, f.Timeline, c.tl)
				}
			}
			if strings.Join(names, " ") != strings.Join(c.fetchd, " ") {
				t.Errorf("fetched %v; want %v", names, c.fetchd)
			}
			expectOnly(t, c.req.Dir, c.fetchd...)
		})
	}
}

// expectOnly fails unless dir holds exactly the named files.
func expectOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	must(t, err)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Fatalf("%s holds %v; want %v", dir, got, names)
	}
}

// plainTimeline stores the manifest of a clear-text timeline tl.
func plainTimeline(t testing.TB, s objstore.Store, l archive.Layout, tl string) {
	t.Helper()
	ti := &archive.TimelineInfo{Version: archive.LayoutVersionPlain, Timeline: tl, StartFile: "mysql-bin.000001", SourceServerID: 1, Reason: "new archive"}
	if _, err := s.Put(context.Background(), l.TimelineKey(tl), archive.MarshalJSON(ti), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
