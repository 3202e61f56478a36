package retention

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
)

// putFile stores a complete file the way the archiver leaves it: segments
// and an index, and, if compacted, the compacted object as well.
func putFile(t *testing.T, s objstore.Store, l archive.Layout, tl, file string, segs int, compacted bool) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < segs; i++ {
		if _, err := s.Put(ctx, l.SegmentKey(tl, file, uint64(i*100), uint64(i*100+100)), []byte("seg"), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Put(ctx, l.IndexKey(tl, file), []byte("{}"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if compacted {
		if _, err := s.Put(ctx, l.CompactedKey(tl, file), []byte("zst"), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func keysUnder(t *testing.T, s objstore.Store, prefix string) []string {
	t.Helper()
	keys, err := ListAll(context.Background(), s, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// deleteRecorder records the order of deletes and fails the keys in fail.
func deleteRecorder(f *objstore.Faulty, fail func(key string) bool) *[]string {
	var mu sync.Mutex
	var order []string
	f.SetHook(func(op, key string) error {
		if op != objstore.OpDelete {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if fail != nil && fail(key) {
			return errors.New("injected")
		}
		order = append(order, key)
		return nil
	})
	return &order
}

func TestDeleteFileOrder(t *testing.T) {
	ctx := context.Background()
	l := archive.Layout{Cluster: "c"}
	for _, compacted := range []bool{false, true} {
		t.Run(fmt.Sprintf("compacted=%v", compacted), func(t *testing.T) {
			f := objstore.NewFaulty(objstore.NewMemory())
			c := archive.Catalog{Store: f, Layout: l}
			putFile(t, f, l, "000001-20261125T000000Z", "b.000001", 20, compacted)
			putFile(t, f, l, "000001-20261125T000000Z", "b.000002", 3, false)
			order := deleteRecorder(f, nil)
			refs, err := c.Files(ctx, "000001-20261125T000000Z")
			if err != nil || len(refs) != 2 {
				t.Fatalf("files %v %v", refs, err)
			}
			d := DeleteFile(ctx, c, "000001-20261125T000000Z", refs[0])
			if !d.OK() {
				t.Fatalf("failures: %v", d.Failed)
			}
			ix := slices.Index(*order, l.IndexKey("000001-20261125T000000Z", "b.000001"))
			ck := l.CompactedKey("000001-20261125T000000Z", "b.000001")
			for i, k := range *order {
				if strings.Contains(k, "/b.000001/") && i > ix {
					t.Errorf("segment %s deleted after the index", k)
				}
			}
			if last := (*order)[len(*order)-1]; last != ck {
				t.Errorf("last delete %s; want the compacted object once more, after the index", last)
			}
			if compacted && slices.Index(*order, ck) > ix {
				t.Errorf("listed compacted object deleted only after the index: %v", *order)
			}
			if n := len(d.Deleted); n != 20+1+map[bool]int{true: 1}[compacted] {
				t.Errorf("%d deleted, want the segments, the index and the compacted object once: %v", n, d.Deleted)
			}
			if left := keysUnder(t, f, l.TimelinePrefix("000001-20261125T000000Z")); len(left) != 4 || !strings.Contains(left[0], "b.000002") {
				t.Errorf("left: %v; want only b.000002", left)
			}
		})
	}
}

// A failed segment delete keeps the index: the file stays indexed (and so
// complete to every reader) until its data is all gone.
func TestDeleteFileKeepsIndexOnFailure(t *testing.T) {
	ctx := context.Background()
	l := archive.Layout{Cluster: "c"}
	tl := "000001-20261125T000000Z"
	f := objstore.NewFaulty(objstore.NewMemory())
	c := archive.Catalog{Store: f, Layout: l}
	putFile(t, f, l, tl, "b.000001", 30, true)
	bad := l.SegmentKey(tl, "b.000001", 1700, 1800)
	deleteRecorder(f, func(k string) bool { return k == bad })
	refs, _ := c.Files(ctx, tl)
	d := DeleteFile(ctx, c, tl, refs[0])
	if len(d.Failed) != 1 || d.Failed[0].Key != bad || !strings.Contains(d.Failed[0].Error(), "injected") {
		t.Fatalf("failures %v; want exactly %s", d.Failed, bad)
	}
	left := keysUnder(t, f, l.TimelinePrefix(tl))
	want := []string{l.CompactedKey(tl, "b.000001"), bad, l.IndexKey(tl, "b.000001")}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Fatalf("left %v; want %v", left, want)
	}
	// The next try finishes it.
	f.SetHook(nil)
	refs, _ = c.Files(ctx, tl)
	if d := DeleteFile(ctx, c, tl, refs[0]); !d.OK() {
		t.Fatal(d.Failed)
	}
	if left := keysUnder(t, f, l.TimelinePrefix(tl)); len(left) != 0 {
		t.Fatalf("left %v", left)
	}
}

func TestDeleteTimeline(t *testing.T) {
	ctx := context.Background()
	l := archive.Layout{Cluster: "c"}
	tl := "000001-20261125T000000Z"
	f := objstore.NewFaulty(objstore.NewMemory())
	c := archive.Catalog{Store: f, Layout: l}
	for i := 1; i <= 4; i++ {
		putFile(t, f, l, tl, fmt.Sprintf("b.%06d", i), 5, i%2 == 0)
	}
	// The live file of a timeline that ended: segments, no index.
	if _, err := f.Put(ctx, l.SegmentKey(tl, "b.000005", 0, 100), []byte("x"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Put(ctx, l.TimelineKey(tl), []byte("{}"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	other := "000002-20261126T000000Z"
	putFile(t, f, l, other, "b.000009", 2, false)

	// A failure in the third file: the first two are gone, the rest and
	// the manifest stay.
	bad := l.SegmentKey(tl, "b.000003", 200, 300)
	deleteRecorder(f, func(k string) bool { return k == bad })
	d := DeleteTimeline(ctx, c, tl)
	if d.OK() {
		t.Fatal("no failure reported")
	}
	files, _ := c.Files(ctx, tl)
	var names []string
	for _, r := range files {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"b.000003", "b.000004", "b.000005"}) {
		t.Fatalf("files left %v; want b.000003 on (whole files up to the end)", names)
	}
	if _, err := c.ReadTimeline(ctx, tl); err != nil {
		t.Fatalf("timeline manifest deleted before the files: %v", err)
	}

	order := deleteRecorder(f, nil)
	if d := DeleteTimeline(ctx, c, tl); !d.OK() {
		t.Fatal(d.Failed)
	}
	if last := (*order)[len(*order)-1]; last != l.TimelineKey(tl) {
		t.Errorf("last delete %s; want the timeline manifest", last)
	}
	tls, err := c.Timelines(ctx)
	if err != nil || !slices.Equal(tls, []string{other}) {
		t.Fatalf("timelines %v %v; want only %s", tls, err, other)
	}
	if n := len(keysUnder(t, f, l.TimelinePrefix(other))); n != 3 {
		t.Fatalf("the other timeline lost objects: %d left", n)
	}
}

// At most DeleteConcurrency deletes are in flight, and every failure is
// reported with its key.
func TestDeleteKeysBounded(t *testing.T) {
	ctx := context.Background()
	mem := objstore.NewMemory()
	var keys []string
	for i := 0; i < 100; i++ {
		k := fmt.Sprintf("k/%03d", i)
		keys = append(keys, k)
		if _, err := mem.Put(ctx, k, nil, objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	f := objstore.NewFaulty(mem)
	var inFlight, peak atomic.Int32
	f.SetHook(func(op, key string) error {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		if strings.HasSuffix(key, "7") {
			return errors.New("injected")
		}
		return nil
	})
	d := DeleteKeys(ctx, f, keys)
	if p := peak.Load(); p > DeleteConcurrency || p < 2 {
		t.Errorf("peak concurrency %d; want 2..%d", p, DeleteConcurrency)
	}
	if len(d.Failed) != 10 || len(d.Deleted) != 90 || d.Failed[0].Key != "k/007" {
		t.Errorf("deleted %d, failed %d (%v)", len(d.Deleted), len(d.Failed), d.Failed)
	}
}
