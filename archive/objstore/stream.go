package objstore

import (
	"context"
	"io"
)

// StreamPutter is implemented by stores that can store an object of unknown
// length from a reader without holding it whole in memory: a backup tool's
// output, hundreds of GiB, piped straight into the store.
//
// PutStream reads r to EOF and stores what it read at key. The object is
// visible to Get and List only once PutStream returned nil, and then whole.
// If r returns an error, or ctx ends, before EOF, PutStream returns an error
// wrapping it, and nothing is at key afterwards and nothing is left behind
// (no multipart upload, no temp file) unless cleaning up itself failed,
// which the error then says.
//
// opts.IfAbsent makes it fail with ErrExist when an object is already at
// key, as Put does; IfMatch is not supported (a stream is a new object).
type StreamPutter interface {
	PutStream(ctx context.Context, key string, r io.Reader, opts PutOptions) (ObjectInfo, error)
}

// UploadSweeper is implemented by stores whose failed streamed puts can
// leave storage behind when the process dies mid-way (an S3 multipart
// upload, a temp file). A job that owns a prefix exclusively (it holds the
// lease for it) sweeps it at start-up.
type UploadSweeper interface {
	// SweepUploads removes the unfinished uploads whose keys start with
	// prefix and returns how many it removed.
	SweepUploads(ctx context.Context, prefix string) (int, error)
}
