package objstore

import (
	"context"
	"fmt"
	"io"
)

// PutStream reads r whole and Puts it: the memory store is for tests, where
// objects are small.
func (m *Memory) PutStream(ctx context.Context, key string, r io.Reader, opts PutOptions) (ObjectInfo, error) {
	if opts.IfMatch != "" {
		return ObjectInfo{}, fmt.Errorf("memory: put stream %s: IfMatch is not supported for streams", key)
	}
	data, err := io.ReadAll(readerWithContext(ctx, r))
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("memory: put stream %s: read: %w", key, err)
	}
	return m.Put(ctx, key, data, opts)
}

// readerWithContext makes a read fail once ctx is done, so a stream from a
// source that never ends still stops on cancellation.
func readerWithContext(ctx context.Context, r io.Reader) io.Reader {
	return ctxReader{ctx: ctx, r: r}
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// SweepUploads has nothing to sweep: a memory PutStream leaves nothing
// behind.
func (m *Memory) SweepUploads(context.Context, string) (int, error) { return 0, nil }
