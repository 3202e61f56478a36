package archive

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/binarc/binarc/archive/crypt"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/archive/sign"
)

// ErrNotCompactable means the file has no index: it is still being
// written, or a prune removed it. Nothing was changed.
var ErrNotCompactable = errors.New("not a complete file")

// CompactResult says what a compaction did.
type CompactResult struct {
	Key             string
	Bytes           int64 // size of the compacted object
	SegmentsDeleted int
	AlreadyStored   bool // a previous run had stored the object
}

// Compact turns a complete file's segments into one object, the
// concatenation of the segment objects: zstd frames concatenate, so
// nothing is recompressed. Each step leaves a readable, complete archive,
// whenever it stops:
//
//  1. the file's index exists (it is written once all segments are
//     stored, and compaction only starts from it);
//  2. the compacted object is stored with a conditional put, built while
//     streaming the segments in order; readers use it once it is listed
//     (an object is listed only whole);
//  3. it is read back and decoded in full: its size must be the file's
//     and every frame's checksum must hold;
//  4. only then are the segments deleted.
//
// A run after a crash finds the object of step 2 and resumes at step 3.
func (c Catalog) Compact(ctx context.Context, tl, file string) (CompactResult, error) {
	key := c.Layout.CompactedKey(tl, file)
	res := CompactResult{Key: key}
	ix, err := c.ReadIndex(ctx, tl, file)
	if errors.Is(err, objstore.ErrNotExist) {
		return res, fmt.Errorf("compact %s: %w: no index (the file is not complete, or a prune removed it)", file, ErrNotCompactable)
	}
	if err != nil {
		return res, fmt.Errorf("compact %s: %w", file, err)
	}
	// The index names the segments: no LIST (listing costs, and compaction
	// runs in steady state).
	var segs []SegmentRef
	for _, s := range ix.Segments {
		segs = append(segs, SegmentRef{Key: c.Layout.SegmentKey(tl, file, s.Start, s.End), Start: s.Start, End: s.End, StoredSize: s.StoredSize})
	}
	err = c.storeCompacted(ctx, key, segs)
	if errors.Is(err, objstore.ErrExist) {
		res.AlreadyStored = true
		err = nil
	}
	if err != nil {
		return res, err
	}
	// A prune may have removed the file while we built the object: then
	// the object is an orphan, and goes too.
	if _, err := c.ReadIndex(ctx, tl, file); errors.Is(err, objstore.ErrNotExist) {
		if derr := c.Store.Delete(ctx, key); derr != nil {
			return res, fmt.Errorf("compact %s: %w: its index went during compaction (a prune), and the orphaned %s could not be deleted (binarc verify lists it as a stray object; delete it by hand): %v", file, ErrNotCompactable, key, derr)
		}
		return res, fmt.Errorf("compact %s: %w: its index went during compaction (a prune)", file, ErrNotCompactable)
	}
	n, err := c.checkCompacted(ctx, key, ix, segs)
	if err != nil {
		return res, err
	}
	res.Bytes = n
	deleted, err := c.deleteAll(ctx, segs)
	res.SegmentsDeleted = deleted
	return res, err
}

// storeCompacted streams the segments into one object. It fails with
// ErrExist if the object is already there, which is also what a missing
// segment means when a previous run compacted the file and deleted some.
func (c Catalog) storeCompacted(ctx context.Context, key string, segs []SegmentRef) error {
	var keys []string
	for _, s := range segs {
		keys = append(keys, s.Key)
	}
	r := &segmentsReader{ctx: ctx, store: c.Store, keys: keys}
	defer r.Close()
	// 5 MiB parts: the compactor runs beside the stream, within its memory
	// bound (three parts in memory at most). Signed as it streams: the
	// segments keep their own signatures, checked one by one by readers.
	_, err := c.Store.PutStream(ctx, key, c.Signer.SignedReader(key, r), objstore.PutOptions{IfAbsent: true, PartSize: 5 << 20})
	if errors.Is(err, objstore.ErrNotExist) && r.missing != "" {
		return c.expectCompacted(ctx, key, r.missing)
	}
	return err
}

// expectCompacted handles a file some of whose segments are gone: fine
// only if the compacted object exists.
func (c Catalog) expectCompacted(ctx context.Context, key, missing string) error {
	rc, _, err := c.Store.Get(ctx, key)
	if err == nil {
		rc.Close()
		return objstore.ErrExist
	}
	return fmt.Errorf("compact: segment %s is missing and there is no compacted object %s: the archive is damaged; run binarc verify", missing, key)
}

// checkCompacted decodes the whole compacted object, checking every
// frame's checksum and the total size. An object of sealed segments is
// checked part by part against the segments' keys and stored sizes, which
// needs no secret key; opening them is for readers (binarc verify).
func (c Catalog) checkCompacted(ctx context.Context, key string, ix *FileIndex, segs []SegmentRef) (int64, error) {
	rc, info, err := c.Store.Get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("read back %s: %w", key, err)
	}
	defer rc.Close()
	// Bounded: at most what ix.Size bytes compress to (sealed, when they
	// are) is read, at most ix.Size bytes decoded.
	limit := sealedBound(StoredBound(ix.Size)) + int64(len(segs)+1)*sign.TrailerSize
	src := bufio.NewReaderSize(objstore.BoundedBody(rc, key, limit), 64<<10)
	if head, _ := src.Peek(len(crypt.Magic)); crypt.IsSealed(head) {
		if err := checkSealedCompacted(src, segs); err != nil {
			return 0, fmt.Errorf("%w: compacted object %s is not the file's sealed segments: %v; the segments are kept", ErrConflict, key, err)
		}
		return info.Size, nil
	}
	dec, err := NewBoundedDecoder(src)
	if err != nil {
		return 0, err
	}
	defer dec.Close()
	if _, err := copyExactly(io.Discard, dec, ix.Size); err != nil {
		return 0, fmt.Errorf("%w: compacted object %s is not the file: %w; the segments are kept", ErrConflict, key, err)
	}
	return info.Size, nil
}

// deleteAll deletes keys, a few at a time, and returns how many went.
func (c Catalog) deleteAll(ctx context.Context, segs []SegmentRef) (int, error) {
	var mu sync.Mutex
	var firstErr error
	deleted := 0
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, s := range segs {
		wg.Add(1)
		sem <- struct{}{}
		go func(key string) {
			defer wg.Done()
			defer func() { <-sem }()
			err := c.Store.Delete(ctx, key)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("delete %s: %w", key, err)
			}
			if err == nil {
				deleted++
			}
		}(s.Key)
	}
	wg.Wait()
	return deleted, firstErr
}

// segmentsReader reads the segment objects one after the other, as one
// stream, straight from the store: a segment is never held whole (16 MiB,
// twice that while io.ReadAll grows it), which keeps compaction within
// the archiver's memory bound.
type segmentsReader struct {
	ctx   context.Context
	store objstore.Store
	keys  []string
	cur   io.ReadCloser // body of keys[0], once opened
	body  io.Reader     // cur, bounded by what the segment can be stored as
	// missing is the segment that was not there, if that stopped the read.
	missing string
}

// Read streams the segments one after the other, each read no further
// than what its range can be stored as (compressed, and sealed when the
// timeline is encrypted).
func (r *segmentsReader) Read(p []byte) (int, error) {
	for {
		if r.cur == nil {
			if len(r.keys) == 0 {
				return 0, io.EOF
			}
			limit := int64(objstore.MaxSmallObject)
			if start, end, err := ParseSegmentName(r.keys[0]); err == nil {
				limit = sealedBound(StoredBound(end-start)) + sign.TrailerSize
			}
			rc, _, err := r.store.Get(r.ctx, r.keys[0])
			if errors.Is(err, objstore.ErrNotExist) {
				r.missing = r.keys[0]
			}
			if err != nil {
				return 0, fmt.Errorf("read segment %s: %w", r.keys[0], err)
			}
			r.cur, r.body = rc, objstore.BoundedBody(rc, r.keys[0], limit)
		}
		n, err := r.body.Read(p)
		if errors.Is(err, io.EOF) {
			r.cur.Close()
			r.cur, r.keys = nil, r.keys[1:]
			err = nil
			if n == 0 {
				continue
			}
		}
		if err != nil {
			return n, fmt.Errorf("read segment %s: %w", r.keys[0], err)
		}
		return n, nil
	}
}

// Close closes the segment being read, if any.
func (r *segmentsReader) Close() {
	if r.cur != nil {
		r.cur.Close()
		r.cur = nil
	}
}
