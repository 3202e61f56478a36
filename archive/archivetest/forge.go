// Package archivetest forges archives for tests that must show a checker
// catches what format checks cannot: a file's bytes replaced by other
// well-formed bytes, stored and indexed as binarc stores them.
package archivetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/replication"
	"github.com/klauspost/compress/zstd"
)

// ReadFile is a file's whole bytes as the archive has them.
func ReadFile(ctx context.Context, cat archive.Catalog, tl, file string) ([]byte, error) {
	refs, err := cat.Files(ctx, tl)
	if err != nil {
		return nil, err
	}
	for _, ref := range refs {
		if ref.Name != file {
			continue
		}
		fs, err := cat.FileState(ctx, tl, ref)
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		if _, err := cat.Rebuild(ctx, fs, &b); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	return nil, fmt.Errorf("%s/%s is not in the archive", tl, file)
}

// ReplaceFile stores plain as the whole of tl/file: one segment (zstd with
// its checksums, as binarc writes them) in place of the file's segments
// and compacted object, and, when the file has an index, the index
// patched to that one segment, its size and event count. Nothing tells
// the result from an archive binarc wrote, but a signature.
func ReplaceFile(ctx context.Context, cat archive.Catalog, tl, file string, plain []byte) error {
	events := 0
	if err := replication.Events(plain, 0, func(uint64, replication.Header, []byte) error { events++; return nil }); err != nil {
		return fmt.Errorf("the new bytes of %s: %w", file, err)
	}
	segs, err := cat.Segments(ctx, tl, file)
	if err != nil {
		return err
	}
	for _, s := range segs {
		if err := cat.Store.Delete(ctx, s.Key); err != nil {
			return err
		}
	}
	if err := cat.Store.Delete(ctx, cat.Layout.CompactedKey(tl, file)); err != nil {
		return err
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	if err != nil {
		return err
	}
	stored := enc.EncodeAll(plain, nil)
	if _, err := cat.Store.Put(ctx, cat.Layout.SegmentKey(tl, file, 0, uint64(len(plain))), stored, objstore.PutOptions{}); err != nil {
		return err
	}
	ix, err := cat.ReadIndex(ctx, tl, file)
	if errors.Is(err, objstore.ErrNotExist) {
		return nil // no index: the segments are the file
	}
	if err != nil {
		return err
	}
	first, last := ix.Segments[0], ix.Segments[len(ix.Segments)-1]
	merged := first
	merged.End, merged.StoredSize, merged.Events = uint64(len(plain)), int64(len(stored)), events
	merged.LastEventTime, merged.LastGTID, merged.LastEventType = last.LastEventTime, last.LastGTID, last.LastEventType
	ix.Size, ix.Segments = uint64(len(plain)), []archive.SegmentInfo{merged}
	_, err = cat.Store.Put(ctx, cat.Layout.IndexKey(tl, file), archive.MarshalJSON(ix), objstore.PutOptions{})
	return err
}
