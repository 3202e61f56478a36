package serve

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/binarc/binarc/replication"
	"github.com/go-mysql-org/go-mysql/mysql"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// binlogFacts is what the archived events show of the primary's binlog
// settings, which the archive does not record: binlog_format and
// binlog_row_image.
type binlogFacts struct {
	Format   string // ROW, MIXED or STATEMENT
	RowImage string // FULL, NOBLOB or MINIMAL
}

// factsScanLimit bounds the bytes read to tell the settings: the first
// transactions of the newest files show them.
const factsScanLimit = 32 << 20

// binlogFacts reads the newest files (at most three, factsScanLimit
// bytes) until an update or delete shows the row image. The format is ROW
// when DML is logged as rows only, STATEMENT when as statements only,
// MIXED when both; a binlog_format=MIXED primary whose statements were all
// safe looks like STATEMENT, as its binlog does.
func (a *archiveState) binlogFacts(ctx context.Context) (*binlogFacts, error) {
	if a.facts != nil {
		return a.facts, nil
	}
	var sc factsScan
	read := uint64(0)
	for i := len(a.files) - 1; i >= 0 && i >= len(a.files)-3 && read < factsScanLimit && sc.image == ""; i-- {
		f := a.files[i]
		sc.grp = groups{}
		err := a.src.Read(ctx, f, replication.MagicLen, func(off uint64, h replication.Header, raw []byte) error {
			read += uint64(len(raw))
			sc.event(h, raw)
			if sc.image != "" || read >= factsScanLimit {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			return nil, fmt.Errorf("binarc serve: reading binlog=%s for the binlog settings: %w", f.Name, err)
		}
	}
	facts := &binlogFacts{RowImage: sc.image}
	switch {
	case sc.rows && sc.statements:
		facts.Format = "MIXED"
	case sc.rows:
		facts.Format = "ROW"
	case sc.statements:
		facts.Format = "STATEMENT"
	default:
		return nil, mysql.NewError(mysql.ER_NOT_SUPPORTED_YET, "binarc serve cannot tell binlog_format: the archive's newest files hold no data change to show it (the archive does not record the setting)")
	}
	if facts.RowImage == "" {
		if !sc.rows {
			facts.RowImage = "FULL" // statements only: the setting never showed; the server default
		} else {
			return nil, mysql.NewError(mysql.ER_NOT_SUPPORTED_YET, "binarc serve cannot tell binlog_row_image: the archive's newest files hold no update or delete to show it (the archive does not record the setting)")
		}
	}
	a.facts = facts
	return facts, nil
}

// factsScan follows events for binlogFacts.
type factsScan struct {
	grp        groups
	crc        bool
	types      map[uint64][]byte // table id -> column types, from table maps
	rows       bool
	statements bool
	image      string
}

func (sc *factsScan) event(h replication.Header, raw []byte) {
	switch h.Type {
	case gomysql.FORMAT_DESCRIPTION_EVENT:
		sc.crc = fileChecksum(raw)
		sc.grp.crc = sc.crc
	case gomysql.TABLE_MAP_EVENT:
		if id, types, ok := tableMapTypes(sc.body(raw)); ok {
			if sc.types == nil {
				sc.types = map[uint64][]byte{}
			}
			sc.types[id] = types
		}
	case gomysql.UPDATE_ROWS_EVENTv1, gomysql.DELETE_ROWS_EVENTv1, gomysql.UPDATE_ROWS_EVENTv2, gomysql.DELETE_ROWS_EVENTv2:
		sc.rows = true
		v2 := h.Type == gomysql.UPDATE_ROWS_EVENTv2 || h.Type == gomysql.DELETE_ROWS_EVENTv2
		if id, present, ok := rowsBeforeImage(sc.body(raw), v2); ok && sc.types[id] != nil {
			sc.image = rowImage(present, sc.types[id])
		}
	case gomysql.WRITE_ROWS_EVENTv1, gomysql.WRITE_ROWS_EVENTv2, gomysql.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1,
		gomysql.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1, gomysql.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1:
		sc.rows = true
	case gomysql.QUERY_EVENT:
		inTx := sc.grp.open && sc.grp.kind == groupTransaction
		if q := queryText(raw, sc.crc); inTx && !txControl(q) {
			sc.statements = true
		}
	}
	sc.grp.begins(0, h, raw)
	sc.grp.ends(h, raw)
}

// txControl tells a statement that only frames a transaction.
func txControl(q string) bool {
	for _, p := range []string{"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "XA ", "RELEASE SAVEPOINT"} {
		if strings.HasPrefix(q, p) {
			return true
		}
	}
	return false
}

func (sc *factsScan) body(raw []byte) []byte {
	b := raw[replication.HeaderLen:]
	if sc.crc && len(b) >= 4 {
		b = b[:len(b)-4]
	}
	return b
}

// tableMapTypes reads a TABLE_MAP_EVENT body: table id (6), flags (2),
// schema (length, name, NUL), table (length, name, NUL), column count
// (packed), column types.
func tableMapTypes(b []byte) (uint64, []byte, bool) {
	if len(b) < 9 {
		return 0, nil, false
	}
	id := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 | uint64(b[4])<<32 | uint64(b[5])<<40
	p := 8
	for range 2 {
		if p >= len(b) {
			return 0, nil, false
		}
		p += 1 + int(b[p]) + 1
	}
	if p >= len(b) {
		return 0, nil, false
	}
	n, _, m := mysql.LengthEncodedInt(b[p:])
	p += m
	if p+int(n) > len(b) {
		return 0, nil, false
	}
	return id, b[p : p+int(n)], true
}

// rowsBeforeImage reads an update or delete rows event body: table id
// (6), flags (2), in v2 extra data (its length, 2, counts itself), column
// count (packed), then the bitmap of the columns the before image holds.
func rowsBeforeImage(b []byte, v2 bool) (uint64, []bool, bool) {
	if len(b) < 9 {
		return 0, nil, false
	}
	id := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 | uint64(b[4])<<32 | uint64(b[5])<<40
	p := 8
	if v2 {
		p += int(b[8]) | int(b[9])<<8
	}
	if p >= len(b) {
		return 0, nil, false
	}
	n, _, m := mysql.LengthEncodedInt(b[p:])
	p += m
	if p+int(n+7)/8 > len(b) {
		return 0, nil, false
	}
	present := make([]bool, n)
	for i := range present {
		present[i] = b[p+i/8]&(1<<(i%8)) != 0
	}
	return id, present, true
}

// rowImage tells binlog_row_image from a before image: every column
// (FULL), every column but blobs (NOBLOB), or fewer (MINIMAL).
func rowImage(present []bool, types []byte) string {
	image := "FULL"
	for i, in := range present {
		if in {
			continue
		}
		if i < len(types) && isBlob(types[i]) {
			image = "NOBLOB"
			continue
		}
		return "MINIMAL"
	}
	return image
}

func isBlob(t byte) bool {
	switch t {
	case mysql.MYSQL_TYPE_TINY_BLOB, mysql.MYSQL_TYPE_MEDIUM_BLOB, mysql.MYSQL_TYPE_LONG_BLOB, mysql.MYSQL_TYPE_BLOB,
		mysql.MYSQL_TYPE_JSON, mysql.MYSQL_TYPE_GEOMETRY:
		return true
	}
	return false
}

// mysqlExecuted is MySQL's gtid_executed at the archive's end.
func (a *archiveState) mysqlExecuted() string {
	return mysqlExecutedAt(a.head, a.files[len(a.files)-1]).String()
}
