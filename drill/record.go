package drill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
)

// maxRecord bounds a drill record read back (binarc writes a few KiB, a
// line per table).
const maxRecord = 64 << 20

// Store writes r as the drill record of its start time. The put is
// conditional: a record is written once, and a drill started in the same
// second as another is refused rather than replacing its record.
func Store(ctx context.Context, store objstore.Store, layout archive.Layout, r *Report) (string, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	key := layout.DrillKey(r.Started)
	if _, err := store.Put(ctx, key, append(b, '\n'), objstore.PutOptions{IfAbsent: true}); err != nil {
		if errors.Is(err, objstore.ErrExist) {
			return key, fmt.Errorf("store the drill record: %s already holds another drill started the same second: %w", key, err)
		}
		return key, fmt.Errorf("store the drill record %s: %w", key, err)
	}
	return key, nil
}

// Records lists the drill records' keys, oldest first (names that are not
// records are ignored).
func Records(ctx context.Context, store objstore.Store, layout archive.Layout) ([]string, error) {
	entries, err := store.List(ctx, layout.DrillsPrefix())
	if err != nil && !errors.Is(err, objstore.ErrNotExist) {
		return nil, fmt.Errorf("list drill records: %w", err)
	}
	var keys []string
	for _, e := range entries {
		if _, perr := archive.ParseDrillName(e.Key); !e.Dir && perr == nil {
			keys = append(keys, e.Key)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// Read reads one drill record, bounded.
func Read(ctx context.Context, store objstore.Store, key string) (*Report, error) {
	b, _, err := objstore.ReadAtMost(ctx, store, key, maxRecord)
	if err != nil {
		return nil, fmt.Errorf("read drill record %s: %w", key, err)
	}
	r, err := UnmarshalReport(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return r, nil
}

// Last reads the newest drill record; nil when there is none.
func Last(ctx context.Context, store objstore.Store, layout archive.Layout) (*Report, error) {
	keys, err := Records(ctx, store, layout)
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	return Read(ctx, store, keys[len(keys)-1])
}

// LastSuccess reads the newest successful drill record among the newest
// few (a long run of failures reads as none); nil when there is none.
func LastSuccess(ctx context.Context, store objstore.Store, layout archive.Layout) (*Report, error) {
	keys, err := Records(ctx, store, layout)
	if err != nil {
		return nil, err
	}
	for i := len(keys) - 1; i >= 0 && i >= len(keys)-50; i-- {
		r, err := Read(ctx, store, keys[i])
		if err != nil {
			return nil, err
		}
		if r.Succeeded() {
			return r, nil
		}
	}
	return nil, nil
}
