package objstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// Memory is an in-memory Store for unit tests. It is safe for concurrent use.
// ETags are the hex MD5 of the content, as S3 gives for single-part uploads.
type Memory struct {
	mu      sync.Mutex
	objects map[string]memoryObject
}

type memoryObject struct {
	data    []byte
	etag    string
	modTime time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{objects: make(map[string]memoryObject)}
}

// Put stores a copy of data at key, honouring opts.
func (m *Memory) Put(ctx context.Context, key string, data []byte, opts PutOptions) (ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, fmt.Errorf("memory: put %s: %w", key, err)
	}
	if opts.IfAbsent && opts.IfMatch != "" {
		return ObjectInfo{}, fmt.Errorf("memory: put %s: IfAbsent and IfMatch are mutually exclusive", key)
	}
	obj := memoryObject{
		data:    bytes.Clone(data),
		etag:    md5Hex(data),
		modTime: time.Now(),
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, exists := m.objects[key]
	switch {
	case opts.IfAbsent && exists:
		return ObjectInfo{}, fmt.Errorf("memory: put %s: %w", key, ErrExist)
	case opts.IfMatch != "" && (!exists || cur.etag != opts.IfMatch):
		return ObjectInfo{}, fmt.Errorf("memory: put %s if-match %s: %w", key, opts.IfMatch, ErrPrecondition)
	}
	m.objects[key] = obj
	return obj.info(key), nil
}

// Get returns a reader over the object at key.
func (m *Memory) Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, ObjectInfo{}, fmt.Errorf("memory: get %s: %w", key, err)
	}
	m.mu.Lock()
	obj, ok := m.objects[key]
	m.mu.Unlock()
	if !ok {
		return nil, ObjectInfo{}, fmt.Errorf("memory: get %s: %w", key, ErrNotExist)
	}
	// obj.data is never mutated after Put, so readers may share it.
	return io.NopCloser(bytes.NewReader(obj.data)), obj.info(key), nil
}

// List returns the objects and common prefixes directly below prefix.
func (m *Memory) List(ctx context.Context, prefix string) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: list %s: %w", prefix, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var entries []Entry
	seenDirs := make(map[string]bool)
	for key, obj := range m.objects {
		rest, ok := strings.CutPrefix(key, prefix)
		if !ok {
			continue
		}
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			dir := prefix + rest[:i+1]
			if !seenDirs[dir] {
				seenDirs[dir] = true
				entries = append(entries, Entry{Key: dir, Dir: true})
			}
			continue
		}
		entries = append(entries, Entry{Key: key, Size: int64(len(obj.data))})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Key < entries[j].Key })
	return entries, nil
}

// Delete removes the object at key, if any.
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: delete %s: %w", key, err)
	}
	m.mu.Lock()
	delete(m.objects, key)
	m.mu.Unlock()
	return nil
}

// String names the store.
func (m *Memory) String() string { return "memory:" }

func (o memoryObject) info(key string) ObjectInfo {
	return ObjectInfo{Key: key, Size: int64(len(o.data)), ETag: o.etag, ModTime: o.modTime}
}

// md5Hex is the ETag of data for the Memory and Local stores.
func md5Hex(data []byte) string {
	sum := md5.Sum(data)
	return hex.EncodeToString(sum[:])
}
