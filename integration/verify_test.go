package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/integration/testenv"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/verify"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
	"github.com/klauspost/compress/zstd"
)

// TestVerifyArchive archives a real load with several rotations and takes
// a physical snapshot, then runs binarc verify on the whole archive: clean,
// it exits 0 with what it read; after each damage (a flipped byte in a
// stored segment, a changed event in a segment recompressed so that only
// the event's CRC32 can tell, a missing segment, a truncated and a missing
// snapshot data object, a flipped byte in a compacted file) it exits 1 and
// names the damage with its coordinates. Beside a running archiver that
// rotates and compacts files, it finds nothing wrong.
func TestVerifyArchive(t *testing.T) {
	t.Parallel()
	e := newSnapEnv(t)
	ctx := context.Background()
	// Segments stay segments until the compaction part at the end.
	p := e.start(e.streamArgs("--no-compact")...)
	p.waitLog(t, "streaming from the primary", time.Minute)
	// Statements apart in time make a complete file of several segments.
	for i := range 4 {
		e.primary.Exec(t, fmt.Sprintf("CREATE DATABASE verify_%d", i))
		time.Sleep(400 * time.Millisecond)
	}
	e.primary.Exec(t, "FLUSH BINARY LOGS")
	if err := writeLoad(ctx, e.primary, loadOptions{From: 0, To: 300, FlushAt: 60}); err != nil {
		t.Fatal(err)
	}
	// Small transactions apart in time: several segments in the live file.
	for i := range 4 {
		e.primary.Exec(t, fmt.Sprintf("INSERT INTO app.accounts VALUES (%d, 'late', 0, 'x')", 100000+i))
		time.Sleep(400 * time.Millisecond)
	}
	e.caughtUpSnapshot(t, "snapshot", physUser)
	snap := e.newest()
	e.waitArchived(2 * time.Minute)
	p.stop(t)

	rep := e.verifyJSON(0)
	c := rep.Counts
	if c.Timelines != 1 || c.Files < 5 || c.Segments < c.Files || c.Events == 0 || c.StoredBytes == 0 || c.BinlogBytes == 0 || c.Snapshots != 1 || c.SnapshotBytes == 0 {
		t.Fatalf("clean archive: counts %+v; want 1 timeline, at least 5 files, 1 snapshot", c)
	}
	out, code := e.verify()
	if code != 0 || !strings.Contains(out, "result: 0 problems") || !strings.Contains(out, "the archive is sound") {
		t.Fatalf("verify of a clean archive exited %d:\n%s", code, out)
	}
	t.Logf("clean:\n%s", out)

	store := e.objStore()
	tl, file, segs := e.indexedSegments()
	seg := segs[len(segs)/2]

	// A flipped byte in the stored (compressed) bytes: zstd's checks.
	orig := e.get(seg.Key)
	b := append([]byte(nil), orig...)
	b[len(b)/2] ^= 0x01
	e.put(seg.Key, b)
	out, code = e.verify()
	expectVerifyFailure(t, out, code, "PROBLEM", "timeline="+tl, "binlog="+file, fmt.Sprintf("offset=%d", seg.Start), "key="+seg.Key, "corrupt", "NOT sound")
	e.put(seg.Key, orig)

	// One changed byte in an event, the segment recompressed: its zstd
	// checksums hold, the event's CRC32 does not.
	dec, err := zstd.NewReader(nil)
	noErr(t, err)
	defer dec.Close()
	plain, err := dec.DecodeAll(orig, nil)
	noErr(t, err)
	at := changeEventByte(t, plain, seg.Start)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	noErr(t, err)
	e.put(seg.Key, enc.EncodeAll(plain, nil))
	out, code = e.verify()
	expectVerifyFailure(t, out, code, "PROBLEM", "binlog="+file, fmt.Sprintf("offset=%d", at), "key="+seg.Key, "CRC32 mismatch")
	e.put(seg.Key, orig)

	// A missing segment of a complete file.
	noErr(t, store.Delete(ctx, seg.Key))
	out, code = e.verify()
	expectVerifyFailure(t, out, code, "PROBLEM", "binlog="+file, fmt.Sprintf("offset=%d", seg.Start), "key="+seg.Key, "not stored")
	e.put(seg.Key, orig)

	// The snapshot's data object, truncated, then gone.
	data := e.get(snap.DataKey)
	e.put(snap.DataKey, data[:len(data)/2])
	out, code = e.verify()
	expectVerifyFailure(t, out, code, "PROBLEM", "snapshot="+snap.ID, "stored size", "sha256")
	noErr(t, store.Delete(ctx, snap.DataKey))
	out, code = e.verify()
	expectVerifyFailure(t, out, code, "PROBLEM", "snapshot="+snap.ID, "data object", snap.DataKey)
	e.put(snap.DataKey, data)

	if out, code := e.verify(); code != 0 {
		t.Fatalf("every object put back, verify exited %d:\n%s", code, out)
	}

	// Beside a running archiver that rotates, indexes and compacts files
	// while the primary writes, verify sees a sound archive.
	p = e.start(e.streamArgs()...)
	loaded := make(chan error, 1)
	go func() { loaded <- writeLoad(ctx, e.primary, loadOptions{From: 1000, To: 1400, FlushAt: 25}) }()
	for range 3 {
		if out, code := e.verify(); code != 0 {
			t.Fatalf("verify beside a running archiver exited %d:\n%s", code, out)
		}
	}
	noErr(t, <-loaded)

	// Compacted: the archiver compacts the complete files once caught up.
	e.waitArchived(time.Minute)
	e.waitCompacted(time.Minute)
	p.stop(t)
	if rep := e.verifyJSON(0); rep.Counts.Compacted < 5 || rep.Counts.Events < c.Events {
		t.Fatalf("compacted archive: counts %+v; want at least the %d events from before, from at least 5 compacted files", rep.Counts, c.Events)
	}
	key := e.catalog().Layout.CompactedKey(tl, file)
	b = e.get(key)
	b[len(b)/3] ^= 0x01
	e.put(key, b)
	out, code = e.verify()
	expectVerifyFailure(t, out, code, "PROBLEM", "binlog="+file, "key="+key, "corrupt")
}

// expectVerifyFailure checks binarc verify exited 1 (a problem found, not
// a usage error) and named everything in want.
func expectVerifyFailure(t *testing.T, out string, code int, want ...string) {
	t.Helper()
	if code != 1 {
		t.Errorf("verify exited %d; want 1", code)
	}
	expectFailure(t, out, code, want...)
}

// verify runs binarc verify on the whole archive.
func (e *snapEnv) verify() (string, int) {
	e.t.Helper()
	return e.run("verify", "--store", e.store, "--cluster", e.cluster)
}

// verifyJSON runs binarc verify --json and checks its exit status.
func (e *snapEnv) verifyJSON(wantCode int) *verify.VerifyReport {
	e.t.Helper()
	out, code := e.run("verify", "--store", e.store, "--cluster", e.cluster, "--json", "--log-level", "error")
	var rep verify.VerifyReport
	if err := json.Unmarshal([]byte(out[:strings.LastIndexByte(out, '}')+1]), &rep); err != nil || code != wantCode {
		e.t.Fatalf("verify --json exited %d (want %d): %v\n%s", code, wantCode, err, out)
	}
	return &rep
}

// indexedSegments returns a complete file of the newest timeline with at
// least two segments, and its segments.
func (e *snapEnv) indexedSegments() (tl, file string, segs []archive.SegmentRef) {
	e.t.Helper()
	ctx := context.Background()
	cat := e.catalog()
	tls, err := cat.Timelines(ctx)
	noErr(e.t, err)
	tl = tls[len(tls)-1]
	files, err := cat.Files(ctx, tl)
	noErr(e.t, err)
	for _, f := range files {
		if !f.Indexed {
			continue
		}
		segs, err = cat.Segments(ctx, tl, f.Name)
		noErr(e.t, err)
		if len(segs) >= 2 {
			return tl, f.Name, segs
		}
	}
	e.t.Fatalf("no complete file with two segments in timeline %s", tl)
	return
}

// changeEventByte changes one byte in the body of an event past the
// format description, in a segment starting at file offset start, and
// returns the event's offset.
func changeEventByte(t *testing.T, plain []byte, start uint64) uint64 {
	t.Helper()
	var at uint64
	err := replication.Events(plain, start, func(off uint64, h replication.Header, raw []byte) error {
		if at == 0 && h.Type != gomysql.FORMAT_DESCRIPTION_EVENT && len(raw) > replication.HeaderLen+8 {
			at = off
		}
		return nil
	})
	noErr(t, err)
	if at == 0 {
		t.Fatal("no event to change in the segment")
	}
	plain[at-start+replication.HeaderLen+2] ^= 0x20
	return at
}

func (e *snapEnv) get(key string) []byte {
	e.t.Helper()
	b, _, err := objstore.ReadAll(context.Background(), e.objStore(), key)
	noErr(e.t, err)
	return b
}

func (e *snapEnv) put(key string, b []byte) {
	e.t.Helper()
	_, err := e.objStore().Put(context.Background(), key, b, objstore.PutOptions{})
	noErr(e.t, err)
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestVerifyArchiveWithoutChecksums: with binlog_checksum=NONE the events
// carry no CRC32 (the format description still does, and says so): a
// clean archive is still clean, and binlog fetch rebuilds it.
func TestVerifyArchiveWithoutChecksums(t *testing.T) {
	t.Parallel()
	e := &snapEnv{env: newEnv(t, testenv.MariaDBOptions{MaxBinlogSize: 64 << 10, ExtraArgs: []string{"--binlog-checksum=NONE"}})}
	if got := e.primary.Query(t, "SELECT @@GLOBAL.binlog_checksum")[0][0]; got != "NONE" {
		t.Fatalf("binlog_checksum is %s", got)
	}
	p := e.start(e.streamArgs()...)
	if err := writeLoad(context.Background(), e.primary, loadOptions{From: 0, To: 200, FlushAt: 70}); err != nil {
		t.Fatal(err)
	}
	e.waitArchived(2 * time.Minute)
	p.stop(t)
	if rep := e.verifyJSON(0); rep.Counts.Files < 4 || rep.Counts.Events == 0 {
		t.Fatalf("counts %+v: want several files and their events", rep.Counts)
	}
	// binlog fetch checks every event as it writes (lengths and log_pos
	// here, no CRC32): the server's own files pass, byte for byte.
	e.compareWithPrimary()
}
