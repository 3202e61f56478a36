package stream

import (
	"context"
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

func TestSealPolicy(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p := newSealPolicy(2, 0)
	if ok, _ := p.ready(t0, 1); !ok {
		t.Fatal("one upload in flight of two allowed, but no cut")
	}
	if ok, wait := p.ready(t0, 2); ok || wait != 0 {
		t.Fatalf("two in flight of two: ok %v wait %v, want a cut refused until one lands", ok, wait)
	}
	p = newSealPolicy(0, 4) // 4 PUTs a second: 250 ms apart
	if ok, _ := p.ready(t0, 100); !ok {
		t.Fatal("the first cut was refused (no inflight bound with the spool)")
	}
	p.cut(t0)
	if ok, wait := p.ready(t0.Add(100*time.Millisecond), 0); ok || wait != 150*time.Millisecond {
		t.Fatalf("100 ms after a cut at 4/s: ok %v wait %v, want refused for 150 ms", ok, wait)
	}
	if ok, _ := p.ready(t0.Add(250*time.Millisecond), 0); !ok {
		t.Fatal("250 ms after a cut at 4/s: refused")
	}
}

// blockingStore holds every segment PUT until released, and counts the
// PUTs waiting at once.
type blockingStore struct {
	*objstore.Faulty
	mu      sync.Mutex
	waiting map[uint64]chan struct{} // by segment start
	peak    int
}

func newBlockingStore() *blockingStore {
	b := &blockingStore{Faulty: objstore.NewFaulty(objstore.NewMemory()), waiting: map[uint64]chan struct{}{}}
	b.SetHook(func(op, key string) error {
		if op != objstore.OpPut || !strings.HasSuffix(key, ".zst") {
			return nil
		}
		start, _, err := archive.ParseSegmentName(key)
		if err != nil {
			return err
		}
		b.mu.Lock()
		c := make(chan struct{})
		b.waiting[start] = c
		b.peak = max(b.peak, len(b.waiting))
		b.mu.Unlock()
		<-c
		return nil
	})
	return b
}

func (b *blockingStore) starts() []uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s []uint64
	for k := range b.waiting {
		s = append(s, k)
	}
	return s
}

func (b *blockingStore) release(start uint64) {
	b.mu.Lock()
	c := b.waiting[start]
	delete(b.waiting, start)
	b.mu.Unlock()
	close(c)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

func (f *fakeAcker) list() []replication.Position {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]replication.Position(nil), f.acks...)
}

// TestSemiSyncPipelinesGroups: each commit group is sealed and its PUT
// started while the earlier ones are still uploading, up to Inflight;
// acknowledgements follow the durable prefix only (a later group landing
// first acknowledges nothing), in binlog order.
func TestSemiSyncPipelinesGroups(t *testing.T) {
	const inflight = 3
	store := newBlockingStore()
	a := &Archiver{cfg: ArchiverConfig{SemiSync: SemiSyncConfig{Enabled: true, Inflight: inflight}}, log: zerolog.Nop()}
	var c semiSyncCounters
	s := &semiSync{a: a, t: newAckTracker(pos("mysql-bin.000001", 0), &c, nil, zerolog.Nop())}
	acker := &fakeAcker{}
	s.t.replica = acker
	up, err := NewUploader(UploaderConfig{Concurrency: inflight, MaxBufferedBytes: 1 << 20}, store, archive.Layout{Cluster: "c"},
		Durable{Timeline: "tl", Position: pos("mysql-bin.000001", 0)}, zerolog.Nop(), s.observer(nil))
	must(t, err)
	defer up.Close()
	seg := NewSegmenter(SegmenterConfig{FlushInterval: time.Hour, SegmentSize: 1 << 20}, "tl", pos("mysql-bin.000001", 0), s.sink(up))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.t.run(ctx)
	go func() { _ = s.seal(ctx, seg, up) }()

	b := binlogtest.New("mysql-bin.000001")
	must(t, seg.Add(b.Next(gomysql.FORMAT_DESCRIPTION_EVENT, 120)))
	var ends []uint64
	for i := 0; i < inflight+1; i++ {
		must(t, seg.Add(b.Next(gomysql.WRITE_ROWS_EVENTv1, 200)))
		must(t, seg.Add(b.Next(gomysql.XID_EVENT, 31)))
		ends = append(ends, b.Pos)
		s.t.request(pos("mysql-bin.000001", b.Pos))
		if i < inflight {
			waitUntil(t, "the group's PUT started", func() bool { return len(store.starts()) == i+1 })
		}
	}
	// The fourth group waits for a slot: three PUTs in flight, no more.
	time.Sleep(100 * time.Millisecond)
	if n := len(store.starts()); n != inflight || !s.t.needSeal() {
		t.Fatalf("%d PUTs in flight (want %d) and needSeal %v with the fourth group unsealed", n, inflight, s.t.needSeal())
	}
	// The second and third land first: not durable, nothing acknowledged.
	var first uint64 = 0
	for _, st := range store.starts() {
		if st != first {
			store.release(st)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if got := acker.list(); len(got) != 0 {
		t.Fatalf("acknowledged %v while the first group was still uploading", got)
	}
	// A slot was freed only when the prefix became durable: the fourth
	// group is sealed once the first lands.
	store.release(first)
	waitUntil(t, "the fourth group's PUT started", func() bool { return len(store.starts()) == 1 })
	waitUntil(t, "the first three groups acknowledged", func() bool {
		got := acker.list()
		return len(got) > 0 && got[len(got)-1] == pos("mysql-bin.000001", ends[inflight-1])
	})
	for _, st := range store.starts() {
		store.release(st)
	}
	waitUntil(t, "the fourth group acknowledged", func() bool {
		got := acker.list()
		return len(got) > 0 && got[len(got)-1] == pos("mysql-bin.000001", ends[inflight])
	})
	got := acker.list()
	for i := 1; i < len(got); i++ {
		if !posLE(got[i-1], got[i]) || got[i-1] == got[i] {
			t.Fatalf("acknowledgements out of binlog order: %v", got)
		}
	}
	if store.peak != inflight {
		t.Fatalf("at most %d PUTs were in flight at once, want %d", store.peak, inflight)
	}
}
