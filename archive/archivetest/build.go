package archivetest

import (
	"context"
	"encoding/json"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/klauspost/compress/zstd"
)

// PutTimeline stores timeline tl's info (created at its first own second,
// archiving server serverID from startFile) and each of files, in order, as
// one segment each (zstd with its checksums, as binarc writes them).
func PutTimeline(ctx context.Context, cat archive.Catalog, info archive.TimelineInfo, files map[string][]byte, order []string) error {
	info.Version = max(info.Version, 1)
	data, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if _, err := cat.Store.Put(ctx, cat.Layout.TimelineKey(info.Timeline), data, objstore.PutOptions{}); err != nil {
		return err
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	if err != nil {
		return err
	}
	defer enc.Close()
	for _, name := range order {
		b := files[name]
		key := cat.Layout.SegmentKey(info.Timeline, name, 0, uint64(len(b)))
		if _, err := cat.Store.Put(ctx, key, enc.EncodeAll(b, nil), objstore.PutOptions{}); err != nil {
			return err
		}
	}
	return nil
}
