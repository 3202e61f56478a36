package stream

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
	"github.com/rs/zerolog"
)

// archiveEvents runs events through a Segmenter and an Uploader into store.
func newPipeline(t *testing.T, store objstore.Store, cfg UploaderConfig, segSize int) (*Segmenter, *Uploader) {
	t.Helper()
	layout := archive.Layout{Cluster: "c"}
	up, err := NewUploader(cfg, store, layout, Durable{Timeline: "tl"}, zerolog.Nop(), nil)
	must(t, err)
	t.Cleanup(func() { up.Close() })
	seg := NewSegmenter(SegmenterConfig{FlushInterval: time.Hour, SegmentSize: segSize}, "tl", replication.Position{File: "mysql-bin.000001"}, up)
	return seg, up
}

func drain(t *testing.T, up *Uploader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	must(t, up.Drain(ctx))
}

// TestUploaderDurableInOrder delays the first segment's upload: later
// segments get stored first, but the durable position must not pass the
// first one until it is stored.
func TestUploaderDurableInOrder(t *testing.T) {
	store := objstore.NewFaulty(objstore.NewMemory())
	release := make(chan struct{})
	var first sync.Once
	store.SetHook(func(op, key string) error {
		if op == objstore.OpPut && strings.HasSuffix(key, ".zst") && strings.Contains(key, "/00000000000000000000-") {
			first.Do(func() { <-release })
		}
		return nil
	})
	seg, up := newPipeline(t, store, UploaderConfig{Concurrency: 4, MaxBufferedBytes: 1 << 20}, 4096)
	b := binlogtest.New("mysql-bin.000001")
	must(t, seg.Add(b.Next(gomysql.FORMAT_DESCRIPTION_EVENT, 120)))
	for i := 0; i < 20; i++ {
		must(t, seg.Add(b.Next(gomysql.WRITE_ROWS_EVENTv1, 1000)))
	}
	must(t, seg.Flush())
	time.Sleep(200 * time.Millisecond) // let the later uploads finish
	if d := up.Durable(); d.Position.Offset != 0 {
		t.Fatalf("durable position %v passed a segment still uploading", d.Position)
	}
	close(release)
	drain(t, up)
	if d := up.Durable(); d.Position.Offset != b.Pos {
		t.Fatalf("durable %v, want end %d", d.Position, b.Pos)
	}
}

// downStore is a memory store behind a Faulty one whose PUTs fail while
// down is set (it starts set).
func downStore() (*objstore.Memory, *objstore.Faulty, *atomic.Bool) {
	mem := objstore.NewMemory()
	store := objstore.NewFaulty(mem)
	down := &atomic.Bool{}
	down.Store(true)
	store.SetHook(func(op, key string) error {
		if down.Load() && op == objstore.OpPut {
			return errors.New("injected: store unavailable")
		}
		return nil
	})
	return mem, store, down
}

// TestUploaderOutageBackpressure fails every PUT for a while: the
// pipeline must block the producer once its buffer is full, drop nothing,
// and store everything once the store is back, ending with the index.
func TestUploaderOutageBackpressure(t *testing.T) {
	mem, store, down := downStore()
	seg, up := newPipeline(t, store, UploaderConfig{Concurrency: 2, MaxBufferedBytes: 16 << 10, MaxBackoff: 20 * time.Millisecond}, 4096)
	b := binlogtest.New("mysql-bin.000001")
	var produced atomic.Int64
	done := make(chan error, 1)
	go func() {
		err := seg.Add(b.Next(gomysql.FORMAT_DESCRIPTION_EVENT, 120))
		for i := 0; err == nil && i < 200; i++ {
			err = seg.Add(b.Next(gomysql.WRITE_ROWS_EVENTv1, 1000))
			produced.Add(1)
		}
		if err == nil {
			err = seg.Add(b.Next(gomysql.ROTATE_EVENT, binlogtest.RotateSize))
		}
		if err == nil {
			err = seg.FileDone("mysql-bin.000001", "mysql-bin.000002")
		}
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if n := produced.Load(); n >= 200 {
		t.Fatal("the producer was never blocked while the store was down")
	} else if n == 0 {
		t.Fatal("nothing produced at all")
	}
	if d := up.Durable(); d.Position.Offset != 0 {
		t.Fatalf("durable %v while nothing could be stored", d.Position)
	}
	down.Store(false)
	waitUnblocked(t, done)
	drain(t, up)
	cat := archive.Catalog{Store: mem, Layout: archive.Layout{Cluster: "c"}}
	ix, err := cat.ReadIndex(context.Background(), "tl", "mysql-bin.000001")
	must(t, err)
	if ix.Size != b.Pos || !ix.Closed || ix.Next != "mysql-bin.000002" {
		t.Fatalf("index: size %d (want %d) closed %v next %q", ix.Size, b.Pos, ix.Closed, ix.Next)
	}
}

// TestUploaderBufferHoldsTheSegmentBeingFilled keeps the store down under
// incompressible events: what is held, the sealed segments and the one
// being filled, stays within MaxBufferedBytes (give or take the block the
// encoder holds): the segmenter waits before it fills a segment past the
// bound, rather than sealing one more that waits beside the full buffer.
func TestUploaderBufferHoldsTheSegmentBeingFilled(t *testing.T) {
	_, store, down := downStore()
	const maxBuffer = 1 << 20
	seg, up := newPipeline(t, store, UploaderConfig{Concurrency: 2, MaxBufferedBytes: maxBuffer, MaxBackoff: 20 * time.Millisecond}, 384<<10)
	b := binlogtest.New("mysql-bin.000001")
	rnd := rand.New(rand.NewPCG(1, 2))
	var produced atomic.Int64
	done := make(chan error, 1)
	go func() {
		err := seg.Add(b.Next(gomysql.FORMAT_DESCRIPTION_EVENT, 120))
		for i := 0; err == nil && i < 400; i++ {
			body := make([]byte, 8<<10)
			for j := range body {
				body[j] = byte(rnd.Uint32())
			}
			err = seg.Add(b.NextBody(gomysql.WRITE_ROWS_EVENTv1, body))
			produced.Add(1)
		}
		if err == nil {
			err = seg.Flush()
		}
		done <- err
	}()
	for last := int64(-1); produced.Load() != last; time.Sleep(200 * time.Millisecond) {
		last = produced.Load()
	}
	up.bytesMu.Lock()
	buffered := up.buffered
	up.bytesMu.Unlock()
	filling := int64(-1)
	for i := 0; i < 100 && filling < 0; i++ {
		if seg.mu.TryLock() {
			filling = int64(seg.zbuf.Size())
			seg.mu.Unlock()
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if filling < 0 {
		t.Fatal("the segmenter is stuck with its lock held: a sealed segment waits for room beside the full buffer")
	}
	if n := produced.Load(); n >= 400 {
		t.Fatal("the producer was never blocked while the store was down")
	}
	if buffered+filling > maxBuffer+encoderPending || buffered+filling < maxBuffer/2 {
		t.Fatalf("store down: %d bytes sealed and %d in the segment being filled, want at most %d in all", buffered, filling, maxBuffer+encoderPending)
	}
	down.Store(false)
	waitUnblocked(t, done)
	drain(t, up)
	if d := up.Durable(); d.Position.Offset != b.Pos {
		t.Fatalf("durable %v, want end %d", d.Position, b.Pos)
	}
}

// TestUploaderConflict: a segment key already holding other bytes means
// another writer; the uploader must stop rather than overwrite it.
func TestUploaderConflict(t *testing.T) {
	mem := objstore.NewMemory()
	layout := archive.Layout{Cluster: "c"}
	b := binlogtest.New("mysql-bin.000001")
	fde := b.Next(gomysql.FORMAT_DESCRIPTION_EVENT, 120)
	key := layout.SegmentKey("tl", "mysql-bin.000001", 0, fde.End)
	_, err := mem.Put(context.Background(), key, []byte("someone else's"), objstore.PutOptions{})
	must(t, err)
	seg, up := newPipeline(t, mem, UploaderConfig{Concurrency: 1, MaxBufferedBytes: 1 << 20}, 4096)
	must(t, seg.Add(fde))
	must(t, seg.Flush())
	select {
	case <-up.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("uploader did not stop on a conflicting object")
	}
	if err := up.Err(); err == nil || !strings.Contains(err.Error(), "different content") {
		t.Fatalf("err = %v", err)
	}
	got, _, _ := objstore.ReadAll(context.Background(), mem, key)
	if string(got) != "someone else's" {
		t.Fatal("the existing object was overwritten")
	}
}

// TestUploaderSameObjectIsFine: finding our own bytes already stored (an
// earlier attempt whose answer was lost) is success.
func TestUploaderSameObjectIsFine(t *testing.T) {
	mem := objstore.NewMemory()
	seg, up := newPipeline(t, mem, UploaderConfig{Concurrency: 1, MaxBufferedBytes: 1 << 20}, 4096)
	b := binlogtest.New("mysql-bin.000001")
	fde := b.Next(gomysql.FORMAT_DESCRIPTION_EVENT, 120)
	must(t, seg.Add(fde))
	must(t, seg.Flush())
	drain(t, up)
	// A second pipeline archiving the same bytes again.
	seg2, up2 := newPipeline(t, mem, UploaderConfig{Concurrency: 1, MaxBufferedBytes: 1 << 20}, 4096)
	must(t, seg2.Add(fde))
	must(t, seg2.Flush())
	drain(t, up2)
	if up2.Err() != nil {
		t.Fatal(up2.Err())
	}
}

// TestUploaderFailWakesAWaiterAboutToSleep: a waiter for room (WaitRoom,
// SubmitSegment) checks u.ctx under bytesMu, then sleeps on bytesCond. A
// failure landing between the two must still wake it: the test holds
// bytesMu as such a waiter does after its check, lets fail run, then
// sleeps as the waiter would. Nothing else broadcasts (no Close), so a
// wake-up lost there leaves it asleep.
func TestUploaderFailWakesAWaiterAboutToSleep(t *testing.T) {
	up, err := NewUploader(UploaderConfig{Concurrency: 1, MaxBufferedBytes: 1}, objstore.NewMemory(), archive.Layout{Cluster: "c"}, Durable{Timeline: "tl"}, zerolog.Nop(), nil)
	must(t, err)
	up.bytesMu.Lock()
	if up.ctx.Err() != nil {
		t.Fatal("uploader stopped at start")
	}
	failed := make(chan struct{})
	go func() {
		up.fail(errors.New("injected"))
		close(failed)
	}()
	// Give fail the chance to run while the waiter is between its check
	// and its sleep (under the fix it waits for bytesMu instead).
	select {
	case <-failed:
	case <-time.After(200 * time.Millisecond):
	}
	var lost atomic.Bool
	guard := time.AfterFunc(30*time.Second, func() { // a guard against sleeping forever
		lost.Store(true)
		up.bytesMu.Lock()
		up.bytesCond.Broadcast()
		up.bytesMu.Unlock()
	})
	up.bytesCond.Wait() // as the waiter: releases bytesMu while asleep
	up.bytesMu.Unlock()
	guard.Stop()
	if lost.Load() {
		t.Fatal("a failure between a waiter's check and its sleep did not wake it")
	}
	<-failed
	if err := up.Close(); err == nil || err.Error() != "injected" {
		t.Fatalf("Close: %v, want the injected failure", err)
	}
}

// waitUnblocked waits for the producer blocked by the outage to finish,
// now that the store is back.
func waitUnblocked(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("producer still blocked after the store came back")
	}
}
