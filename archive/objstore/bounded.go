package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// MaxSmallObject bounds the small objects binarc reads whole: JSON
// (layout, timeline, index, lease, snapshot manifest). binarc writes them
// at a few KiB; anything past this was not written by binarc.
const MaxSmallObject = 16 << 20

// ErrTooLarge means an object is larger than what binarc would have
// written there: the store was written to by something else.
var ErrTooLarge = errors.New("object larger than expected")

// ReadAtMost reads a whole object of at most limit bytes. A larger object
// fails with ErrTooLarge after reading limit+1 bytes, so content from the
// store never makes binarc hold more than it expects.
func ReadAtMost(ctx context.Context, s Store, key string, limit int64) ([]byte, ObjectInfo, error) {
	rc, info, err := s.Get(ctx, key)
	if err != nil {
		return nil, info, err
	}
	defer rc.Close()
	if info.Size > limit {
		return nil, info, tooLarge(s, key, info.Size, limit)
	}
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, info, err
	}
	if int64(len(b)) > limit {
		return nil, info, tooLarge(s, key, int64(len(b)), limit)
	}
	return b, info, nil
}

// ReadSmall reads a small object (JSON) bounded by MaxSmallObject.
func ReadSmall(ctx context.Context, s Store, key string) ([]byte, ObjectInfo, error) {
	return ReadAtMost(ctx, s, key, MaxSmallObject)
}

func tooLarge(s Store, key string, size, limit int64) error {
	return fmt.Errorf("%w: %s: %s holds at least %d bytes, binarc expects at most %d: it was not written by binarc (check who can write to the bucket; binarc verify lists what is wrong)",
		ErrTooLarge, s, key, size, limit)
}

// BoundedBody returns r that fails a read past limit bytes, naming key:
// for streamed objects whose size binarc knows.
func BoundedBody(r io.Reader, key string, limit int64) io.Reader {
	return &limitedBody{r: r, left: limit, limit: limit, key: key}
}

// limitedBody fails a read past limit stored bytes.
type limitedBody struct {
	r     io.Reader
	left  int64
	key   string
	limit int64
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left <= 0 {
		var one [1]byte
		if n, _ := io.ReadFull(l.r, one[:]); n > 0 {
			return 0, fmt.Errorf("%s is larger than the %d bytes binarc expects: not written by binarc", l.key, l.limit)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}
