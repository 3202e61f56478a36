package retention

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
)

// Deleting binlog for retention. Which files go is decided by package
// snapshot (it knows which snapshot needs what); this file knows the keys
// and the order that keeps the archive consistent if a prune stops at any
// point.

// DeleteConcurrency is how many deletes a prune keeps in flight. The store
// interface has no batch delete (it stays small; S3's DeleteObjects would
// serve one backend only), so a batch is this many single deletes at once.
const DeleteConcurrency = 8

// DeleteFailure is one object that could not be deleted.
type DeleteFailure struct {
	Key string
	Err error
}

func (f DeleteFailure) Error() string { return fmt.Sprintf("delete %s: %v", f.Key, f.Err) }

// Deletion is what a batch of deletes did. A missing object counts as
// deleted (Store.Delete says so).
type Deletion struct {
	Deleted []string
	Failed  []DeleteFailure
}

// Add appends the results of another batch.
func (d *Deletion) Add(o Deletion) {
	d.Deleted = append(d.Deleted, o.Deleted...)
	d.Failed = append(d.Failed, o.Failed...)
}

// OK tells whether every delete succeeded.
func (d Deletion) OK() bool { return len(d.Failed) == 0 }

// DeleteKeys deletes keys, DeleteConcurrency at a time, and reports each
// failure with its key. It does not stop at a failure: the keys of one
// batch are independent of each other by construction (the caller orders
// the batches).
func DeleteKeys(ctx context.Context, store objstore.Store, keys []string) Deletion {
	var (
		mu  sync.Mutex
		out Deletion
		wg  sync.WaitGroup
		sem = make(chan struct{}, DeleteConcurrency)
	)
	for _, k := range keys {
		if ctx.Err() != nil {
			out.Failed = append(out.Failed, DeleteFailure{Key: k, Err: ctx.Err()})
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(key string) {
			defer wg.Done()
			defer func() { <-sem }()
			err := store.Delete(ctx, key)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				out.Failed = append(out.Failed, DeleteFailure{Key: key, Err: err})
			} else {
				out.Deleted = append(out.Deleted, key)
			}
		}(k)
	}
	wg.Wait()
	sort.Strings(out.Deleted)
	sort.Slice(out.Failed, func(i, j int) bool { return out.Failed[i].Key < out.Failed[j].Key })
	return out
}

// ListAll lists every object under prefix, at any depth, sorted.
func ListAll(ctx context.Context, store objstore.Store, prefix string) ([]string, error) {
	entries, err := store.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, e := range entries {
		if !e.Dir {
			keys = append(keys, e.Key)
			continue
		}
		sub, err := ListAll(ctx, store, e.Key)
		if err != nil {
			return nil, err
		}
		keys = append(keys, sub...)
	}
	sort.Strings(keys)
	return keys, nil
}

// DeleteFile deletes every object of one binlog file of timeline tl, as
// Files listed it, in this order:
//
//  1. its segments (everything under <file>/), DeleteConcurrency at a time;
//  2. its compacted object <file>.zst;
//  3. its index <file>.index.json, only once 1 and 2 all went;
//  4. the compacted object again, whether or not it was listed (see below).
//
// Readers and the archiver take a file with an index as complete and read
// nothing else to decide so; a file without one is the live file, whose
// segments the archiver checks from offset 0 when it resumes (and indexes
// if they end with a ROTATE). Deleting the index first would turn a pruned
// file into an unindexed, partly deleted one ahead of indexed files: the
// archiver would refuse to resume ("indexed but an earlier file is
// incomplete") and ls would show a gap. Deleting it last means a prune that
// stops half way leaves an indexed file some of whose data is gone; that is
// only ever a file before every kept snapshot's coordinates, which no
// restore reads, and the next prune finishes it.
//
// Step 4: the stream's compactor may be writing the compacted object from
// segments it read before step 1 (it compacts the old files it finds
// uncompacted when it starts). Left behind, an object with neither index
// nor segments would look like an empty unindexed file at the head of the
// timeline.
func DeleteFile(ctx context.Context, c archive.Catalog, tl string, ref archive.FileRef) Deletion {
	var d Deletion
	prefix := c.Layout.FilePrefix(tl, ref.Name)
	segs, err := ListAll(ctx, c.Store, prefix)
	if err != nil {
		d.Failed = append(d.Failed, DeleteFailure{Key: prefix, Err: fmt.Errorf("list: %w", err)})
		return d
	}
	d.Add(DeleteKeys(ctx, c.Store, segs))
	compacted := c.Layout.CompactedKey(tl, ref.Name)
	if d.OK() && ref.Compacted {
		d.Add(DeleteKeys(ctx, c.Store, []string{compacted}))
	}
	if d.OK() && ref.Indexed {
		d.Add(DeleteKeys(ctx, c.Store, []string{c.Layout.IndexKey(tl, ref.Name)}))
	}
	if d.OK() {
		if err := c.Store.Delete(ctx, compacted); err != nil {
			d.Failed = append(d.Failed, DeleteFailure{Key: compacted, Err: err})
		}
	}
	return d
}

// DeleteTimeline deletes a whole timeline: its files in binlog order, each
// as DeleteFile does, stopping at the first that fails (so what is left is
// still a run of whole files ending where the timeline ended), then any
// other object in its folder, then timeline.json last. A timeline folder
// without its manifest would make the whole catalog unreadable (Describe
// reads every timeline's manifest), so the manifest goes only once the
// folder is otherwise empty.
func DeleteTimeline(ctx context.Context, c archive.Catalog, tl string) Deletion {
	var d Deletion
	files, err := c.Files(ctx, tl)
	if err != nil {
		d.Failed = append(d.Failed, DeleteFailure{Key: c.Layout.TimelinePrefix(tl), Err: fmt.Errorf("list: %w", err)})
		return d
	}
	for _, f := range files {
		d.Add(DeleteFile(ctx, c, tl, f))
		if !d.OK() {
			return d
		}
	}
	rest, err := ListAll(ctx, c.Store, c.Layout.TimelinePrefix(tl))
	if err != nil {
		d.Failed = append(d.Failed, DeleteFailure{Key: c.Layout.TimelinePrefix(tl), Err: fmt.Errorf("list: %w", err)})
		return d
	}
	manifest := c.Layout.TimelineKey(tl)
	var others []string
	for _, k := range rest {
		if k != manifest {
			others = append(others, k)
		}
	}
	d.Add(DeleteKeys(ctx, c.Store, others))
	if !d.OK() {
		return d
	}
	d.Add(DeleteKeys(ctx, c.Store, []string{manifest}))
	return d
}
