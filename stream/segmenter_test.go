package stream

import (
	"bytes"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

func newTestSegmenter(sink Sink, interval time.Duration, size int) (*Segmenter, *time.Time) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := NewSegmenter(SegmenterConfig{FlushInterval: interval, SegmentSize: size}, "tl", replication.Position{File: "mysql-bin.000001"}, sink)
	s.now = func() time.Time { return now }
	return s, &now
}

func TestSegmenterFirstSegmentHasMagic(t *testing.T) {
	sink := &collectSink{}
	s, _ := newTestSegmenter(sink, time.Second, 1<<20)
	b := binlogtest.New("mysql-bin.000001")
	fde := b.Next(gomysql.FORMAT_DESCRIPTION_EVENT, 120)
	if err := s.Add(fde); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	seg := sink.segs[0]
	data := plain(t, seg)
	if seg.Start != 0 || seg.End != fde.End || !bytes.Equal(data[:4], replication.Magic) || !bytes.Equal(data[4:], fde.Raw) {
		t.Fatalf("first segment [%d,%d) %x…", seg.Start, seg.End, data[:8])
	}
}

func TestSegmenterCutsOnInterval(t *testing.T) {
	sink := &collectSink{}
	s, now := newTestSegmenter(sink, time.Second, 1<<20)
	b := binlogtest.New("mysql-bin.000001")
	must(t, s.Add(b.Next(gomysql.FORMAT_DESCRIPTION_EVENT, 120)))
	*now = now.Add(999 * time.Millisecond)
	must(t, s.Add(b.Next(gomysql.QUERY_EVENT, 100)))
	must(t, s.Tick())
	if len(sink.segs) != 0 {
		t.Fatal("sealed before the interval passed since the first event")
	}
	*now = now.Add(time.Millisecond)
	must(t, s.Tick())
	if len(sink.segs) != 1 || sink.segs[0].Events != 2 {
		t.Fatalf("want one segment of 2 events at the interval, got %d", len(sink.segs))
	}
	// An idle stream seals nothing: no empty segments, no PUTs.
	*now = now.Add(time.Hour)
	must(t, s.Tick())
	if len(sink.segs) != 1 {
		t.Fatal("sealed an empty segment")
	}
	// The interval counts from the first event of the new segment.
	must(t, s.Add(b.Next(gomysql.QUERY_EVENT, 100)))
	*now = now.Add(500 * time.Millisecond)
	must(t, s.Tick())
	if len(sink.segs) != 1 {
		t.Fatal("interval counted from the previous segment")
	}
}

func TestSegmenterCutsOnSize(t *testing.T) {
	sink := &collectSink{}
	s, _ := newTestSegmenter(sink, time.Hour, 4096)
	b := binlogtest.New("mysql-bin.000001")
	must(t, s.Add(b.Next(gomysql.FORMAT_DESCRIPTION_EVENT, 120)))
	for i := 0; i < 100; i++ {
		must(t, s.Add(b.Next(gomysql.WRITE_ROWS_EVENTv1, 1000)))
	}
	// One event larger than the limit makes a segment of its own.
	big := b.Next(gomysql.WRITE_ROWS_EVENTv1, 20000)
	must(t, s.Add(big))
	must(t, s.Flush())
	var off uint64
	for i, seg := range sink.segs {
		if seg.Start != off {
			t.Fatalf("segment %d starts at %d, want %d", i, seg.Start, off)
		}
		data := plain(t, seg)
		if uint64(len(data)) != seg.End-seg.Start {
			t.Fatalf("segment %d holds %d bytes for [%d,%d)", i, len(data), seg.Start, seg.End)
		}
		if i < len(sink.segs)-2 && len(data)+1000 <= 4096 {
			t.Fatalf("segment %d sealed at %d bytes, with room for another event", i, len(data))
		}
		if len(data) > 4096 && seg.Events > 1 {
			t.Fatalf("segment %d of %d events crossed the limit: %d bytes", i, seg.Events, len(data))
		}
		off = seg.End
	}
	if last := sink.segs[len(sink.segs)-1]; last.Start != big.Start || last.End != big.End {
		t.Fatalf("the big event did not get a segment of its own: [%d,%d)", last.Start, last.End)
	}
}

func TestSegmenterCutsAtRotation(t *testing.T) {
	sink := &collectSink{}
	s, _ := newTestSegmenter(sink, time.Hour, 1<<20)
	b := binlogtest.New("mysql-bin.000001")
	must(t, s.Add(b.Next(gomysql.FORMAT_DESCRIPTION_EVENT, 120)))
	must(t, s.Add(b.Next(gomysql.ROTATE_EVENT, binlogtest.RotateSize)))
	must(t, s.FileDone("mysql-bin.000001", "mysql-bin.000002"))
	if len(sink.segs) != 1 || len(sink.ends) != 1 || sink.ends[0].Next != "mysql-bin.000002" {
		t.Fatalf("segments %d, file ends %+v", len(sink.segs), sink.ends)
	}
	if sink.segs[0].LastType != gomysql.ROTATE_EVENT {
		t.Fatal("last event type not recorded")
	}
	b2 := binlogtest.New("mysql-bin.000002")
	must(t, s.Add(b2.Next(gomysql.FORMAT_DESCRIPTION_EVENT, 120)))
	must(t, s.Flush())
	if got := sink.segs[1]; got.File != "mysql-bin.000002" || got.Start != 0 {
		t.Fatalf("next file's first segment: %s [%d,%d)", got.File, got.Start, got.End)
	}
}

func TestSegmenterRefusesGapsAndRepeats(t *testing.T) {
	sink := &collectSink{}
	s, _ := newTestSegmenter(sink, time.Hour, 1<<20)
	b := binlogtest.New("mysql-bin.000001")
	first := b.Next(gomysql.FORMAT_DESCRIPTION_EVENT, 120)
	must(t, s.Add(first))
	if err := s.Add(first); err == nil {
		t.Fatal("accepted the same event twice")
	}
	b.Next(gomysql.QUERY_EVENT, 50) // skipped
	if err := s.Add(b.Next(gomysql.QUERY_EVENT, 50)); err == nil {
		t.Fatal("accepted an event after a gap")
	}
	other := binlogtest.New("mysql-bin.000009").Next(gomysql.QUERY_EVENT, 50)
	if err := s.Add(other); err == nil {
		t.Fatal("accepted an event of another file without a file end")
	}
}

// plain decompresses a sealed segment, checking zstd's content checksum.
func plain(t *testing.T, s *archive.Segment) []byte {
	t.Helper()
	data, err := archive.DecodeSegment(s.Data.Bytes(), s.End-s.Start)
	if err != nil {
		t.Fatalf("segment [%d,%d) does not decompress: %v", s.Start, s.End, err)
	}
	return data
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
