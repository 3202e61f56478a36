package objstore_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/archive/objstore/objstoretest"
)

func TestFaultyPassesThrough(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		return objstore.NewFaulty(objstore.NewMemory())
	})
}

func TestFaultyInjects(t *testing.T) {
	ctx := t.Context()
	mem := objstore.NewMemory()
	f := objstore.NewFaulty(mem)
	errBoom := errors.New("boom")

	var mu sync.Mutex
	var calls []string
	f.SetHook(func(op, key string) error {
		mu.Lock()
		calls = append(calls, op+" "+key)
		mu.Unlock()
		if op == objstore.OpPut && key == "bad" {
			return errBoom
		}
		return nil
	})
	if _, err := f.Put(ctx, "bad", []byte("x"), objstore.PutOptions{}); !errors.Is(err, errBoom) {
		t.Fatalf("Put(bad) = %v, want the injected error", err)
	}
	if _, _, err := objstore.ReadAll(ctx, mem, "bad"); !errors.Is(err, objstore.ErrNotExist) {
		t.Errorf("a failed Put reached the wrapped store: %v", err)
	}
	if _, err := f.Put(ctx, "good", []byte("x"), objstore.PutOptions{}); err != nil {
		t.Fatalf("Put(good) = %v", err)
	}
	if _, _, err := objstore.ReadAll(ctx, f, "good"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.List(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := f.Delete(ctx, "good"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.PutStream(ctx, "bad", strings.NewReader("x"), objstore.PutOptions{}); !errors.Is(err, errBoom) {
		t.Fatalf("PutStream(bad) = %v, want the injected error", err)
	}
	if _, err := f.SweepUploads(ctx, "p/"); err != nil {
		t.Fatal(err)
	}
	want := []string{"put bad", "put good", "get good", "list ", "delete good", "put bad", "sweep p/"}
	if len(calls) != len(want) {
		t.Fatalf("hook calls = %q, want %q", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Errorf("hook call %d = %q, want %q", i, calls[i], want[i])
		}
	}

	f.SetHook(nil)
	if _, err := f.Put(ctx, "bad", []byte("x"), objstore.PutOptions{}); err != nil {
		t.Errorf("Put(bad) with the hook removed = %v", err)
	}
}

// TestFaultyConcurrentHookChange is for the race detector.
func TestFaultyConcurrentHookChange(t *testing.T) {
	f := objstore.NewFaulty(objstore.NewMemory())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				f.Put(t.Context(), "k", []byte("x"), objstore.PutOptions{})
			}
		})
	}
	for range 100 {
		f.SetHook(func(op, key string) error { return nil })
		f.SetHook(nil)
	}
	wg.Wait()
}
