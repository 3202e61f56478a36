package stream

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
	"github.com/rs/zerolog"
)

func TestLossWindowRule(t *testing.T) {
	now := time.Date(2026, 11, 25, 3, 0, 10, 0, time.UTC)
	at := func(file string, off uint64) *replication.Position {
		return &replication.Position{File: file, Offset: off}
	}
	durable := Durable{Timeline: "tl", Position: replication.Position{File: "mysql-bin.000002", Offset: 1000}}
	for _, c := range []struct {
		name    string
		primary *replication.Position
		oldest  time.Time
		pending bool
		want    time.Duration
	}{
		{"idle, all durable", at("mysql-bin.000002", 1000), time.Time{}, false, 0},
		{"heartbeat behind the durable position", at("mysql-bin.000002", 900), time.Time{}, false, 0},
		{"durable position in a later file", at("mysql-bin.000001", 5000), time.Time{}, false, 0},
		{"behind, bytes pending", at("mysql-bin.000002", 1500), now.Add(-3 * time.Second), true, 3 * time.Second},
		{"behind across a rotation", at("mysql-bin.000003", 200), now.Add(-7 * time.Second), true, 7 * time.Second},
		{"numeric file order", at("mysql-bin.1000000", 4), now.Add(-time.Second), true, time.Second},
		{"nothing reported yet, bytes pending", nil, now.Add(-2 * time.Second), true, 2 * time.Second},
		{"nothing reported, nothing pending", nil, time.Time{}, false, 0},
		{"reported ahead, nothing to date it by", at("mysql-bin.000002", 2000), time.Time{}, false, 0},
		{"clock stepped back", at("mysql-bin.000002", 2000), now.Add(time.Second), true, 0},
	} {
		d := durable
		if c.name == "numeric file order" {
			d.Position = replication.Position{File: "mysql-bin.999999", Offset: 4000}
		}
		if got := lossWindow(now, c.primary, d, c.oldest, c.pending); got != c.want {
			t.Errorf("%s: loss window %s, want %s", c.name, got, c.want)
		}
	}
}

// lossRig is an Archiver with a segmenter on a fake clock and an uploader
// whose segment PUTs wait while the store is held.
type lossRig struct {
	a     *Archiver
	b     *binlogtest.Binlog
	mu    sync.Mutex
	clock time.Time
	held  chan struct{} // closed: PUTs go through
	once  sync.Once
}

func newLossRig(t *testing.T, maxBuffer int64) *lossRig {
	t.Helper()
	r := &lossRig{b: binlogtest.New("mysql-bin.000001"), clock: time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC), held: make(chan struct{})}
	store := objstore.NewFaulty(objstore.NewMemory())
	store.SetHook(func(op, key string) error {
		if op == objstore.OpPut && strings.HasSuffix(key, ".zst") {
			<-r.held
		}
		return nil
	})
	up, err := NewUploader(UploaderConfig{Concurrency: 2, MaxBufferedBytes: maxBuffer}, store, archive.Layout{Cluster: "c"}, Durable{Timeline: "tl"}, zerolog.Nop(), nil)
	must(t, err)
	t.Cleanup(func() { r.release(); up.Close() })
	seg := NewSegmenter(SegmenterConfig{FlushInterval: time.Hour, SegmentSize: 1 << 20}, "tl", replication.Position{File: "mysql-bin.000001"}, up)
	seg.now = r.now
	r.a = &Archiver{up: up, seg: seg}
	return r
}

func (r *lossRig) now() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.clock
}

func (r *lossRig) advance(d time.Duration) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clock = r.clock.Add(d)
	return r.clock
}

func (r *lossRig) release() { r.once.Do(func() { close(r.held) }) }

// event sends one event through the archiver's replication handler.
func (r *lossRig) event(t *testing.T, typ gomysql.EventType, size int) {
	t.Helper()
	must(t, (*handler)(r.a).Event(r.b.Next(typ, size)))
}

// TestLossWindowFollowsTheOldestUndurableByte runs events through the real
// segmenter and uploader: the window counts from the first byte not yet
// durable, whether it sits in the segment being filled or in an upload,
// and drops to 0 once everything the primary reported is stored.
func TestLossWindowFollowsTheOldestUndurableByte(t *testing.T) {
	r := newLossRig(t, 1<<20)
	a := r.a
	if got := a.LossWindow(r.now()); got != 0 {
		t.Fatalf("nothing received: loss window %s, want 0", got)
	}
	r.event(t, gomysql.FORMAT_DESCRIPTION_EVENT, 120)
	r.event(t, gomysql.QUERY_EVENT, 300)
	if got := a.LossWindow(r.advance(2 * time.Second)); got != 2*time.Second {
		t.Fatalf("segment being filled for 2s: loss window %s, want 2s", got)
	}
	// Sealed and uploading (the store holds it): still counted from the
	// first event.
	must(t, a.seg.Flush())
	r.advance(time.Second)
	r.event(t, gomysql.QUERY_EVENT, 300) // a newer segment starts at t0+3s
	if got := a.LossWindow(r.advance(time.Second)); got != 4*time.Second {
		t.Fatalf("first segment uploading, second filling: loss window %s, want 4s (from the older)", got)
	}
	if _, ok := a.up.OldestUnstored(); !ok {
		t.Fatal("the uploader holds no pending segment")
	}
	// Store back; the second segment is sealed and stored too.
	r.release()
	must(t, a.seg.Flush())
	drain(t, a.up)
	if got := a.LossWindow(r.advance(10 * time.Second)); got != 0 {
		t.Fatalf("everything durable: loss window %s, want 0 (durable %v, primary %v)", got, a.up.Durable().Position, a.primary.Load())
	}
	// An idle primary's heartbeat at the durable position keeps it at 0.
	(*handler)(a).Heartbeat(a.up.Durable().Position)
	if got := a.LossWindow(r.advance(time.Minute)); got != 0 {
		t.Fatalf("idle primary: loss window %s, want 0", got)
	}
}

// TestLossWindowDuringBackpressure fills the upload buffer while the store
// is down: the next event waits for buffer room, without the segmenter's
// lock (a flush still goes through), and LossWindow must still answer,
// counting from the segment the store holds.
func TestLossWindowDuringBackpressure(t *testing.T) {
	r := newLossRig(t, 1) // any second segment waits for the first
	a := r.a
	r.event(t, gomysql.FORMAT_DESCRIPTION_EVENT, 120)
	must(t, a.seg.Flush()) // first segment: uploading, held
	r.advance(time.Second)
	blocked := make(chan error, 1)
	go func() { blocked <- (*handler)(a).Event(r.b.Next(gomysql.QUERY_EVENT, 300)) }() // waits for buffer room
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-blocked:
		t.Fatalf("event added (%v) while the buffer was full", err)
	default:
	}
	flushed := make(chan error, 1)
	go func() { flushed <- a.seg.Flush() }()
	done := make(chan time.Duration, 1)
	go func() { done <- a.LossWindow(r.advance(5 * time.Second)) }()
	select {
	case got := <-done:
		if got != 6*time.Second {
			t.Fatalf("store down, buffer full: loss window %s, want 6s (from the first segment)", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("LossWindow blocked behind a segmenter waiting for buffer room")
	}
	select {
	case err := <-flushed:
		must(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("a flush blocked behind an event waiting for buffer room")
	}
	r.release()
	must(t, <-blocked)
	must(t, a.seg.Flush())
	drain(t, a.up)
	if got := a.LossWindow(r.now()); got != 0 {
		t.Fatalf("after the outage: loss window %s, want 0", got)
	}
}
