package replication_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/binarc/binarc/internal/binlogtest"
	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// checkedFile is a well-formed binlog file of a format description (with
// CRC32), ten row events and a ROTATE, and the offset of each event.
func checkedFile() ([]byte, []uint64) {
	b := binlogtest.New("mysql-bin.000001")
	data := append([]byte(nil), replication.Magic...)
	var offs []uint64
	add := func(ev replication.Event) {
		offs = append(offs, ev.Start)
		data = append(data, ev.Raw...)
	}
	add(b.FormatDescription(replication.ChecksumCRC32))
	for i := 0; i < 10; i++ {
		add(b.Next(gomysql.WRITE_ROWS_EVENTv1, 200+i))
	}
	add(b.Next(gomysql.ROTATE_EVENT, binlogtest.RotateSize))
	return data, offs
}

// TestFileCheckerChunks: the checker finds the same events whatever the
// sizes of the writes, down to one byte, and the same fault at the same
// offset, writing nothing past the bad event.
func TestFileCheckerChunks(t *testing.T) {
	data, offs := checkedFile()
	size := uint64(len(data))
	bad := append([]byte(nil), data...)
	bad[offs[6]+25] ^= 0x80
	for _, chunk := range []int{1, 3, 19, 20, 23, 500, len(data)} {
		var out bytes.Buffer
		c := replication.NewFileChecker(&out, size)
		if err := writeChunks(c, data, chunk); err != nil || c.Close() != nil {
			t.Fatalf("chunks of %d: %v", chunk, err)
		}
		if !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("chunks of %d: the checker changed the bytes", chunk)
		}
		out.Reset()
		c = replication.NewFileChecker(&out, size)
		if err := writeChunks(c, bad, chunk); err != nil {
			t.Fatalf("chunks of %d: a Write failed (%v): the reader must go on to its end", chunk, err)
		}
		var ee *replication.EventError
		if err := c.Close(); !errors.As(err, &ee) || ee.Offset != offs[6] || !strings.Contains(err.Error(), "CRC32 mismatch") {
			t.Fatalf("chunks of %d, a flipped bit at %d: %v; want a CRC32 mismatch at %d", chunk, offs[6]+25, err, offs[6])
		}
		if uint64(out.Len()) >= offs[7]+uint64(chunk) {
			t.Fatalf("chunks of %d: %d bytes written, past the bad event [%d,%d)", chunk, out.Len(), offs[6], offs[7])
		}
		c = replication.NewFileChecker(&bytes.Buffer{}, size)
		must(t, writeChunks(c, data[:len(data)-3], chunk))
		if err := c.Close(); err == nil || !strings.Contains(err.Error(), "into an event") {
			t.Fatalf("chunks of %d: a file cut inside an event closes with %v", chunk, err)
		}
	}
}

// TestFileCheckerRefuses: each malformed event is named with its offset.
func TestFileCheckerRefuses(t *testing.T) {
	data, offs := checkedFile()
	setSize := func(n uint32) func([]byte) { return func(ev []byte) { putUint32(ev[9:], n) } }
	grow := func(d int) func([]byte) {
		return func(ev []byte) { putUint32(ev[9:], uint32(int(getUint32(ev[9:]))+d)) }
	}
	for _, c := range []struct {
		name   string
		event  int
		change func(ev []byte)
		want   string
	}{
		{"length 8 too long", 4, grow(8), "CRC32 mismatch"},
		{"length 8 too short", 5, grow(-8), "CRC32 mismatch"},
		{"length past the end", 7, setSize(1 << 29), "past the file's end"},
		{"length past any event", 7, setSize(0xffffffff), "more than the largest event"},
		{"length under a header", 4, setSize(5), "fewer than the header"},
		{"log_pos, CRC32 valid", 3, func(ev []byte) { putUint32(ev[13:], 12); resum(ev) }, "has log_pos 12"},
		{"not a format description first", 0, func(ev []byte) { ev[4] = byte(gomysql.QUERY_EVENT) }, "not a format description"},
		{"format description CRC32", 0, func(ev []byte) { ev[40] ^= 1 }, "CRC32 mismatch in the format description"},
	} {
		bad := append([]byte(nil), data...)
		c.change(bad[offs[c.event]:])
		ch := replication.NewFileChecker(&bytes.Buffer{}, uint64(len(bad)))
		must(t, writeChunks(ch, bad, 7))
		want := fmt.Sprintf("offset %d: ", offs[c.event])
		if err := ch.Close(); err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want %q…%q", c.name, err, want, c.want)
		}
	}
	ch := replication.NewFileChecker(&bytes.Buffer{}, uint64(len(data)))
	must(t, writeChunks(ch, append([]byte("xbin"), data[4:]...), 7))
	if err := ch.Close(); err == nil || !strings.Contains(err.Error(), "offset 0: the file does not start with the binlog magic") {
		t.Errorf("no magic: %v", err)
	}
}

// TestFileCheckerWithoutChecksums: a file whose format description says
// NONE is checked for lengths and log_pos, not CRC32s.
func TestFileCheckerWithoutChecksums(t *testing.T) {
	b := binlogtest.New("mysql-bin.000001")
	data := append([]byte(nil), replication.Magic...)
	data = append(data, b.FormatDescription(replication.ChecksumNone).Raw...)
	ev := b.Next(gomysql.WRITE_ROWS_EVENTv1, 100)
	ev.Raw[99] ^= 1 // its last 4 bytes are no checksum here
	data = append(data, ev.Raw...)
	ch := replication.NewFileChecker(&bytes.Buffer{}, uint64(len(data)))
	must(t, writeChunks(ch, data, 11))
	must(t, ch.Close())
	putUint32(data[ev.Start+9:], 108) // and its log_pos no longer its end
	data = append(data, make([]byte, 8)...)
	ch = replication.NewFileChecker(&bytes.Buffer{}, uint64(len(data)))
	must(t, writeChunks(ch, data, 11))
	if err := ch.Close(); err == nil || !strings.Contains(err.Error(), "has log_pos") {
		t.Fatalf("a longer event without checksums: %v; want its log_pos named", err)
	}
}

func writeChunks(c *replication.FileChecker, data []byte, chunk int) error {
	for len(data) > 0 {
		n := min(chunk, len(data))
		if _, err := c.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

func putUint32(b []byte, v uint32) { binary.LittleEndian.PutUint32(b, v) }

func getUint32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

// resum gives the event at the start of ev a valid CRC32 again.
func resum(ev []byte) {
	n := getUint32(ev[9:])
	putUint32(ev[n-4:], crc32.ChecksumIEEE(ev[:n-4]))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
