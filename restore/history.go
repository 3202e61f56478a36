package restore

import (
	"context"

	"github.com/binarc/binarc/archive"
)

// history is the archive's history (archive.History: timelines, joins,
// files fetched once) with the restore's own lookups on it: locating a
// target, the chain of timelines to it, the ranges to replay.
type history struct{ *archive.History }

func newHistory(ctx context.Context, c archive.Catalog, dir string) (*history, error) {
	h, err := archive.NewHistory(ctx, c, dir)
	if err != nil {
		return nil, err
	}
	return &history{h}, nil
}
