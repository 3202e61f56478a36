package binlogtest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// File builds a whole MariaDB binlog file in memory: the magic, a format
// description, a Gtid_list with the GTID state at its start (unless
// made with NewFileNoState), then the transactions added with Tx.
type File struct {
	*Binlog
	buf bytes.Buffer
	// Starts maps a GTID to the offset of its GTID event, Ends to the
	// offset just past its transaction.
	Starts, Ends map[string]uint64
}

// NewFile starts a file whose Gtid_list holds start (MariaDB GTIDs,
// the last of each domain and server).
func NewFile(name string, start ...string) *File {
	return withState(NewFileNoState(name), start)
}

// NewFileAt is NewFile with the file's first events (its format
// description and Gtid_list) written at ts.
func NewFileAt(name string, ts time.Time, start ...string) *File {
	b := New(name)
	b.TS = uint32(ts.Unix())
	return withState(noState(b), start)
}

func withState(f *File, start []string) *File {
	body := binary.LittleEndian.AppendUint32(nil, uint32(len(start)))
	for _, g := range start {
		d, s, n := mustMariaGTID(g)
		body = binary.LittleEndian.AppendUint32(body, d)
		body = binary.LittleEndian.AppendUint32(body, s)
		body = binary.LittleEndian.AppendUint64(body, n)
	}
	f.add(f.NextBody(gomysql.MARIADB_GTID_LIST_EVENT, body))
	return f
}

// NewFileNoState starts a file without a Gtid_list: a server with GTIDs
// off, or one too old to write it.
func NewFileNoState(name string) *File { return noState(New(name)) }

func noState(b *Binlog) *File {
	f := &File{Binlog: b, Starts: map[string]uint64{}, Ends: map[string]uint64{}}
	f.buf.Write(replication.Magic)
	f.add(f.NextBody(gomysql.FORMAT_DESCRIPTION_EVENT, make([]byte, 80)))
	return f
}

func (f *File) add(ev replication.Event) { f.buf.Write(ev.Raw) }

// Tx appends a transaction with MariaDB GTID d-s-n (GTID, BEGIN, a row
// event, XID) at time ts.
func (f *File) Tx(g string, ts time.Time) {
	f.gtid(g, ts)
	f.body(ts)
	f.Ends[g] = f.Pos
}

// Group appends a group of query events alone with MariaDB GTID d-s-n at
// ts: a DDL (standalone, FL_STANDALONE set) or a statement-based group
// on a non-transactional table (the statements, then a COMMIT query).
func (f *File) Group(g string, ts time.Time, standalone bool, stmts ...string) {
	var flags byte
	if standalone {
		flags = 0x01
	}
	f.gtidFlags(g, ts, flags)
	for _, q := range stmts {
		f.TS = uint32(ts.Unix())
		f.add(f.NextBody(gomysql.QUERY_EVENT, QueryBody(q)))
	}
	f.Ends[g] = f.Pos
}

// gtid appends the GTID event of d-s-n at ts.
func (f *File) gtid(g string, ts time.Time) { f.gtidFlags(g, ts, 0) }

func (f *File) gtidFlags(g string, ts time.Time, flags byte) {
	d, s, n := mustMariaGTID(g)
	f.ServerID = s
	body := MariaGTIDBody(n, flags)
	binary.LittleEndian.PutUint32(body[8:], d)
	f.Starts[g] = f.Pos
	f.TS = uint32(ts.Unix())
	f.add(f.NextBody(gomysql.MARIADB_GTID_EVENT, body))
}

// Begin appends the start of a transaction with MariaDB GTID d-s-n (its
// GTID event and BEGIN) whose commit is not in the file (yet): what an
// archive holds of a transaction the primary was still writing.
func (f *File) Begin(g string, ts time.Time) {
	f.gtid(g, ts)
	f.add(f.NextBody(gomysql.QUERY_EVENT, QueryBody("BEGIN")))
}

// TxStatements appends a statement-based transaction with MariaDB GTID
// d-s-n at time ts as MariaDB writes it: the GTID event (which is the
// BEGIN: no BEGIN query follows), each statement as a query event, then
// the XID.
func (f *File) TxStatements(g string, ts time.Time, stmts ...string) {
	f.gtid(g, ts)
	for _, q := range stmts {
		f.TS = uint32(ts.Unix())
		f.add(f.NextBody(gomysql.QUERY_EVENT, QueryBody(q)))
	}
	f.TS = uint32(ts.Unix())
	f.add(f.Next(gomysql.XID_EVENT, 31))
	f.Ends[g] = f.Pos
}

// TxNoGTID appends a transaction without a GTID event (BEGIN, a row
// event, XID) at time ts, as a server with GTIDs off writes it.
func (f *File) TxNoGTID(ts time.Time) {
	f.body(ts)
}

func (f *File) body(ts time.Time) {
	f.TS = uint32(ts.Unix())
	f.add(f.NextBody(gomysql.QUERY_EVENT, QueryBody("BEGIN")))
	f.TS = uint32(ts.Unix())
	f.add(f.Next(gomysql.WRITE_ROWS_EVENTv1, 60))
	f.TS = uint32(ts.Unix())
	f.add(f.Next(gomysql.XID_EVENT, 31))
}

// Bytes is the file so far.
func (f *File) Bytes() []byte { return f.buf.Bytes() }

func mustMariaGTID(g string) (domain, server uint32, seq uint64) {
	p := strings.Split(g, "-")
	if len(p) != 3 {
		panic(fmt.Sprintf("binlogtest: %q is not a MariaDB GTID", g))
	}
	d, e1 := strconv.ParseUint(p[0], 10, 32)
	s, e2 := strconv.ParseUint(p[1], 10, 32)
	n, e3 := strconv.ParseUint(p[2], 10, 64)
	if e1 != nil || e2 != nil || e3 != nil {
		panic(fmt.Sprintf("binlogtest: %q is not a MariaDB GTID", g))
	}
	return uint32(d), uint32(s), n
}
