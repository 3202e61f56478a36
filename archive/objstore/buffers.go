package objstore

import (
	"bytes"
	"context"
	"errors"
	"io"
)

// PutBuffers is Put of the concatenation of bufs, without joining them
// into one array where the store can send them as they are (S3, Local):
// binarc keeps a segment in 1 MiB pieces, and a 16 MiB copy of each one
// uploading would take what its memory bound cannot spare. Other stores
// get one joined copy.
func PutBuffers(ctx context.Context, s Store, key string, bufs [][]byte, opts PutOptions) (ObjectInfo, error) {
	if bp, ok := s.(buffersPutter); ok {
		return bp.PutBuffers(ctx, key, bufs, opts)
	}
	return s.Put(ctx, key, bytes.Join(bufs, nil), opts)
}

type buffersPutter interface {
	PutBuffers(ctx context.Context, key string, bufs [][]byte, opts PutOptions) (ObjectInfo, error)
}

// BuffersReader reads the concatenation of byte slices, and seeks in it
// (an SDK rewinds a request body to retry it). It does not copy them.
type BuffersReader struct {
	bufs [][]byte
	size int64
	off  int64
	i    int   // buffer holding off
	in   int64 // offset of off in bufs[i]
}

// NewBuffersReader reads bufs one after the other.
func NewBuffersReader(bufs [][]byte) *BuffersReader {
	r := &BuffersReader{bufs: bufs}
	for _, b := range bufs {
		r.size += int64(len(b))
	}
	return r
}

// Read reads from the current offset.
func (r *BuffersReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && r.i < len(r.bufs) {
		k := copy(p[n:], r.bufs[r.i][r.in:])
		n += k
		r.in += int64(k)
		r.off += int64(k)
		if r.in == int64(len(r.bufs[r.i])) {
			r.i, r.in = r.i+1, 0
		}
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Seek sets the offset for the next Read.
func (r *BuffersReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.size
	default:
		return 0, errors.New("objstore: BuffersReader.Seek: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("objstore: BuffersReader.Seek: negative position")
	}
	r.off, r.i, r.in = offset, 0, offset
	for r.i < len(r.bufs) && r.in >= int64(len(r.bufs[r.i])) {
		r.in -= int64(len(r.bufs[r.i]))
		r.i++
	}
	return offset, nil
}

// Len is the number of bytes not yet read (as bytes.Reader's).
func (r *BuffersReader) Len() int { return int(max(r.size-r.off, 0)) }

// Size is the length of the concatenation.
func (r *BuffersReader) Size() int64 { return r.size }
