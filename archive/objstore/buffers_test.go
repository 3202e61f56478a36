package objstore

import (
	"bytes"
	"io"
	"testing"
)

// TestBuffersReader reads and seeks across the pieces as a bytes.Reader
// does in one array.
func TestBuffersReader(t *testing.T) {
	bufs := [][]byte{[]byte("abc"), nil, []byte("d"), []byte("efgh"), {}}
	all := bytes.Join(bufs, nil)
	r := NewBuffersReader(bufs)
	if r.Size() != int64(len(all)) || r.Len() != len(all) {
		t.Fatalf("size %d len %d, want %d", r.Size(), r.Len(), len(all))
	}
	for _, chunk := range []int{1, 2, 5, 100} {
		for start := 0; start <= len(all); start++ {
			if _, err := r.Seek(int64(start), io.SeekStart); err != nil {
				t.Fatal(err)
			}
			var got []byte
			p := make([]byte, chunk)
			for {
				n, err := r.Read(p)
				got = append(got, p[:n]...)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(got, all[start:]) {
				t.Fatalf("from %d by %d: %q, want %q", start, chunk, got, all[start:])
			}
		}
	}
	if pos, _ := r.Seek(-2, io.SeekEnd); pos != int64(len(all)-2) {
		t.Errorf("Seek(-2, end) = %d", pos)
	}
	if pos, _ := r.Seek(1, io.SeekCurrent); pos != int64(len(all)-1) || r.Len() != 1 {
		t.Errorf("Seek(1, current) = %d, Len %d", pos, r.Len())
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Error("Seek to -1 did not fail")
	}
}
