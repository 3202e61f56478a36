package archive

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/binarc/binarc/internal/redact"
	"github.com/binarc/binarc/replication"
	"github.com/klauspost/compress/zstd"
)

// Everything read back from the store is bounded by what binarc would
// have written there: whoever can write to the bucket must not be able to
// exhaust the memory or the disk of the host that reads it. A zstd frame
// of a few KiB can decode to terabytes ("zstd bomb"), so every decoder
// here stops at the expected size.

// MaxSegmentSize bounds a segment's range: --segment-size (at most 1 GiB)
// plus one event of the largest size a server writes.
const MaxSegmentSize = 1<<30 + replication.MaxEventSize

// MaxDecoderWindow bounds the zstd window (the history a decoder holds) of
// the objects binarc reads: its encoders use 2 MiB (segments) and 4 to
// 8 MiB (snapshots).
const MaxDecoderWindow = 16 << 20

// ErrOversize means a compressed object decodes to more than its
// expected size: a zstd bomb or a damaged object.
var ErrOversize = errors.New("decodes to more than its expected size")

// StoredBound is the largest a zstd object of n raw bytes can be: zstd's
// own bound (n + n/256 + a little per frame), with room to spare.
func StoredBound(n uint64) int64 {
	return int64(n + n/128 + 1<<17)
}

// sealedBound is the largest an object of n stored bytes can be once
// sealed (package crypt): age's 16-byte tag per 64 KiB chunk, its header
// and the clear header, with room to spare.
func sealedBound(n int64) int64 {
	return n + n/4096 + 64<<10
}

// NewBoundedDecoder returns a streaming zstd decoder whose window is
// bounded; with it, memory does not depend on what the data claims.
func NewBoundedDecoder(r io.Reader) (*zstd.Decoder, error) {
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(MaxDecoderWindow),
		zstd.WithDecoderLowmem(true))
}

var segmentDecoders = sync.Pool{New: func() any {
	d, err := NewBoundedDecoder(nil)
	if err != nil {
		return err
	}
	return d
}}

// DecodeSegment decompresses a segment object of size raw bytes, checking
// zstd's content checksum. It accepts concatenated frames. It decodes at
// most size+1 bytes: an object that holds more fails with ErrOversize.
func DecodeSegment(data []byte, size uint64) ([]byte, error) {
	if size > MaxSegmentSize {
		return nil, fmt.Errorf("a segment of %d bytes is larger than any binarc writes (%d)", size, uint64(MaxSegmentSize))
	}
	got := segmentDecoders.Get()
	dec, ok := got.(*zstd.Decoder)
	if !ok {
		return nil, fmt.Errorf("zstd decoder: %v", got)
	}
	defer func() {
		_ = dec.Reset(nil)
		segmentDecoders.Put(dec)
	}()
	if err := dec.Reset(bytes.NewReader(data)); err != nil {
		return nil, err
	}
	// Memory grows with what is decoded, never past size+1, whatever
	// size the name claims.
	var buf bytes.Buffer
	buf.Grow(int(min(size, 8<<20)) + 1)
	if _, err := buf.ReadFrom(io.LimitReader(dec, int64(size)+1)); err != nil {
		return nil, err
	}
	if uint64(buf.Len()) > size {
		return nil, fmt.Errorf("%w (%d bytes): a zstd bomb or a damaged object", ErrOversize, size)
	}
	return buf.Bytes(), nil
}

// copyExactly copies exactly n decoded bytes from dec to w, and fails,
// without writing them, if dec holds more or fewer.
func copyExactly(w io.Writer, dec io.Reader, n uint64) (int64, error) {
	m, err := io.CopyN(w, dec, int64(n))
	if err == io.EOF {
		return m, fmt.Errorf("decodes to %d bytes, expected %d", m, n)
	}
	if err != nil {
		return m, err
	}
	var one [1]byte
	k, err := io.ReadFull(dec, one[:])
	if k > 0 {
		return m, fmt.Errorf("%w (%d bytes): a zstd bomb or a damaged object", ErrOversize, n)
	}
	if err != io.EOF {
		return m, err
	}
	return m, nil
}

// check validates the names in a timeline manifest read from the store
// and makes its free text safe to print (no terminal control sequences).
func (ti *TimelineInfo) check() error {
	if ti.StartFile != "" {
		if err := ValidateName("binlog file", ti.StartFile); err != nil {
			return fmt.Errorf("start_file: %w", err)
		}
	}
	if p := ti.Previous; p != nil {
		// Empty when the previous timeline archived no binlog (a
		// switch, and another before anything was archived).
		if p.File != "" {
			if err := ValidateName("binlog file", p.File); err != nil {
				return fmt.Errorf("previous.file: %w", err)
			}
		}
		if _, _, err := ParseTimeline(p.Timeline); err != nil {
			return fmt.Errorf("previous.timeline: %w", err)
		}
	}
	ti.Reason, ti.SourceAddr = redact.Control(ti.Reason), redact.Control(ti.SourceAddr)
	ti.SourceVersion, ti.SourceFlavor = redact.Control(ti.SourceVersion), redact.Control(ti.SourceFlavor)
	return nil
}
