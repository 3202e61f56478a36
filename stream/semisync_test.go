package stream

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/archivetest"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
	"github.com/rs/zerolog"
)

type fakeAcker struct {
	mu   sync.Mutex
	acks []replication.Position
	fail bool
}

func (f *fakeAcker) Ack(p replication.Position) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("connection lost")
	}
	f.acks = append(f.acks, p)
	return nil
}

func pos(file string, off uint64) replication.Position {
	return replication.Position{File: file, Offset: off}
}

func TestAckTrackerAcksOnlyWhatIsDurable(t *testing.T) {
	var c semiSyncCounters
	var latencies int
	tr := newAckTracker(pos("mysql-bin.000001", 4), &c, func(time.Duration) { latencies++ }, zerolog.Nop())
	f := &fakeAcker{}
	tr.replica = f
	tr.request(pos("mysql-bin.000001", 100))
	tr.request(pos("mysql-bin.000001", 200))
	tr.request(pos("mysql-bin.000001", 300))
	tr.send()
	if len(f.acks) != 0 {
		t.Fatalf("acknowledged %v before anything was durable", f.acks)
	}
	if !tr.needSeal() {
		t.Fatal("requests not sealed, but needSeal is false")
	}
	tr.sealedTo(pos("mysql-bin.000001", 300))
	if tr.needSeal() {
		t.Fatal("every request is sealed, but needSeal is true")
	}
	// Durable in the middle of the third transaction: one acknowledgement
	// for the first two, at the second's end.
	tr.advance(pos("mysql-bin.000001", 250))
	tr.send()
	if len(f.acks) != 1 || f.acks[0] != pos("mysql-bin.000001", 200) || c.txns.Load() != 2 || latencies != 2 {
		t.Fatalf("acks %v, %d transactions, %d latencies; want one at 200 covering 2", f.acks, c.txns.Load(), latencies)
	}
	// A lost connection keeps the request until the next one.
	f.fail = true
	tr.advance(pos("mysql-bin.000002", 4)) // the next file: everything before is durable
	tr.send()
	f.fail = false
	tr.send()
	if len(f.acks) != 2 || f.acks[1] != pos("mysql-bin.000001", 300) || c.acks.Load() != 2 || c.txns.Load() != 3 {
		t.Fatalf("acks %v (counters %d/%d); want the third at 300 once the connection is back", f.acks, c.acks.Load(), c.txns.Load())
	}
	tr.send()
	if len(f.acks) != 2 {
		t.Fatalf("acknowledged again with nothing new: %v", f.acks)
	}
}

func TestSpoolIsCrashSafe(t *testing.T) {
	dir := t.TempDir()
	sp, err := openSpool(dir, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	segs := []*archive.Segment{
		{Timeline: "tl", File: "mysql-bin.000009", Start: 0, End: 100, Data: objstore.Chunks{[]byte("a")}},
		{Timeline: "tl", File: "mysql-bin.000009", Start: 100, End: 250, Data: objstore.Chunks{[]byte("b")}},
		{Timeline: "tl", File: "mysql-bin.000010", Start: 0, End: 40, Data: objstore.Chunks{[]byte("c")}},
	}
	for _, s := range segs {
		if err := sp.write(s); err != nil {
			t.Fatal(err)
		}
	}
	// A write the crash interrupted: never renamed, never acknowledged.
	torn := filepath.Join(dir, "tl", "mysql-bin.000010", archive.FormatSegmentName(40, 90)+spoolTempSuffix)
	if err := os.WriteFile(torn, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := openSpool(dir, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if len(again.files) != 3 || again.files[0].end != 100 || again.files[2].file != "mysql-bin.000010" {
		t.Fatalf("reopened spool lists %+v", again.files)
	}
	if _, err := os.Stat(torn); !os.IsNotExist(err) {
		t.Fatalf("the torn temporary file is still there: %v", err)
	}
	again.stored(Durable{Timeline: "tl", Position: pos("mysql-bin.000009", 250)})
	if len(again.files) != 1 || again.files[0].file != "mysql-bin.000010" {
		t.Fatalf("after the store took file 9, the spool lists %+v", again.files)
	}
	if _, err := openSpool(dir, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tl", "mysql-bin.000009")); !os.IsNotExist(err) {
		t.Fatalf("the emptied directory of file 9 is still there after a reopen: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "stray"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openSpool(dir, zerolog.Nop()); err == nil {
		t.Fatal("a spool directory with a stray file opened without an error")
	}
}

// TestSpoolReplayChecksEvents: before a spooled segment goes into the
// archive its events are checked as verify checks them in the store:
// whole events, each ending where its log_pos says, each CRC32 valid when
// the file has checksums. A spool changed on disk (one byte of an event,
// the zstd frame re-made so it still decodes) is refused, naming where.
func TestSpoolReplayChecksEvents(t *testing.T) {
	b := binlogtest.New("mysql-bin.000003")
	var file []byte
	file = append(file, replication.Magic...)
	fde := b.Next(gomysql.FORMAT_DESCRIPTION_EVENT, 100)
	file = append(file, fde.Raw...)
	segStart := uint64(len(file))
	for range 3 {
		file = append(file, b.NextBody(gomysql.QUERY_EVENT, binlogtest.QueryBody("INSERT INTO t VALUES (1)")).Raw...)
	}
	if got := firstEvent(file); !bytes.Equal(got, fde.Raw) {
		t.Fatalf("firstEvent: %x, want the format description", got)
	}
	seg := file[segStart:]
	if err := checkSpooledEvents(seg, segStart, true); err != nil {
		t.Fatalf("a sound segment: %v", err)
	}
	if err := checkSpooledEvents(file, 0, true); err != nil {
		t.Fatalf("a sound segment from offset 0: %v", err)
	}
	flipped := bytes.Clone(seg)
	flipped[len(flipped)-10] ^= 1
	if err := checkSpooledEvents(flipped, segStart, true); err == nil || !strings.Contains(err.Error(), "CRC32 mismatch") {
		t.Errorf("a changed byte: %v, want a CRC32 mismatch", err)
	}
	if err := checkSpooledEvents(flipped, segStart, false); err != nil {
		t.Errorf("a file without checksums cannot tell a changed byte: %v", err)
	}
	if err := checkSpooledEvents(seg, segStart+1, true); err == nil || !strings.Contains(err.Error(), "log_pos") {
		t.Errorf("a segment out of place: %v, want a log_pos mismatch", err)
	}
	if err := checkSpooledEvents(seg[:len(seg)-3], segStart, true); err == nil {
		t.Error("a truncated event accepted")
	}
}

// TestSpoolReplayFileStartInTheStore: a binarc killed after a file's
// first segment was stored but before its spool copy was deleted leaves
// that copy beside later, unstored segments. The replay deletes the copy
// (the store has it), then needs the file's format description for the
// next segment: it must take it from the store, not fail on the copy it
// has just deleted (TestSemiSyncLocalSpoolArchiverKilled failed so in
// `make test`, once in ten rounds).
func TestSpoolReplayFileStartInTheStore(t *testing.T) {
	b := binlogtest.New("mysql-bin.000003")
	first := append(bytes.Clone(replication.Magic), b.Next(gomysql.FORMAT_DESCRIPTION_EVENT, 100).Raw...)
	store := objstore.NewMemory()
	cat := archive.Catalog{Store: store, Layout: archive.Layout{Cluster: "c"}}
	tl := "000001-20261207T095537Z"
	if err := archivetest.PutTimeline(t.Context(), cat, archive.TimelineInfo{Timeline: tl, StartFile: "mysql-bin.000003"},
		map[string][]byte{"mysql-bin.000003": first}, []string{"mysql-bin.000003"}); err != nil {
		t.Fatal(err)
	}
	a := &Archiver{cat: cat, log: zerolog.Nop(), cfg: ArchiverConfig{MaxBackoff: time.Second}}
	dir := t.TempDir()
	files := []spoolFile{
		{timeline: tl, file: "mysql-bin.000003", start: 0, end: uint64(len(first)), path: filepath.Join(dir, "deleted.zst")},
		{timeline: tl, file: "mysql-bin.000003", start: uint64(len(first)), end: uint64(len(first)) + 50, path: filepath.Join(dir, "next.zst")},
	}
	sums, err := a.fileChecksums(t.Context(), tl, "mysql-bin.000003", files)
	if err != nil || !sums {
		t.Fatalf("fileChecksums with the file's start deleted from the spool: %v, %v; want the store's format description (with checksums)", sums, err)
	}
}
