package objstore

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// Fault operation names passed to a Faulty hook.
const (
	OpPut    = "put"
	OpGet    = "get"
	OpList   = "list"
	OpDelete = "delete"
	OpSweep  = "sweep"
)

// Faulty wraps a Store for fault-injection tests: before each call it asks
// its hook, and a non-nil answer fails the call with that error without
// reaching the wrapped store. It is safe for concurrent use, including
// changing the hook while calls are in flight.
type Faulty struct {
	Store

	mu   sync.Mutex
	hook func(op, key string) error
}

var _ Store = (*Faulty)(nil)

// NewFaulty wraps s with no hook set, so every call passes through.
func NewFaulty(s Store) *Faulty {
	return &Faulty{Store: s}
}

// SetHook installs hook, called as hook(op, key) before each operation with
// op one of OpPut, OpGet, OpList, OpDelete and key the key (the prefix for
// List). nil removes the hook.
func (f *Faulty) SetHook(hook func(op, key string) error) {
	f.mu.Lock()
	f.hook = hook
	f.mu.Unlock()
}

func (f *Faulty) fault(op, key string) error {
	f.mu.Lock()
	hook := f.hook
	f.mu.Unlock()
	if hook == nil {
		return nil
	}
	if err := hook(op, key); err != nil {
		return fmt.Errorf("faulty: %s %s: %w", op, key, err)
	}
	return nil
}

// Put consults the hook, then the wrapped store.
func (f *Faulty) Put(ctx context.Context, key string, data []byte, opts PutOptions) (ObjectInfo, error) {
	if err := f.fault(OpPut, key); err != nil {
		return ObjectInfo{}, err
	}
	return f.Store.Put(ctx, key, data, opts)
}

// Get consults the hook, then the wrapped store.
func (f *Faulty) Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	if err := f.fault(OpGet, key); err != nil {
		return nil, ObjectInfo{}, err
	}
	return f.Store.Get(ctx, key)
}

// List consults the hook, then the wrapped store.
func (f *Faulty) List(ctx context.Context, prefix string) ([]Entry, error) {
	if err := f.fault(OpList, prefix); err != nil {
		return nil, err
	}
	return f.Store.List(ctx, prefix)
}

// Delete consults the hook, then the wrapped store.
func (f *Faulty) Delete(ctx context.Context, key string) error {
	if err := f.fault(OpDelete, key); err != nil {
		return err
	}
	return f.Store.Delete(ctx, key)
}

// PutStream consults the hook (as OpPut), then the wrapped store.
func (f *Faulty) PutStream(ctx context.Context, key string, r io.Reader, opts PutOptions) (ObjectInfo, error) {
	if err := f.fault(OpPut, key); err != nil {
		return ObjectInfo{}, err
	}
	return f.Store.PutStream(ctx, key, r, opts)
}

// SweepUploads consults the hook (as OpSweep), then the wrapped store.
func (f *Faulty) SweepUploads(ctx context.Context, prefix string) (int, error) {
	if err := f.fault(OpSweep, prefix); err != nil {
		return 0, err
	}
	return f.Store.SweepUploads(ctx, prefix)
}

// String names the wrapped store, marked as faulty.
func (f *Faulty) String() string { return "faulty(" + f.Store.String() + ")" }
