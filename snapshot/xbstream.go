package snapshot

import (
	"encoding/binary"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// XbstreamScanner follows the chunk structure of an xbstream as it is
// written, without holding it, to pick out one small file: the binlog
// coordinates mariabackup records (xtrabackup_binlog_info, renamed
// mariadb_backup_binlog_info in MariaDB 11). It also counts chunks and
// files, and notices a stream that is not xbstream or ends mid-chunk, which
// verify reports.
//
// The format (MariaDB extra/mariabackup/xbstream.h), little-endian:
//
//	chunk   := magic "XBSTCK01" | flags u8 | type u8 | pathlen u32 | path
//	           then, for type 'P' (payload): length u64 | offset u64 | crc32 u32 | payload
//	           for type 'E' (end of file): nothing
//
// A file is a run of 'P' chunks closed by one 'E' chunk.
type XbstreamScanner struct {
	state     int
	buf       []byte
	need      int
	typ       byte
	path      string
	remaining uint64
	capture   bool

	binlogInfo []byte
	chunks     int64
	files      int64
	err        error
}

const (
	xbFixed = iota
	xbPath
	xbPayloadHeader
	xbPayload
)

const (
	xbMagic          = "XBSTCK01"
	xbFixedLen       = len(xbMagic) + 1 + 1 + 4
	xbPayloadHdrLen  = 8 + 8 + 4
	xbMaxPath        = 4096
	xbMaxCaptureSize = 64 << 10
)

// NewXbstreamScanner starts at the beginning of a stream.
func NewXbstreamScanner() *XbstreamScanner {
	return &XbstreamScanner{need: xbFixedLen}
}

// Write consumes stream bytes. It never fails, so the scanner cannot break
// the backup it watches; Err reports what it found.
func (x *XbstreamScanner) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && x.err == nil {
		if x.state == xbPayload {
			k := uint64(len(p))
			if k > x.remaining {
				k = x.remaining
			}
			if x.capture && len(x.binlogInfo) < xbMaxCaptureSize {
				x.binlogInfo = append(x.binlogInfo, p[:k]...)
			}
			x.remaining -= k
			p = p[k:]
			if x.remaining == 0 {
				x.expect(xbFixed, xbFixedLen)
			}
			continue
		}
		k := min(len(p), x.need-len(x.buf))
		x.buf = append(x.buf, p[:k]...)
		p = p[k:]
		for len(x.buf) == x.need && x.err == nil && x.state != xbPayload {
			x.advance()
		}
	}
	return n, nil
}

func (x *XbstreamScanner) expect(state, need int) {
	x.state, x.need, x.buf = state, need, x.buf[:0]
}

func (x *XbstreamScanner) advance() {
	switch x.state {
	case xbFixed:
		if string(x.buf[:len(xbMagic)]) != xbMagic {
			x.err = fmt.Errorf("xbstream: chunk %d does not start with %q", x.chunks+1, xbMagic)
			return
		}
		x.typ = x.buf[len(xbMagic)+1]
		plen := binary.LittleEndian.Uint32(x.buf[len(xbMagic)+2:])
		if plen == 0 || plen > xbMaxPath {
			x.err = fmt.Errorf("xbstream: chunk %d has a path of %d bytes", x.chunks+1, plen)
			return
		}
		x.expect(xbPath, int(plen))
	case xbPath:
		x.path = string(x.buf)
		x.chunks++
		switch x.typ {
		case 'E':
			x.files++
			x.expect(xbFixed, xbFixedLen)
		case 'P':
			x.expect(xbPayloadHeader, xbPayloadHdrLen)
		default:
			x.err = fmt.Errorf("xbstream: chunk %d (%s) has unknown type %q", x.chunks, x.path, x.typ)
		}
	case xbPayloadHeader:
		x.remaining = binary.LittleEndian.Uint64(x.buf)
		base := path.Base(x.path)
		x.capture = base == "xtrabackup_binlog_info" || base == "mariadb_backup_binlog_info"
		if x.remaining == 0 {
			x.expect(xbFixed, xbFixedLen)
		} else {
			x.state, x.buf = xbPayload, x.buf[:0]
		}
	}
}

// Chunks is how many chunks were seen.
func (x *XbstreamScanner) Chunks() int64 { return x.chunks }

// Files is how many files were closed.
func (x *XbstreamScanner) Files() int64 { return x.files }

// Err is the first structural problem seen, or, called at the end of the
// stream, a stream cut mid-chunk.
func (x *XbstreamScanner) Err(atEnd bool) error {
	if x.err != nil {
		return x.err
	}
	if atEnd && (x.state != xbFixed || len(x.buf) != 0) {
		return fmt.Errorf("xbstream: the stream ends in the middle of chunk %d (%s)", x.chunks+1, x.path)
	}
	if atEnd && x.chunks == 0 {
		return fmt.Errorf("xbstream: the stream is empty")
	}
	return nil
}

// parseBinlogInfo reads xtrabackup_binlog_info: "FILE\tPOS[\tGTID]\n", the
// server's own binlog position at the backup's consistent point.
func parseBinlogInfo(b []byte) (Coordinates, error) {
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	f := strings.Split(line, "\t")
	if len(f) < 2 || f[0] == "" {
		return Coordinates{}, fmt.Errorf("xtrabackup_binlog_info %q: want FILE<TAB>POS[<TAB>GTID]", line)
	}
	pos, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return Coordinates{}, fmt.Errorf("xtrabackup_binlog_info %q: bad position", line)
	}
	c := Coordinates{File: f[0], Pos: pos, From: "mariabackup"}
	if len(f) > 2 {
		c.GTIDSet = strings.TrimSpace(f[2])
	}
	return c, nil
}

// coordinates are the binlog coordinates mariabackup recorded in the
// stream; call it once the stream has ended.
func (x *XbstreamScanner) coordinates() (Coordinates, error) {
	if err := x.Err(true); err != nil {
		return Coordinates{}, fmt.Errorf("read the coordinates from mariabackup's stream: %w", err)
	}
	if len(x.binlogInfo) == 0 {
		return Coordinates{}, fmt.Errorf("mariabackup wrote no xtrabackup_binlog_info: is binary logging on? A primary without a binlog has no coordinates to replay from")
	}
	return parseBinlogInfo(x.binlogInfo)
}
