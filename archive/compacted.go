package archive

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/binarc/binarc/archive/crypt"
)

// Reading compacted files. A compacted object is its file's segment
// objects exactly as stored (each sealed and signed when they were),
// followed, when the compactor had a signing key, by its own signature.
// The index gives each segment's stored size, so a reader splits the
// object into its segments and checks each one's signature, under its
// segment's key, before using its bytes: a forged part is refused before
// anything of it is replayed, not only at the object's end.

// compactedSource returns the zstd stream of a compacted object read from
// r. Without trust a plain object is read straight (zstd skips the
// signature frames); otherwise it is read segment by segment.
func (c Catalog) compactedSource(ctx context.Context, key string, r io.Reader, segs []SegmentRef) (io.Reader, error) {
	br := bufio.NewReaderSize(c.Trust.Reader(key, r), 64<<10)
	head, _ := br.Peek(len(crypt.Magic))
	sealed := crypt.IsSealed(head)
	if !sealed {
		if err := c.checkPlainAllowed(ctx, key); err != nil {
			return nil, err
		}
		if !c.Trust.Enforcing() {
			return br, nil
		}
	}
	return &compactedParts{c: c, key: key, r: br, segs: segs, sealed: sealed}, nil
}

// compactedParts reads a compacted object's segments as one zstd stream,
// each checked (with trust) and opened (when sealed) under its own key.
type compactedParts struct {
	c      Catalog
	key    string
	r      io.Reader
	segs   []SegmentRef
	sealed bool
	cur    io.Reader
	part   *io.LimitedReader
}

func (p *compactedParts) Read(b []byte) (int, error) {
	for {
		if p.cur == nil {
			if len(p.segs) == 0 {
				return 0, p.end()
			}
			if err := p.next(); err != nil {
				return 0, err
			}
		}
		n, err := p.cur.Read(b)
		if err == io.EOF {
			if p.part.N != 0 {
				return n, fmt.Errorf("compacted %s: %w: %d bytes after a segment's end", p.key, crypt.ErrTampered, p.part.N)
			}
			p.cur = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

// next starts the next segment: with trust, read whole and checked before
// any of it is passed on; without, streamed with its signature stripped.
func (p *compactedParts) next() error {
	s := p.segs[0]
	p.segs = p.segs[1:]
	p.part = &io.LimitedReader{R: p.r, N: s.StoredSize}
	if !p.c.Trust.Enforcing() {
		_, r, err := p.c.Opener.Open(p.c.Trust.Reader(s.Key, p.part), s.Key)
		p.cur = r
		return err
	}
	stored, err := io.ReadAll(p.part)
	if err != nil {
		return err
	}
	if int64(len(stored)) != s.StoredSize {
		return fmt.Errorf("compacted %s is corrupt: it ends inside segment %s", p.key, s.Key)
	}
	body, err := p.c.Trust.Check(s.Key, stored)
	if err != nil {
		return fmt.Errorf("compacted %s: %w", p.key, err)
	}
	if crypt.IsSealed(body) != p.sealed {
		return fmt.Errorf("compacted %s: %w: segment %s is sealed differently from the rest", p.key, crypt.ErrTampered, s.Key)
	}
	if p.sealed {
		if _, body, err = p.c.Opener.OpenBytes(body, s.Key); err != nil {
			return err
		}
	}
	p.cur = bytes.NewReader(body)
	return nil
}

// end checks that nothing follows the last segment; reading to the end is
// also what checks the object's own signature.
func (p *compactedParts) end() error {
	var one [1]byte
	n, err := io.ReadFull(p.r, one[:])
	if n > 0 {
		return fmt.Errorf("compacted %s: %w: data after the last segment", p.key, crypt.ErrTampered)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return err
}
