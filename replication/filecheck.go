package replication

import (
	"bytes"
	"fmt"
	"io"

	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// FileChecker passes a binlog file through to a writer, checking it as it
// streams past in offset order: the magic, that the first event is a
// format description, and every event's length (at least a header, at
// most the file's end and the largest event a server writes), end
// position (log_pos) and, when the format description says the file has
// them, CRC32. A file rebuilt from an archive is checked this way before
// anyone relies on it: a file whose events do not line up is refused,
// where mariadb-binlog would fail on it later. It holds at most one event
// that is not yet whole.
type FileChecker struct {
	w    io.Writer
	off  uint64 // file offset of the next byte to check
	size uint64 // the file's length: no event may run past it
	// pending is the start of an event not yet whole.
	pending []byte
	crc     bool // the file's events end with a CRC32
	err     error
}

// NewFileChecker checks a binlog file of size bytes, from offset 0, on
// its way to w.
func NewFileChecker(w io.Writer, size uint64) *FileChecker {
	return &FileChecker{w: w, size: size}
}

// EventError is a malformed binlog file: the problem at Offset.
type EventError struct {
	Offset  uint64
	Problem string
}

func (e *EventError) Error() string { return fmt.Sprintf("offset %d: %s", e.Offset, e.Problem) }

// Write checks p, then writes it to the underlying writer. From the
// first bad event on, it takes the bytes without writing them, and Close
// fails: the reader goes on to its end, so that a fault it finds itself
// (a zstd bomb, a damaged object) is the error reported, being the cause.
func (c *FileChecker) Write(p []byte) (int, error) {
	if c.err != nil {
		return len(p), nil
	}
	if c.err = c.check(p); c.err != nil {
		return len(p), nil
	}
	return c.w.Write(p)
}

// Close says the file ended: it returns the first bad event, or an event
// cut short by the end, as an *EventError.
func (c *FileChecker) Close() error {
	if c.err != nil {
		return c.err
	}
	switch {
	case c.off < MagicLen:
		c.err = c.fail(0, "the file holds %d bytes, fewer than the binlog magic", len(c.pending))
	case len(c.pending) > 0:
		c.err = c.fail(c.off, "the file ends %d bytes into an event", len(c.pending))
	}
	return c.err
}

// check consumes p: whole events are checked in place, the start of an
// event not yet whole is kept in pending.
func (c *FileChecker) check(p []byte) error {
	for len(p) > 0 {
		if len(c.pending) > 0 || len(p) < c.need(p) {
			var err error
			if p, err = c.fill(p); err != nil || len(c.pending) < c.need(c.pending) {
				return err
			}
			ev := c.pending
			c.pending = c.pending[:0]
			if err := c.consume(ev); err != nil {
				return err
			}
			if cap(c.pending) > 1<<20 {
				c.pending = nil // do not keep a huge event's buffer
			}
			continue
		}
		n := c.need(p)
		if err := c.consume(p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// fill moves bytes of p into pending, up to the end of the pending item,
// and returns what is left of p.
func (c *FileChecker) fill(p []byte) ([]byte, error) {
	for len(p) > 0 {
		need := c.need(c.pending)
		if len(c.pending) >= need {
			return p, nil
		}
		k := min(need-len(c.pending), len(p))
		c.pending = append(c.pending, p[:k]...)
		p = p[k:]
		if len(c.pending) >= HeaderLen && c.off >= MagicLen {
			if err := c.header(c.pending); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

// need is how many bytes the item starting at b needs: the magic at offset
// 0, an event's header, then the event's size once the header is there.
func (c *FileChecker) need(b []byte) int {
	switch {
	case c.off < MagicLen:
		return MagicLen
	case len(b) < HeaderLen:
		return HeaderLen
	}
	h, _ := ParseHeader(b)
	if h.EventSize < HeaderLen {
		return HeaderLen // header() refuses it
	}
	return int(h.EventSize)
}

// header checks the length an event's header gives before anything
// relies on it.
func (c *FileChecker) header(b []byte) error {
	h, _ := ParseHeader(b)
	size := uint64(h.EventSize)
	switch {
	case size < HeaderLen:
		return c.fail(c.off, "%s event header says %d bytes, fewer than the header itself", h.Type, size)
	case size > MaxEventSize:
		return c.fail(c.off, "%s event header says %d bytes, more than the largest event a server writes (%d)", h.Type, size, uint64(MaxEventSize))
	case c.off+size > c.size:
		return c.fail(c.off, "%s event header says %d bytes, past the file's end at %d", h.Type, size, c.size)
	}
	return nil
}

// consume checks one whole item at c.off: the magic or an event.
func (c *FileChecker) consume(b []byte) error {
	if c.off == 0 {
		if !bytes.Equal(b, Magic) {
			return c.fail(0, "the file does not start with the binlog magic (fe 62 69 6e): % x", b)
		}
		c.off = MagicLen
		return nil
	}
	if err := c.header(b); err != nil {
		return err
	}
	if err := c.event(b); err != nil {
		return err
	}
	c.off += uint64(len(b))
	return nil
}

// event checks one whole event at c.off.
func (c *FileChecker) event(raw []byte) error {
	h, _ := ParseHeader(raw)
	end := c.off + uint64(len(raw))
	if c.off == MagicLen {
		if h.Type != gomysql.FORMAT_DESCRIPTION_EVENT {
			return c.fail(c.off, "the first event is %s, not a format description", h.Type)
		}
		aware, alg := FormatChecksum(raw)
		if aware && !HasChecksum(raw) {
			return c.fail(c.off, "CRC32 mismatch in the format description event")
		}
		if aware && alg != ChecksumNone && alg != ChecksumCRC32 {
			return c.fail(c.off, "the format description names checksum algorithm %d, neither NONE (0) nor CRC32 (1)", alg)
		}
		c.crc = aware && alg == ChecksumCRC32
	} else if c.crc && !HasChecksum(raw) {
		return c.fail(c.off, "CRC32 mismatch in %s event [%d,%d)", h.Type, c.off, end)
	}
	if h.LogPos != uint32(end) { // log_pos is 32 bits: past 4 GiB it wraps
		return c.fail(c.off, "%s event [%d,%d) has log_pos %d, want %d: its length or position is corrupt", h.Type, c.off, end, h.LogPos, uint32(end))
	}
	return nil
}

// fail is a bad file at offset off.
func (c *FileChecker) fail(off uint64, format string, args ...any) error {
	return &EventError{Offset: off, Problem: fmt.Sprintf(format, args...)}
}
