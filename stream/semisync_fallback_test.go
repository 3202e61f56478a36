package stream

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/replication"
	"github.com/rs/zerolog"
)

// TestFallbackRecorded: the primary seen not waiting opens an unprotected
// range at the last acknowledged position, recorded in the archive; seen
// waiting again closes it, and a record the store cannot take (it is
// down, the usual cause of the fallback) is kept and stored once it is
// back.
func TestFallbackRecorded(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewFaulty(objstore.NewMemory())
	var down atomic.Bool
	store.SetHook(func(op, key string) error {
		if down.Load() && op == objstore.OpPut {
			return errors.New("injected: store unreachable")
		}
		return nil
	})
	layout := archive.Layout{Cluster: "c"}
	a := &Archiver{store: store, layout: layout, log: zerolog.Nop()}
	up, err := NewUploader(UploaderConfig{}, store, layout, Durable{Timeline: "tl", Position: pos("mysql-bin.000001", 500)}, zerolog.Nop(), nil)
	must(t, err)
	defer up.Close()
	a.up = up
	a.semi.acked = pos("mysql-bin.000001", 400)
	rec := &fallbackRecorder{a: a}
	t0 := time.Date(2026, 12, 6, 16, 0, 0, 0, time.UTC)
	waiting := replication.SemiSyncState{Enabled: true, Active: true}
	fellBack := replication.SemiSyncState{Enabled: true}

	rec.observe(ctx, waiting, nil, t0)
	rec.observe(ctx, fellBack, errors.New("primary unreachable"), t0) // cannot tell: no change
	if got, _ := archive.ReadUnprotected(ctx, store, layout, "tl"); len(got) != 0 || a.semi.unprotected.Load() {
		t.Fatalf("recorded %v while the primary waited", got)
	}
	down.Store(true)
	rec.observe(ctx, fellBack, nil, t0.Add(time.Second))
	if !a.semi.unprotected.Load() || a.semi.fallbacks.Load() != 1 {
		t.Fatal("the fallback is not counted")
	}
	p := pos("mysql-bin.000001", 9000)
	a.primary.Store(&p)
	rec.observe(ctx, fellBack, nil, t0.Add(2*time.Second)) // still falling back: one range
	down.Store(false)
	rec.observe(ctx, waiting, nil, t0.Add(time.Minute))
	got, err := archive.ReadUnprotected(ctx, store, layout, "tl")
	must(t, err)
	if len(got) != 1 {
		t.Fatalf("%d ranges recorded, want 1: %+v", len(got), got)
	}
	u := got[0]
	if u.Open() || u.FromFile != "mysql-bin.000001" || u.FromOffset != 400 || u.ToOffset != 9000 || !u.FromTime.Equal(t0.Add(time.Second)) || !u.ToTime.Equal(t0.Add(time.Minute)) {
		t.Fatalf("recorded %+v; want 400 (the last acknowledged) to 9000, closed", u)
	}
	if a.semi.unprotected.Load() {
		t.Fatal("still counted unprotected after the primary waits again")
	}
	// Both records are in the store: the open one survives a crash
	// before the close.
	entries, err := store.List(ctx, layout.UnprotectedPrefix("tl"))
	must(t, err)
	if len(entries) != 2 {
		t.Fatalf("%d records stored, want the open and the closed one", len(entries))
	}
}
