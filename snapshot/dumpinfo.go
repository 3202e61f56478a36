package snapshot

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
)

// dumpScanner picks the binlog coordinates out of mariadb-dump/mysqldump
// --master-data=2 output as it streams past: the commented CHANGE MASTER
// line near the top and, with --gtid, the gtid_slave_pos line MariaDB
// writes near the end. It looks only at lines that start like those, and
// skips the rest with a byte search.
type dumpScanner struct {
	line     []byte
	skipping bool
	found    [][]byte
}

// dumpInfoPrefixes are the starts of the lines dumpScanner keeps.
var dumpInfoPrefixes = [][]byte{
	[]byte("-- CHANGE MASTER TO MASTER_LOG_FILE="),
	[]byte("-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE="),
	[]byte("-- SET GLOBAL gtid_slave_pos="),
	[]byte("SET @@GLOBAL.GTID_PURGED="),
}

const dumpMaxInfoLine = 4096

func (d *dumpScanner) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if d.skipping {
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				return n, nil
			}
			p = p[i+1:]
			d.skipping = false
			continue
		}
		i := bytes.IndexByte(p, '\n')
		end := len(p)
		if i >= 0 {
			end = i
		}
		d.line = append(d.line, p[:end]...)
		if !d.candidate() {
			d.line = d.line[:0]
			d.skipping = i < 0
			if i < 0 {
				return n, nil
			}
			p = p[i+1:]
			continue
		}
		if i < 0 {
			return n, nil
		}
		d.found = append(d.found, bytes.Clone(d.line))
		d.line = d.line[:0]
		p = p[i+1:]
	}
	return n, nil
}

// candidate tells whether the line collected so far may still be one of
// the kept ones.
func (d *dumpScanner) candidate() bool {
	if len(d.line) > dumpMaxInfoLine {
		return false
	}
	for _, pre := range dumpInfoPrefixes {
		k := min(len(pre), len(d.line))
		if bytes.Equal(d.line[:k], pre[:k]) {
			return true
		}
	}
	return false
}

var (
	dumpFilePos = regexp.MustCompile(`(?:MASTER|SOURCE)_LOG_FILE='([^']+)', (?:MASTER|SOURCE)_LOG_POS=(\d+)`)
	dumpGTID    = regexp.MustCompile(`(?:gtid_slave_pos|GTID_PURGED)=(?:/\*!80000 '\+'\*/ )?'([^']*)'`)
)

// coordinates returns what the dump recorded.
func (d *dumpScanner) coordinates() (Coordinates, error) {
	c := Coordinates{From: "dump"}
	for _, l := range d.found {
		if m := dumpFilePos.FindSubmatch(l); m != nil && c.File == "" {
			c.File = string(m[1])
			c.Pos, _ = strconv.ParseUint(string(m[2]), 10, 64)
		}
		if m := dumpGTID.FindSubmatch(l); m != nil && c.GTIDSet == "" {
			c.GTIDSet = string(m[1])
		}
	}
	if c.File == "" {
		return c, fmt.Errorf("the dump has no CHANGE MASTER line (--master-data=2): is binary logging on on the server?")
	}
	return c, nil
}
