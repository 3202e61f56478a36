package verify

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/replication"
	"github.com/klauspost/compress/zstd"
)

func TestVerifyClean(t *testing.T) {
	a := newVerifyArchive(t)
	var reported int
	rep := a.verify(VerifyOptions{Report: func(Finding) { reported++ }})
	if !rep.OK() || rep.Notes != 0 || reported != 0 {
		t.Fatalf("a clean archive: %d problems, %d notes:\n%s", rep.Problems, rep.Notes, findings(rep))
	}
	c := rep.Counts
	if c.Timelines != 1 || c.Files != 3 || c.Segments < 9 || c.Events != a.events || c.StoredBytes == 0 || c.BinlogBytes < 30000 || rep.LayoutVersion != archive.LayoutVersionPlain {
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
	plain, err := archive.DecodeSegment(a.get(key), archive.MaxSegmentSize)
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

	// A compacted object listed while it is written (some stores list a
	// partial object), every segment still stored: a note, and the
	// segments are checked instead.
	a3 := newVerifyArchive(t)
	a3.put(a3.layout.CompactedKey(vtl1, "mysql-bin.000001"), nil)
	rep = a3.verify(VerifyOptions{})
	if !rep.OK() || rep.Counts.Events != a3.events {
		t.Fatalf("a compaction in progress is not a problem: %+v\n%s", rep.Counts, findings(rep))
	}
	expect(t, rep, SeverityNote, "compaction in progress")
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

// TestVerifyListsACompactionMidWrite: the timeline is listed while a
// compaction is writing the compacted object (versitygw lists it with 0
// bytes), and the compaction finishes and deletes the segments before the
// file's folder is listed. Nothing is lost: verify reads the object again
// and checks it whole (CI saw "the compacted object has 0 bytes" here).
func TestVerifyListsACompactionMidWrite(t *testing.T) {
	a := newVerifyArchive(t)
	ctx := context.Background()
	file := "mysql-bin.000001"
	a.put(a.layout.CompactedKey(vtl1, file), nil)
	faulty := objstore.NewFaulty(a.mem)
	var once sync.Once
	faulty.SetHook(func(op, key string) error {
		if op == objstore.OpList && key == a.layout.FilePrefix(vtl1, file) {
			once.Do(func() {
				must(t, a.mem.Delete(ctx, a.layout.CompactedKey(vtl1, file)))
				_, err := a.cat.Compact(ctx, vtl1, file)
				must(t, err)
			})
		}
		return nil
	})
	rep, err := Verify(ctx, archive.Catalog{Store: faulty, Layout: a.layout}, VerifyOptions{Concurrency: 1})
	must(t, err)
	if !rep.OK() || rep.Counts.Compacted != 1 || rep.Counts.Events != a.events {
		t.Fatalf("a compaction finishing while verify lists it: %+v\n%s", rep.Counts, findings(rep))
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

// TestFindingStringEscapes: a finding printed as text shows the control
// characters of a key or name from the bucket as \xNN, never raw (a key
// holding a terminal escape sequence could rewrite the screen).
func TestFindingStringEscapes(t *testing.T) {
	f := Finding{Timeline: "tl", Key: "c/binlog/x\x1b[2J\x1b[31mfake OK\r", Message: "stray object\x07"}
	got := f.String()
	if strings.ContainsAny(got, "\x1b\r\x07") {
		t.Fatalf("raw control characters printed: %q", got)
	}
	if !strings.Contains(got, `x\x1b[2J\x1b[31mfake OK\x0d`) || !strings.Contains(got, `stray object\x07`) {
		t.Fatalf("escaped finding %q lacks the escaped key or message", got)
	}
	if got := (Finding{Message: "only\x1b"}).String(); got != `only\x1b` {
		t.Fatalf("a finding without coordinates: %q", got)
	}
}
