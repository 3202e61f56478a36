package verify

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
	"github.com/klauspost/compress/zstd"
	"github.com/rs/zerolog"
)

const (
	vtl1 = "000001-20261125T000000Z"
	vtl2 = "000002-20261126T000000Z"
)

// verifyArchive is an archive built by the real Segmenter and Uploader:
// three files in timeline vtl1, two complete (ROTATE, indexed) and a live
// one, several segments each, with CRC32 on.
type verifyArchive struct {
	t      *testing.T
	mem    *objstore.Memory
	layout archive.Layout
	cat    archive.Catalog
	events int64
}

func newVerifyArchive(t *testing.T) *verifyArchive {
	t.Helper()
	a := &verifyArchive{t: t, mem: objstore.NewMemory(), layout: archive.Layout{Cluster: "c"}}
	a.cat = archive.Catalog{Store: a.mem, Layout: a.layout}
	putJSON(t, a.mem, a.layout.LayoutKey(), archive.LayoutInfo{Version: archive.LayoutVersion})
	a.timeline(vtl1, "mysql-bin.000001", nil)
	a.stream(vtl1, 1, 3, true)
	return a
}

func (a *verifyArchive) timeline(tl, start string, prev *archive.TimelineEnd) {
	a.t.Helper()
	ti := &archive.TimelineInfo{Version: archive.LayoutVersion, Timeline: tl, StartFile: start, SourceServerID: 1, Reason: "new archive", Previous: prev}
	putJSON(a.t, a.mem, a.layout.TimelineKey(tl), ti)
}

// stream archives files first..last of timeline tl; the last one stays
// live when live is set, else it ends with a ROTATE too.
func (a *verifyArchive) stream(tl string, first, last int, live bool) {
	a.t.Helper()
	up, err := archive.NewUploader(archive.UploaderConfig{Concurrency: 3, MaxBufferedBytes: 1 << 20}, a.mem, a.layout, archive.Durable{Timeline: tl}, zerolog.Nop(), nil)
	must(a.t, err)
	defer up.Close()
	seg := archive.NewSegmenter(archive.SegmenterConfig{FlushInterval: time.Hour, SegmentSize: 4096}, tl, replication.Position{File: binlogName(first)}, up)
	for n := first; n <= last; n++ {
		b := binlogtest.New(binlogName(n))
		must(a.t, seg.Add(withFormatDescription(b.Next(gomysql.FORMAT_DESCRIPTION_EVENT, 120))))
		for i := 0; i < 10; i++ {
			must(a.t, seg.Add(b.Next(gomysql.WRITE_ROWS_EVENTv1, 1000)))
		}
		a.events += 11
		if n < last || !live {
			must(a.t, seg.Add(b.Next(gomysql.ROTATE_EVENT, binlogtest.RotateSize)))
			must(a.t, seg.FileDone(b.File, b.NextName()))
			a.events++
		}
	}
	must(a.t, seg.Flush())
	drain(a.t, up)
}

func binlogName(n int) string { return fmt.Sprintf("mysql-bin.%06d", n) }

// withFormatDescription makes a fake FORMAT_DESCRIPTION_EVENT what a
// MariaDB 10.11 with binlog_checksum=CRC32 writes: its server version, and
// the checksum algorithm before the CRC32.
func withFormatDescription(ev replication.Event) replication.Event {
	raw := ev.Raw
	body := raw[replication.HeaderLen:]
	binary.LittleEndian.PutUint16(body, 4)
	copy(body[2:52], make([]byte, 50))
	copy(body[2:52], "10.11.6-MariaDB-log")
	body[56] = replication.HeaderLen
	raw[len(raw)-5] = 1 // BINLOG_CHECKSUM_ALG_CRC32
	binary.LittleEndian.PutUint32(raw[len(raw)-4:], crc32.ChecksumIEEE(raw[:len(raw)-4]))
	return ev
}

func (a *verifyArchive) verify(opts VerifyOptions) *VerifyReport {
	a.t.Helper()
	rep, err := Verify(context.Background(), a.cat, opts)
	must(a.t, err)
	return rep
}

func (a *verifyArchive) segments(tl, file string) []archive.SegmentRef {
	a.t.Helper()
	refs, err := a.cat.Segments(context.Background(), tl, file)
	must(a.t, err)
	if len(refs) < 3 {
		a.t.Fatalf("%s has %d segments; the tests want several", file, len(refs))
	}
	return refs
}

func (a *verifyArchive) get(key string) []byte {
	a.t.Helper()
	b, _, err := objstore.ReadAll(context.Background(), a.mem, key)
	must(a.t, err)
	return b
}

func (a *verifyArchive) put(key string, b []byte) {
	a.t.Helper()
	_, err := a.mem.Put(context.Background(), key, b, objstore.PutOptions{})
	must(a.t, err)
}

func (a *verifyArchive) del(key string) {
	a.t.Helper()
	must(a.t, a.mem.Delete(context.Background(), key))
}

// rewriteSegment decompresses a segment, lets edit change its bytes, and
// stores it compressed again: a segment whose zstd checksums hold.
func (a *verifyArchive) rewriteSegment(key string, edit func(plain []byte)) {
	a.t.Helper()
	plain, err := archive.DecodeSegment(a.get(key))
	must(a.t, err)
	edit(plain)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	must(a.t, err)
	a.put(key, enc.EncodeAll(plain, nil))
}

// expect checks the report has a finding of severity sev whose text holds
// every one of want, and returns it.
func expect(t *testing.T, rep *VerifyReport, sev Severity, want ...string) Finding {
	t.Helper()
	for _, f := range rep.Findings {
		s := f.String()
		ok := f.Severity == sev
		for _, w := range want {
			ok = ok && strings.Contains(s, w)
		}
		if ok {
			return f
		}
	}
	t.Fatalf("no %s with %q among:\n%s", sev, want, findings(rep))
	return Finding{}
}

func findings(rep *VerifyReport) string {
	var b strings.Builder
	for _, f := range rep.Findings {
		fmt.Fprintf(&b, "  %s %s\n", f.Severity, f)
	}
	return b.String()
}

func TestVerifyClean(t *testing.T) {
	a := newVerifyArchive(t)
	var reported int
	rep := a.verify(VerifyOptions{Report: func(Finding) { reported++ }})
	if !rep.OK() || rep.Notes != 0 || reported != 0 {
		t.Fatalf("a clean archive: %d problems, %d notes:\n%s", rep.Problems, rep.Notes, findings(rep))
	}
	c := rep.Counts
	if c.Timelines != 1 || c.Files != 3 || c.Segments < 9 || c.Events != a.events || c.StoredBytes == 0 || c.BinlogBytes < 30000 || rep.LayoutVersion != archive.LayoutVersion {
		t.Fatalf("counts: %+v, layout %d; want 1 timeline, 3 files, %d events", c, rep.LayoutVersion, a.events)
	}
}

func TestVerifyCompactedFile(t *testing.T) {
	a := newVerifyArchive(t)
	ctx := context.Background()
	if _, err := a.cat.Compact(ctx, vtl1, "mysql-bin.000001"); err != nil {
		t.Fatal(err)
	}
	rep := a.verify(VerifyOptions{})
	if !rep.OK() || rep.Counts.Compacted != 1 || rep.Counts.Events != a.events {
		t.Fatalf("compacted archive: %+v\n%s", rep.Counts, findings(rep))
	}

	// A changed event inside the compacted object, frames recompressed:
	// the CRC32 catches it, at the file offset.
	key := a.layout.CompactedKey(vtl1, "mysql-bin.000001")
	plain, err := archive.DecodeSegment(a.get(key))
	must(t, err)
	plain[2000] ^= 0x40
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	must(t, err)
	a.put(key, enc.EncodeAll(plain, nil))
	rep = a.verify(VerifyOptions{})
	start := eventStart(t, plain, 2000)
	expect(t, rep, SeverityProblem, "binlog=mysql-bin.000001", fmt.Sprintf("offset=%d", start), "key="+key, "CRC32 mismatch")
	expect(t, rep, SeverityProblem, "key="+key, "the compacted object has")

	// Leftover segments beside it are a note, not a problem.
	a2 := newVerifyArchive(t)
	segs := a2.segments(vtl1, "mysql-bin.000001")
	keep := a2.get(segs[0].Key)
	if _, err := a2.cat.Compact(ctx, vtl1, "mysql-bin.000001"); err != nil {
		t.Fatal(err)
	}
	a2.put(segs[0].Key, keep)
	rep = a2.verify(VerifyOptions{})
	if !rep.OK() {
		t.Fatalf("leftover segment is not a problem:\n%s", findings(rep))
	}
	expect(t, rep, SeverityNote, "left beside the compacted object")
}

// TestVerifyBesideCompactionAndPrune: a compaction replaces a file's
// segments, and a prune removes the oldest file, while Verify reads them:
// neither is a problem.
func TestVerifyBesideCompactionAndPrune(t *testing.T) {
	for _, what := range []string{"compaction", "prune", "prune in progress"} {
		t.Run(what, func(t *testing.T) {
			a := newVerifyArchive(t)
			ctx := context.Background()
			file := "mysql-bin.000001"
			segs := a.segments(vtl1, file)
			faulty := objstore.NewFaulty(a.mem)
			var once sync.Once
			faulty.SetHook(func(op, key string) error {
				if op == objstore.OpGet && key == segs[1].Key {
					once.Do(func() {
						if what == "compaction" {
							_, err := a.cat.Compact(ctx, vtl1, file)
							must(t, err)
							return
						}
						for _, s := range segs {
							must(t, a.mem.Delete(ctx, s.Key))
						}
						if what == "prune" {
							must(t, a.mem.Delete(ctx, a.layout.IndexKey(vtl1, file)))
						}
					})
				}
				return nil
			})
			rep, err := Verify(ctx, archive.Catalog{Store: faulty, Layout: a.layout}, VerifyOptions{Concurrency: 1})
			must(t, err)
			if !rep.OK() {
				t.Fatalf("%s beside verify is reported as a problem:\n%s", what, findings(rep))
			}
			if what == "compaction" && rep.Counts.Compacted != 1 {
				t.Fatalf("the compacted file was not checked: %+v", rep.Counts)
			}
			switch what {
			case "prune":
				expect(t, rep, SeverityNote, "binlog="+file, "removed while it was being verified")
			case "prune in progress":
				expect(t, rep, SeverityNote, "binlog="+file, "a prune is running")
			}
		})
	}
}

// eventStart is the offset of the event holding byte off of a file.
func eventStart(t *testing.T, file []byte, off uint64) uint64 {
	t.Helper()
	var at uint64
	must(t, replication.Events(file, 0, func(start uint64, h replication.Header, _ []byte) error {
		if start <= off && off < start+uint64(h.EventSize) {
			at = start
		}
		return nil
	}))
	return at
}

func TestVerifyFlippedCompressedByte(t *testing.T) {
	a := newVerifyArchive(t)
	s := a.segments(vtl1, "mysql-bin.000001")[1]
	b := a.get(s.Key)
	b[len(b)/2] ^= 0x01
	a.put(s.Key, b)
	rep := a.verify(VerifyOptions{})
	if rep.OK() {
		t.Fatal("a flipped byte passed")
	}
	f := expect(t, rep, SeverityProblem, "key="+s.Key, fmt.Sprintf("offset=%d", s.Start), "corrupt")
	if f.Timeline != vtl1 || f.File != "mysql-bin.000001" {
		t.Fatalf("coordinates: %s", f)
	}
	// The segments after it are still checked.
	if rep.Counts.Segments != countSegments(a)-1 || rep.Problems != 1 {
		t.Fatalf("%d segments read of %d, %d problems:\n%s", rep.Counts.Segments, countSegments(a), rep.Problems, findings(rep))
	}
}

func countSegments(a *verifyArchive) int {
	n := 0
	for f := 1; f <= 3; f++ {
		n += len(a.segments(vtl1, binlogName(f)))
	}
	return n
}

func TestVerifyChangedEventByte(t *testing.T) {
	a := newVerifyArchive(t)
	for _, file := range []string{"mysql-bin.000001", "mysql-bin.000003"} { // indexed, live
		s := a.segments(vtl1, file)[1]
		var at uint64
		a.rewriteSegment(s.Key, func(plain []byte) {
			rel := len(plain)/2 + 50 // in an event's body, past its header
			plain[rel] ^= 0x10
			at = s.Start + eventStartIn(t, plain, s.Start, uint64(rel))
		})
		rep := a.verify(VerifyOptions{})
		expect(t, rep, SeverityProblem, "binlog="+file, fmt.Sprintf("offset=%d", at), "key="+s.Key, "CRC32 mismatch")
		if file == "mysql-bin.000001" {
			expect(t, rep, SeverityProblem, "key="+s.Key, "the index says")
		}
	}
}

// eventStartIn is the offset, from the segment's start, of the event that
// holds byte rel of a segment starting at file offset start.
func eventStartIn(t *testing.T, plain []byte, start, rel uint64) uint64 {
	t.Helper()
	var at uint64
	must(t, replication.Events(plain, start, func(off uint64, h replication.Header, _ []byte) error {
		if off-start <= rel && rel < off-start+uint64(h.EventSize) {
			at = off - start
		}
		return nil
	}))
	return at
}

func TestVerifyEventHeaders(t *testing.T) {
	a := newVerifyArchive(t)
	segs := a.segments(vtl1, "mysql-bin.000002")
	// A wrong log_pos, with the CRC32 made to match.
	a.rewriteSegment(segs[1].Key, func(plain []byte) {
		binary.LittleEndian.PutUint32(plain[13:], 7)
		ev := plain[:binary.LittleEndian.Uint32(plain[9:])]
		binary.LittleEndian.PutUint32(ev[len(ev)-4:], crc32.ChecksumIEEE(ev[:len(ev)-4]))
	})
	// An event size that runs past the segment: boundaries are lost until
	// the next segment, which is checked again.
	a.rewriteSegment(segs[2].Key, func(plain []byte) { binary.LittleEndian.PutUint32(plain[9:], 1<<30) })
	// The first segment of the next file without the magic.
	first := a.segments(vtl1, "mysql-bin.000003")[0]
	a.rewriteSegment(first.Key, func(plain []byte) { plain[1] = 'x' })
	rep := a.verify(VerifyOptions{})
	expect(t, rep, SeverityProblem, "key="+segs[1].Key, fmt.Sprintf("offset=%d", segs[1].Start), "log_pos 7")
	expect(t, rep, SeverityProblem, "key="+segs[2].Key, "does not fit in the segment")
	expect(t, rep, SeverityProblem, "key="+first.Key, "offset=0", "magic")
	if rep.Counts.Events < a.events-30 {
		t.Fatalf("walking did not resume after the broken segments: %d events of %d", rep.Counts.Events, a.events)
	}
}

func TestVerifyMissingSegment(t *testing.T) {
	a := newVerifyArchive(t)
	s := a.segments(vtl1, "mysql-bin.000002")[1]
	a.del(s.Key)
	rep := a.verify(VerifyOptions{})
	expect(t, rep, SeverityProblem, "binlog=mysql-bin.000002", fmt.Sprintf("offset=%d", s.Start), "key="+s.Key, "in the file's index but not stored")
}

func TestVerifyHoleInLiveFile(t *testing.T) {
	a := newVerifyArchive(t)
	s := a.segments(vtl1, "mysql-bin.000003")[1]
	keep := a.get(s.Key)
	a.del(s.Key)
	rep := a.verify(VerifyOptions{})
	expect(t, rep, SeverityProblem, "binlog=mysql-bin.000003", fmt.Sprintf("offset=%d", s.Start), "are not stored", "a hole")

	// An upload still in flight: the segment arrives while Verify waits
	// for the listing to settle.
	go func() {
		time.Sleep(100 * time.Millisecond)
		a.put(s.Key, keep)
	}()
	rep = a.verify(VerifyOptions{Settle: time.Second})
	if !rep.OK() {
		t.Fatalf("a hole filled while settling is still reported:\n%s", findings(rep))
	}
}

func TestVerifyMissingFile(t *testing.T) {
	a := newVerifyArchive(t)
	for _, s := range a.segments(vtl1, "mysql-bin.000002") {
		a.del(s.Key)
	}
	a.del(a.layout.IndexKey(vtl1, "mysql-bin.000002"))
	rep := a.verify(VerifyOptions{})
	expect(t, rep, SeverityProblem, "binlog=mysql-bin.000002", "is missing", "the next file stored is mysql-bin.000003")
}

func TestVerifyIndexAfterIncompleteFile(t *testing.T) {
	a := newVerifyArchive(t)
	a.del(a.layout.IndexKey(vtl1, "mysql-bin.000001"))
	segs := a.segments(vtl1, "mysql-bin.000001")
	a.del(segs[len(segs)-1].Key)
	rep := a.verify(VerifyOptions{})
	expect(t, rep, SeverityProblem, "binlog=mysql-bin.000002", "an earlier file (mysql-bin.000001) is incomplete")
}

func TestVerifyCompleteFileWithoutIndex(t *testing.T) {
	a := newVerifyArchive(t)
	a.del(a.layout.IndexKey(vtl1, "mysql-bin.000002"))
	rep := a.verify(VerifyOptions{})
	if !rep.OK() {
		t.Fatalf("a complete file not indexed yet is no problem:\n%s", findings(rep))
	}
	expect(t, rep, SeverityNote, "binlog=mysql-bin.000002", "no index yet")
}

func TestVerifyIndexAgainstStore(t *testing.T) {
	a := newVerifyArchive(t)
	key := a.layout.IndexKey(vtl1, "mysql-bin.000001")
	var ix archive.FileIndex
	must(t, json.Unmarshal(a.get(key), &ix))
	ix.Segments[0].StoredSize++
	ix.Segments[1].Events++
	ix.Closed = false
	ix.Next = "mysql-bin.000009"
	a.put(key, marshalJSON(&ix))
	rep := a.verify(VerifyOptions{})
	segs := a.segments(vtl1, "mysql-bin.000001")
	expect(t, rep, SeverityProblem, "key="+segs[0].Key, "the index says")
	expect(t, rep, SeverityProblem, "key="+segs[1].Key, fmt.Sprintf("holds %d events", ix.Segments[1].Events))
	expect(t, rep, SeverityProblem, "key="+key, "closed=false")
	expect(t, rep, SeverityProblem, "key="+key, "ROTATE names mysql-bin.000002")
	expect(t, rep, SeverityProblem, "binlog=mysql-bin.000009", "is missing")
	// A segment that is not in the index is only a note.
	a2 := newVerifyArchive(t)
	a2.put(a2.layout.SegmentKey(vtl1, "mysql-bin.000001", 1, 2), a2.get(a2.segments(vtl1, "mysql-bin.000001")[0].Key))
	rep = a2.verify(VerifyOptions{})
	if !rep.OK() {
		t.Fatalf("an extra segment is no problem:\n%s", findings(rep))
	}
	expect(t, rep, SeverityNote, "not in the file's index")
}

func TestVerifyLayoutAndStrays(t *testing.T) {
	a := newVerifyArchive(t)
	for _, k := range []string{"c/notes.txt", "c/binlog/scratch/x", "c/binlog/" + vtl1 + "/README", "c/binlog/" + vtl1 + "/mysql-bin.000001/tmp.part", "c/snapshot/junk"} {
		a.put(k, []byte("x"))
	}
	rep := a.verify(VerifyOptions{})
	if !rep.OK() || rep.Notes != 5 {
		t.Fatalf("strays are notes, not problems: %d problems, %d notes:\n%s", rep.Problems, rep.Notes, findings(rep))
	}
	expect(t, rep, SeverityNote, "key=c/binlog/scratch/", "stray folder")
	expect(t, rep, SeverityNote, "key=c/binlog/"+vtl1+"/mysql-bin.000001/tmp.part", "stray object")

	a.put(a.layout.LayoutKey(), []byte(fmt.Sprintf(`{"version": %d}`, archive.LayoutVersion+1)))
	expect(t, a.verify(VerifyOptions{}), SeverityProblem, "key=c/layout.json", "upgrade binarc")
	a.del(a.layout.LayoutKey())
	expect(t, a.verify(VerifyOptions{}), SeverityProblem, "key=c/layout.json", "missing")

	if _, err := Verify(context.Background(), archive.Catalog{Store: a.mem, Layout: archive.Layout{Cluster: "other"}}, VerifyOptions{}); err == nil || !strings.Contains(err.Error(), "no archive") {
		t.Fatalf("verify of a cluster that is not there: %v", err)
	}
}

func TestVerifyTimelines(t *testing.T) {
	a := newVerifyArchive(t)
	segs := a.segments(vtl1, "mysql-bin.000003")
	end := segs[len(segs)-1].End
	// The next timeline records where this one ended: the end of the live
	// file, so nothing is missing.
	a.timeline(vtl2, "mysql-bin.000005", &archive.TimelineEnd{Timeline: vtl1, File: "mysql-bin.000003", Offset: end})
	a.stream(vtl2, 5, 6, true)
	rep := a.verify(VerifyOptions{})
	if !rep.OK() || rep.Counts.Timelines != 2 || rep.Counts.Files != 5 {
		t.Fatalf("two timelines: %+v\n%s", rep.Counts, findings(rep))
	}

	// The old timeline lost its tail: the last segment of its last file.
	keep := a.get(segs[len(segs)-1].Key)
	a.del(segs[len(segs)-1].Key)
	expect(t, a.verify(VerifyOptions{}), SeverityProblem, "timeline="+vtl1, "binlog=mysql-bin.000003", fmt.Sprintf("offset=%d", end), "ended at mysql-bin.000003")
	a.put(segs[len(segs)-1].Key, keep)

	// A middle segment of it: what is after the hole is a leftover note,
	// and the timeline still does not reach its recorded end.
	keep1 := a.get(segs[1].Key)
	a.del(segs[1].Key)
	rep = a.verify(VerifyOptions{})
	expect(t, rep, SeverityNote, "timeline="+vtl1, "leftovers")
	expect(t, rep, SeverityProblem, "timeline="+vtl1, "ended at mysql-bin.000003")

	// Pruned: the old timeline's oldest file half way (its data gone, its
	// index left: a problem, with the hint), then every file of it (a note).
	a.put(segs[1].Key, keep1)
	old := a.segments(vtl1, "mysql-bin.000001")
	for _, s := range old {
		a.del(s.Key)
	}
	expect(t, a.verify(VerifyOptions{}), SeverityProblem, "binlog=mysql-bin.000001", "not stored (the timeline's oldest file: if a prune stopped half way")
	for n := 1; n <= 3; n++ {
		refs, err := a.cat.Segments(context.Background(), vtl1, binlogName(n))
		must(t, err)
		for _, s := range refs {
			a.del(s.Key)
		}
		a.del(a.layout.IndexKey(vtl1, binlogName(n)))
	}
	rep = a.verify(VerifyOptions{})
	if !rep.OK() {
		t.Fatalf("a pruned timeline is no problem:\n%s", findings(rep))
	}
	expect(t, rep, SeverityNote, "timeline="+vtl1, "holds no binlog file")

	// A later timeline without previous.
	a2 := newVerifyArchive(t)
	a2.timeline(vtl2, "mysql-bin.000005", nil)
	expect(t, a2.verify(VerifyOptions{}), SeverityProblem, "timeline="+vtl2, "has no previous")
}

func TestVerifySnapshots(t *testing.T) {
	a := newVerifyArchive(t)
	good, bad, running := "20261125T010000Z-physical", "20261125T020000Z-logical", "20261125T030000Z-physical"
	a.put(a.layout.SnapshotDataKey(good, archive.SnapshotDataPhysical), []byte("data"))
	a.put(a.layout.SnapshotManifestKey(good), []byte("{}"))
	a.put(a.layout.SnapshotDataKey(bad, archive.SnapshotDataLogical), []byte("data"))
	a.put(a.layout.SnapshotManifestKey(bad), []byte("{}"))
	a.put(a.layout.SnapshotDataKey(running, archive.SnapshotDataPhysical), []byte("data"))
	a.put(a.layout.SnapshotPrefix(good)+"extra.bin", []byte("?"))
	var checked []string
	rep, err := verifyWith(context.Background(), a.cat, VerifyOptions{}, func(_ context.Context, _ objstore.Store, _ archive.Layout, id string) error {
		checked = append(checked, id)
		if id == bad {
			return errors.New("data object c/snapshot/x/dump.sql.zst: object does not exist")
		}
		return nil
	})
	must(t, err)
	if strings.Join(checked, ",") != good+","+bad || rep.Counts.Snapshots != 2 {
		t.Fatalf("snapshots checked: %v (count %d); want the two complete ones", checked, rep.Counts.Snapshots)
	}
	expect(t, rep, SeverityProblem, "snapshot="+bad, "does not exist")
	expect(t, rep, SeverityNote, "snapshot="+running, "incomplete")
	expect(t, rep, SeverityNote, "extra.bin", "stray object")
	if rep.Problems != 1 {
		t.Fatalf("%d problems:\n%s", rep.Problems, findings(rep))
	}
}

// TestEventWalkerChunks feeds a file to the walker in random pieces, as a
// compacted object streams: the same events and no finding, and a broken
// size found at its offset, with the walk resuming at the next segment.
func TestEventWalkerChunks(t *testing.T) {
	a := newVerifyArchive(t)
	fs, err := a.cat.FileState(context.Background(), vtl1, archive.FileRef{Name: "mysql-bin.000001", Indexed: true})
	must(t, err)
	var file bytes.Buffer
	_, err = a.cat.Rebuild(context.Background(), fs, &file)
	must(t, err)
	rng := rand.New(rand.NewPCG(3, 4))
	feed := func(data []byte) (*eventWalker, []Finding) {
		var got []Finding
		w := newEventWalker(vtl1, "mysql-bin.000001", fs.Segments, nil, func(f Finding) { got = append(got, f) })
		for len(data) > 0 {
			n := min(len(data), 1+rng.IntN(3000))
			w.Write(data[:n])
			data = data[n:]
		}
		w.finish()
		return w, got
	}
	w, got := feed(file.Bytes())
	if len(got) != 0 || w.events != 12 || w.rotateTo != "mysql-bin.000002" || !w.tailKnown {
		t.Fatalf("clean file: %d events, rotate to %q, findings %v", w.events, w.rotateTo, got)
	}
	broken := bytes.Clone(file.Bytes())
	at := fs.Segments[0].End - 1000 // the first segment's last event
	binary.LittleEndian.PutUint32(broken[at+9:], 5)
	w, got = feed(broken)
	if len(got) != 1 || *got[0].Offset != at || !strings.Contains(got[0].Message, "header says 5 bytes") {
		t.Fatalf("broken size at %d: %v", at, got)
	}
	if w.events != 11 {
		t.Fatalf("walk did not resume at the next segment: %d events", w.events)
	}
}

func TestChecksumAware(t *testing.T) {
	for v, want := range map[string]bool{
		"10.11.6-MariaDB-log": true, "5.5.68-MariaDB": true, "5.3.0-MariaDB": true,
		"8.0.36": true, "5.6.1-log": true, "5.6.0": false, "5.5.62-log": false, "": false,
	} {
		if checksumAware(v) != want {
			t.Errorf("checksumAware(%q) = %v", v, !want)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func marshalJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

// putJSON stores v at key, once, as the archiver would.
func putJSON(t *testing.T, store objstore.Store, key string, v any) {
	t.Helper()
	_, err := store.Put(context.Background(), key, marshalJSON(v), objstore.PutOptions{IfAbsent: true})
	must(t, err)
}

func drain(t *testing.T, up *archive.Uploader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	must(t, up.Drain(ctx))
}

// TestVerifyJoin: a recorded join must read and name its own timeline and
// an earlier one.
func TestVerifyJoin(t *testing.T) {
	a := newVerifyArchive(t)
	key := a.layout.JoinKey(vtl1)
	a.put(key, []byte("not json"))
	expect(t, a.verify(VerifyOptions{}), SeverityProblem, "key="+key, "cannot read the join")
	a.put(key, []byte(`{"version": 1, "timeline": "`+vtl1+`", "previous": "`+vtl2+`"}`))
	expect(t, a.verify(VerifyOptions{}), SeverityProblem, "key="+key, "not an earlier timeline")
	a.put(key, []byte(`{"version": 1, "timeline": "`+vtl1+`", "previous": "000000-20261124T000000Z"}`))
	if rep := a.verify(VerifyOptions{}); !rep.OK() || rep.Notes != 0 {
		t.Fatalf("a join to a timeline retention deleted is fine, and join.json no stray:\n%s", findings(rep))
	}
}
