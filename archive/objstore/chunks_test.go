package objstore

import (
	"bytes"
	"testing"
)

// TestChunkBuffer: Take hands over the full chunks as they are and a copy
// of the last one of its size (not a pooled chunk), and keeps that chunk for the next
// segment.
func TestChunkBuffer(t *testing.T) {
	var b ChunkBuffer
	var want []byte
	for i := 0; i < 5; i++ {
		p := make([]byte, chunkSize/2+i*1000)
		for j := range p {
			p[j] = byte(i + j)
		}
		if n, err := b.Write(p); n != len(p) || err != nil {
			t.Fatalf("write: %d, %v", n, err)
		}
		want = append(want, p...)
	}
	kept := b.chunks[len(b.chunks)-1]
	got := b.Take()
	if !bytes.Equal(got.Bytes(), want) || got.Len() != len(want) || !got.Equal(want) {
		t.Fatalf("Take: %d bytes, want %d", got.Len(), len(want))
	}
	for i, c := range got {
		last := i == len(got)-1
		if !last && (len(c) != chunkSize || cap(c) != chunkSize) || last && cap(c) >= chunkSize {
			t.Fatalf("chunk %d of %d: len %d cap %d", i, len(got), len(c), cap(c))
		}
	}
	if b.n != 0 || len(b.chunks) != 1 || len(b.chunks[0]) != 0 || &b.chunks[0][:1][0] != &kept[:1][0] {
		t.Fatalf("after Take: %d bytes in %d chunks, not the last chunk kept", b.n, len(b.chunks))
	}
	if got.Equal(want[1:]) || got.Equal(append(bytes.Clone(want[:len(want)-1]), 0)) {
		t.Fatal("Equal holds for other bytes")
	}

	// Exactly full chunks: all handed over, none kept.
	b.Reset()
	if _, err := b.Write(make([]byte, 2*chunkSize)); err != nil {
		t.Fatal(err)
	}
	if got := b.Take(); len(got) != 2 || got.Len() != 2*chunkSize || len(b.chunks) != 0 {
		t.Fatalf("two full chunks: took %d chunks (%d bytes), %d left", len(got), got.Len(), len(b.chunks))
	}
}
