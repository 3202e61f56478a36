package objstoretest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/binarc/binarc/archive/objstore"
)

// RunStream checks the PutStream and SweepUploads contract of the stores made by
// newStore. leftovers, if not nil, is called after each failed stream and
// must fail the test if the store kept anything of it (an S3 multipart
// upload, a temp file).
func RunStream(t *testing.T, newStore func(t *testing.T) objstore.Store, leftovers func(t *testing.T, s objstore.Store)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s objstore.Store, sp objstore.Store, leftovers func(*testing.T))
	}{
		{"StreamSmall", testStreamSmall},
		{"StreamEmpty", testStreamEmpty},
		{"Stream40MiB", testStream40MiB},
		{"StreamSmallParts", testStreamSmallParts},
		{"StreamReaderError", testStreamReaderError},
		{"StreamCancel", testStreamCancel},
		{"StreamIfAbsent", testStreamIfAbsent},
		{"StreamIfAbsentTakenMidStream", testStreamIfAbsentTakenMidStream},
		{"SweepKeepsObjects", testSweepKeepsObjects},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			sp := s
			check := func(t *testing.T) {
				if leftovers != nil {
					leftovers(t, s)
				}
			}
			tt.fn(t, s, sp, check)
		})
	}
}

// patternReader yields n deterministic pseudo-random bytes (incompressible,
// like a compressed backup) without holding them in memory.
type patternReader struct {
	rng *rand.ChaCha8
	n   int64
	err error // returned instead of EOF, if set
}

func newPattern(seed byte, n int64) *patternReader {
	var s [32]byte
	s[0] = seed
	return &patternReader{rng: rand.NewChaCha8(s), n: n}
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.n <= 0 {
		if p.err != nil {
			return 0, p.err
		}
		return 0, io.EOF
	}
	if int64(len(b)) > p.n {
		b = b[:p.n]
	}
	_, _ = p.rng.Read(b)
	p.n -= int64(len(b))
	return len(b), nil
}

func patternSum(seed byte, n int64) [32]byte {
	h := sha256.New()
	_, _ = io.Copy(h, newPattern(seed, n))
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

func streamSum(t *testing.T, s objstore.Store, key string) ([32]byte, int64) {
	t.Helper()
	rc, _, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, n
}

func wantAbsent(t *testing.T, s objstore.Store, key, prefix string) {
	t.Helper()
	if rc, _, err := s.Get(t.Context(), key); !errors.Is(err, objstore.ErrNotExist) {
		if err == nil {
			rc.Close()
		}
		t.Errorf("Get(%q) after a failed stream = %v, want ErrNotExist", key, err)
	}
	wantList(t, s, prefix, nil)
}

func testStreamSmall(t *testing.T, s objstore.Store, sp objstore.Store, _ func(*testing.T)) {
	const n = 100 << 10
	info, err := sp.PutStream(t.Context(), "st/small", newPattern(1, n), objstore.PutOptions{})
	if err != nil {
		t.Fatalf("PutStream: %v", err)
	}
	if info.Key != "st/small" || info.Size != n || info.ETag == "" {
		t.Errorf("PutStream info = %+v, want key st/small, size %d, an ETag", info, n)
	}
	if sum, size := streamSum(t, s, "st/small"); sum != patternSum(1, n) || size != n {
		t.Errorf("object read back differs (%d bytes)", size)
	}
}

func testStreamEmpty(t *testing.T, s objstore.Store, sp objstore.Store, _ func(*testing.T)) {
	if _, err := sp.PutStream(t.Context(), "st/empty", newPattern(0, 0), objstore.PutOptions{IfAbsent: true}); err != nil {
		t.Fatalf("PutStream of nothing: %v", err)
	}
	if _, size := streamSum(t, s, "st/empty"); size != 0 {
		t.Errorf("empty stream stored %d bytes", size)
	}
}

// testStream40MiB is larger than two parts of any backend's multipart
// upload, with a short last part.
func testStream40MiB(t *testing.T, s objstore.Store, sp objstore.Store, _ func(*testing.T)) {
	const n = 40<<20 + 12345
	info, err := sp.PutStream(t.Context(), "st/big", newPattern(2, n), objstore.PutOptions{IfAbsent: true})
	if err != nil {
		t.Fatalf("PutStream: %v", err)
	}
	if info.Size != n {
		t.Errorf("PutStream size %d, want %d", info.Size, n)
	}
	if sum, size := streamSum(t, s, "st/big"); sum != patternSum(2, n) || size != n {
		t.Errorf("40 MiB stream read back differs (%d bytes)", size)
	}
	wantList(t, s, "st/", []objstore.Entry{{Key: "st/big", Size: n}})
}

// testStreamSmallParts streams with the smallest part size S3 allows,
// over several parts: the memory-lean way compaction uses.
func testStreamSmallParts(t *testing.T, s objstore.Store, sp objstore.Store, _ func(*testing.T)) {
	const n = 17<<20 + 999
	if _, err := sp.PutStream(t.Context(), "st/parts", newPattern(5, n), objstore.PutOptions{IfAbsent: true, PartSize: 5 << 20}); err != nil {
		t.Fatalf("PutStream with 5 MiB parts: %v", err)
	}
	if sum, size := streamSum(t, s, "st/parts"); sum != patternSum(5, n) || size != n {
		t.Errorf("stream in 5 MiB parts read back differs (%d bytes)", size)
	}
}

var errSource = errors.New("source failed mid-stream")

// testStreamReaderError: a source that fails stores nothing, whatever its
// error. One wrapping io.ErrUnexpectedEOF (a segment's body cut off under
// compaction) once stored what had been read as the whole object.
func testStreamReaderError(t *testing.T, s objstore.Store, sp objstore.Store, leftovers func(*testing.T)) {
	cutOff := fmt.Errorf("read segment x: %w", io.ErrUnexpectedEOF)
	for _, srcErr := range []error{errSource, cutOff} {
		for _, n := range []int64{1 << 10, 20 << 20, 33 << 20} {
			r := newPattern(3, n)
			r.err = srcErr
			_, err := sp.PutStream(t.Context(), "st/broken", r, objstore.PutOptions{IfAbsent: true})
			if !errors.Is(err, srcErr) {
				t.Fatalf("PutStream from a reader failing after %d bytes with %v = %v, want the reader's error", n, srcErr, err)
			}
			wantAbsent(t, s, "st/broken", "st/")
			leftovers(t)
		}
	}
}

func testStreamCancel(t *testing.T, s objstore.Store, sp objstore.Store, leftovers func(*testing.T)) {
	ctx, cancel := context.WithCancel(t.Context())
	r := &cancelAfter{r: newPattern(4, 1<<40), n: 20 << 20, cancel: cancel}
	_, err := sp.PutStream(ctx, "st/cancelled", r, objstore.PutOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("PutStream cancelled mid-stream = %v, want context.Canceled", err)
	}
	wantAbsent(t, s, "st/cancelled", "st/")
	leftovers(t)
}

// cancelAfter calls cancel once n bytes were read (only the first time if
// once is set), and goes on yielding.
type cancelAfter struct {
	r      io.Reader
	n      int64
	cancel func()
	once   bool
	done   bool
}

func (c *cancelAfter) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n -= int64(n)
	if c.n <= 0 && !(c.once && c.done) {
		c.done = true
		c.cancel()
	}
	return n, err
}

func testStreamIfAbsent(t *testing.T, s objstore.Store, sp objstore.Store, leftovers func(*testing.T)) {
	mustPut(t, s, "st/taken", []byte("first"), objstore.PutOptions{})
	for _, n := range []int64{10, 17 << 20} {
		_, err := sp.PutStream(t.Context(), "st/taken", newPattern(5, n), objstore.PutOptions{IfAbsent: true})
		if !errors.Is(err, objstore.ErrExist) {
			t.Fatalf("IfAbsent PutStream of %d bytes on a taken key = %v, want ErrExist", n, err)
		}
		if got, _ := mustGet(t, s, "st/taken"); string(got) != "first" {
			t.Fatalf("IfAbsent PutStream changed the object: %d bytes", len(got))
		}
		leftovers(t)
	}
	if _, err := sp.PutStream(t.Context(), "st/x", newPattern(5, 1), objstore.PutOptions{IfMatch: "abc"}); err == nil {
		t.Errorf("PutStream with IfMatch accepted; it is not supported")
	}
}

// testStreamIfAbsentTakenMidStream has another writer create the key while
// the stream is being read: the check at the start passed, so the final,
// atomic one (If-None-Match on the completion, link(2)) must refuse.
func testStreamIfAbsentTakenMidStream(t *testing.T, s objstore.Store, sp objstore.Store, leftovers func(*testing.T)) {
	r := &cancelAfter{r: newPattern(6, 20<<20), n: 18 << 20, cancel: func() {
		if _, err := s.Put(context.Background(), "st/raced", []byte("other writer"), objstore.PutOptions{IfAbsent: true}); err != nil {
			t.Errorf("the other writer's Put: %v", err)
		}
	}}
	r.once = true
	_, err := sp.PutStream(t.Context(), "st/raced", r, objstore.PutOptions{IfAbsent: true})
	if !errors.Is(err, objstore.ErrExist) {
		t.Fatalf("IfAbsent PutStream whose key was taken mid-stream = %v, want ErrExist", err)
	}
	if got, _ := mustGet(t, s, "st/raced"); string(got) != "other writer" {
		t.Fatalf("the stream replaced the other writer's object (%d bytes)", len(got))
	}
	leftovers(t)
}

// testSweepKeepsObjects: sweeping a prefix removes only unfinished uploads:
// stored objects, streamed or put, stay, and a clean prefix sweeps nothing.
func testSweepKeepsObjects(t *testing.T, s objstore.Store, sp objstore.Store, leftovers func(*testing.T)) {
	ctx := t.Context()
	if _, err := sp.PutStream(ctx, "sweep/a", newPattern(1, 1000), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "sweep/b", []byte("b"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	pr := newPattern(2, 1<<20)
	pr.err = errors.New("tool died")
	if _, err := sp.PutStream(ctx, "sweep/c", pr, objstore.PutOptions{}); err == nil {
		t.Fatal("a stream whose reader failed was stored")
	}
	n, err := s.SweepUploads(ctx, "sweep/")
	if err != nil || n != 0 {
		t.Fatalf("SweepUploads after clean failures = %d, %v; want 0, nil (a failed PutStream cleans up after itself)", n, err)
	}
	leftovers(t)
	wantList(t, s, "sweep/", []objstore.Entry{{Key: "sweep/a", Size: 1000}, {Key: "sweep/b", Size: 1}})
}
