package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/stream"
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
	putJSON(t, a.mem, a.layout.LayoutKey(), archive.LayoutInfo{Version: archive.LayoutVersionPlain})
	a.timeline(vtl1, "mysql-bin.000001", nil)
	a.stream(vtl1, 1, 3, true)
	return a
}

func (a *verifyArchive) timeline(tl, start string, prev *archive.TimelineEnd) {
	a.t.Helper()
	ti := &archive.TimelineInfo{Version: archive.LayoutVersionPlain, Timeline: tl, StartFile: start, SourceServerID: 1, Reason: "new archive", Previous: prev}
	putJSON(a.t, a.mem, a.layout.TimelineKey(tl), ti)
}

// stream archives files first..last of timeline tl; the last one stays
// live when live is set, else it ends with a ROTATE too.
func (a *verifyArchive) stream(tl string, first, last int, live bool) {
	a.t.Helper()
	up, err := stream.NewUploader(stream.UploaderConfig{Concurrency: 3, MaxBufferedBytes: 1 << 20}, a.mem, a.layout, stream.Durable{Timeline: tl}, zerolog.Nop(), nil)
	must(a.t, err)
	defer up.Close()
	seg := stream.NewSegmenter(stream.SegmenterConfig{FlushInterval: time.Hour, SegmentSize: 4096}, tl, replication.Position{File: binlogName(first)}, up)
	for n := first; n <= last; n++ {
		b := binlogtest.New(binlogName(n))
		must(a.t, seg.Add(binlogtest.FillFormatDescription(b.Next(gomysql.FORMAT_DESCRIPTION_EVENT, 120), 1)))
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
	plain, err := archive.DecodeSegment(a.get(key), archive.MaxSegmentSize)
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

func drain(t *testing.T, up *stream.Uploader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	must(t, up.Drain(ctx))
}
