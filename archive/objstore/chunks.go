package objstore

import "bytes"

// Chunks holds bytes in pieces of at most chunkSize: a segment's
// compressed bytes, from the segmenter to the store, are never copied
// into one array. A 16 MiB segment would be 16 MiB more at every seal
// (the pieces and the copy), and each one a 16 MiB run of contiguous
// pages the heap must find, all of which the archiver's memory bound
// cannot afford.
type Chunks [][]byte

// Len is the number of bytes held.
func (c Chunks) Len() int {
	n := 0
	for _, b := range c {
		n += len(b)
	}
	return n
}

// Bytes returns a copy of the bytes, in one array.
func (c Chunks) Bytes() []byte {
	return bytes.Join(c, nil)
}

// Equal tells whether the bytes held are b.
func (c Chunks) Equal(b []byte) bool {
	if c.Len() != len(b) {
		return false
	}
	for _, p := range c {
		if !bytes.Equal(p, b[:len(p)]) {
			return false
		}
		b = b[len(p):]
	}
	return true
}

const chunkSize = 1 << 20

// ChunkBuffer holds the compressed bytes of the segment being filled in
// chunks of a fixed size. Growing it never copies: a bytes.Buffer doubles,
// and holds the old and the new array at once (48 MiB for a 16 MiB
// segment), which the archiver's memory bound cannot afford.
type ChunkBuffer struct {
	chunks Chunks
	n      int
}

func (b *ChunkBuffer) Write(p []byte) (int, error) {
	written := len(p)
	for len(p) > 0 {
		if len(b.chunks) == 0 || len(b.chunks[len(b.chunks)-1]) == chunkSize {
			b.chunks = append(b.chunks, make([]byte, 0, chunkSize))
		}
		last := &b.chunks[len(b.chunks)-1]
		k := min(chunkSize-len(*last), len(p))
		*last = append(*last, p[:k]...)
		p = p[k:]
	}
	b.n += written
	return written, nil
}

// Take returns the contents and empties the buffer. The full chunks are
// handed over as they are; the last, partly filled one is copied to an
// array of its size, so what the caller holds is what it counts, and the
// chunk stays for the next segment.
func (b *ChunkBuffer) Take() Chunks {
	out := b.chunks
	b.chunks, b.n = nil, 0
	if k := len(out) - 1; k >= 0 && len(out[k]) < chunkSize {
		b.chunks = append(b.chunks, out[k][:0])
		out[k] = bytes.Clone(out[k])
	}
	return out
}

// Reset empties the buffer, keeping only its first chunk.
func (b *ChunkBuffer) Reset() {
	if len(b.chunks) > 0 {
		b.chunks[0] = b.chunks[0][:0]
		clear(b.chunks[1:])
		b.chunks = b.chunks[:1]
	}
	b.n = 0
}

// Size is how many bytes the buffer holds.
func (b *ChunkBuffer) Size() int { return b.n }
