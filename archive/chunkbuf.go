package archive

// chunkBuffer holds the compressed bytes of the segment being filled in
// chunks of a fixed size. Growing it never copies: a bytes.Buffer doubles,
// and holds the old and the new array at once (48 MiB for a 16 MiB
// segment), which the archiver's memory bound cannot afford.
type chunkBuffer struct {
	chunks [][]byte
	n      int
}

const chunkSize = 1 << 20

func (b *chunkBuffer) Write(p []byte) (int, error) {
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

// Bytes returns a copy of the contents, of exactly their size.
func (b *chunkBuffer) Bytes() []byte {
	out := make([]byte, 0, b.n)
	for _, c := range b.chunks {
		out = append(out, c...)
	}
	return out
}

// Take returns a copy of the contents, of exactly their size, and empties
// the buffer; the chunks after the first are let go as they are copied.
func (b *chunkBuffer) Take() []byte {
	out := make([]byte, 0, b.n)
	for i, c := range b.chunks {
		out = append(out, c...)
		if i > 0 {
			b.chunks[i] = nil
		}
	}
	b.Reset()
	return out
}

// Reset empties the buffer, keeping only its first chunk.
func (b *chunkBuffer) Reset() {
	if len(b.chunks) > 0 {
		b.chunks[0] = b.chunks[0][:0]
		clear(b.chunks[1:])
		b.chunks = b.chunks[:1]
	}
	b.n = 0
}
