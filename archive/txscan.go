package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/binarc/binarc/internal/redact"

	"github.com/binarc/binarc/replication"
	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

// Transaction is one event group of a binlog file: from its GTID event (or
// BEGIN, or lone statement) to its commit.
type Transaction struct {
	// Timeline is the archive timeline the file is in, when known.
	Timeline string
	File     string
	Start    uint64 // offset of its first event
	End      uint64 // offset just past its last event: a safe stop position
	// Time is the header time of its first event, when the statement
	// began on the primary (one-second resolution).
	Time       time.Time
	GTID       string
	Statements []string // query texts: DDL, BEGIN…COMMIT statements, annotated row statements
	Tables     []string // db.table of row events
}

// Summary is a one-line description for listings.
func (t *Transaction) Summary() string {
	var parts []string
	for _, s := range t.Statements {
		if u := strings.ToUpper(strings.TrimSpace(s)); u == "BEGIN" || u == "COMMIT" {
			continue
		}
		parts = append(parts, strings.Join(strings.Fields(s), " "))
	}
	if len(parts) == 0 && len(t.Tables) > 0 {
		parts = append(parts, "rows in "+strings.Join(t.Tables, ", "))
	}
	// Statement text comes from the bucket: no passwords, no terminal
	// control sequences.
	return redact.Statement(strings.Join(parts, "; "))
}

// errStopScan ends a scan early.
var errStopScan = errors.New("stop scanning")

// scanTransactions reads the events of a binlog file from r, positioned at
// offset from (an event boundary, or 0 for the file's start), and calls fn
// with each complete transaction until fn says stop. checksums says whether
// the file's events end with a CRC32; its format description says so, and
// a scan from offset 0 reads it there. An event group still open at the end
// is not reported (it is not committed in the file); open is where it
// starts, 0 when there is none. A group that never ends before the next
// one begins (an event type this scan does not know ends a group) is
// reported as ending where the next begins. Memory is one event.
//
// A MariaDB GTID event without FL_STANDALONE is the group's BEGIN (the
// server writes no BEGIN query after it): its group ends at an XID, a
// COMMIT or ROLLBACK query or an XA PREPARE, whatever statements come
// first. A MySQL GTID event is followed by a BEGIN query for a
// transaction, or by the single statement of its group.
func scanTransactions(file string, r io.Reader, from uint64, checksums bool, fn func(*Transaction) (bool, error)) (open uint64, err error) {
	if from < replication.MagicLen {
		from = 0
	}
	sc := &txScan{file: file, fn: fn}
	if checksums {
		sc.crcLen = 4
	}
	err = replication.ReadEvents(r, from, sc.event)
	if errors.Is(err, errStopScan) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("binlog=%s: %w", file, err)
	}
	if sc.cur != nil {
		open = sc.cur.Start
	}
	return open, nil
}

// txScan is scanTransactions' state: the group being read, and how it
// ends.
type txScan struct {
	file   string
	fn     func(*Transaction) (bool, error)
	crcLen int
	cur    *Transaction
	// standalone: the group is its GTID event's one statement;
	// inBegin: it ends only at its commit.
	standalone, inBegin bool
}

// event reads one event at offset off.
func (sc *txScan) event(off uint64, h replication.Header, raw []byte) error {
	if h.Type == gomysql.FORMAT_DESCRIPTION_EVENT {
		if replication.HasChecksum(raw) {
			sc.crcLen = 4
		}
		return nil
	}
	body := raw[replication.HeaderLen : len(raw)-min(sc.crcLen, len(raw)-replication.HeaderLen)]
	end := off + uint64(h.EventSize)
	switch h.Type {
	case gomysql.MARIADB_GTID_EVENT:
		if err := sc.begin(off, h); err != nil {
			return err
		}
		sc.cur.GTID = replication.ParseGTID(raw)
		// flags byte after seq_no (8) and domain_id (4): FL_STANDALONE
		// (1) means no BEGIN…COMMIT: the next event is the whole group.
		// Without it the GTID event is the BEGIN.
		sc.standalone = len(body) > 12 && body[12]&0x01 != 0
		sc.inBegin = !sc.standalone
	case gomysql.GTID_EVENT, gomysql.ANONYMOUS_GTID_EVENT:
		if err := sc.begin(off, h); err != nil {
			return err
		}
		sc.cur.GTID = replication.ParseGTID(raw)
	case gomysql.XID_EVENT, gomysql.XA_PREPARE_LOG_EVENT, gomysql.TRANSACTION_PAYLOAD_EVENT:
		// The commit, an XA transaction's prepared half, or MySQL's
		// compressed transaction (the whole group in one event).
		if sc.cur != nil {
			return sc.endAt(end)
		}
	case gomysql.QUERY_EVENT, gomysql.MARIADB_QUERY_COMPRESSED_EVENT:
		return sc.query(off, end, h, body)
	case gomysql.EXECUTE_LOAD_QUERY_EVENT:
		// A statement-based LOAD DATA: a statement of its group (the
		// group's commit ends it), listed and found by --grep.
		if sc.cur != nil {
			sc.cur.Statements = append(sc.cur.Statements, replication.ExecuteLoadQueryText(body))
		}
	case gomysql.MARIADB_ANNOTATE_ROWS_EVENT, gomysql.ROWS_QUERY_EVENT:
		if sc.cur != nil {
			q := body
			if h.Type == gomysql.ROWS_QUERY_EVENT && len(q) > 0 {
				q = q[1:] // MySQL: a length byte first
			}
			sc.cur.Statements = append(sc.cur.Statements, string(q))
		}
	case gomysql.TABLE_MAP_EVENT:
		if sc.cur != nil {
			if name := replication.TableMapName(body); name != "" && !slices.Contains(sc.cur.Tables, name) {
				sc.cur.Tables = append(sc.cur.Tables, name)
			}
		}
	}
	return nil
}

// query reads a query event [off, end): a BEGIN, a commit, a statement
// of the open group, or a group of its own.
func (sc *txScan) query(off, end uint64, h replication.Header, body []byte) error {
	q := replication.QueryText(body)
	if h.Type == gomysql.MARIADB_QUERY_COMPRESSED_EVENT && q != "" {
		q = "(compressed query)"
	}
	if sc.cur == nil {
		if err := sc.begin(off, h); err != nil {
			return err
		}
	}
	sc.cur.Statements = append(sc.cur.Statements, q)
	uq := strings.ToUpper(strings.TrimSpace(q))
	switch {
	case uq == "BEGIN" || strings.HasPrefix(uq, "XA START"):
		sc.inBegin = true
	case uq == "COMMIT" || uq == "ROLLBACK" || strings.HasPrefix(uq, "XA COMMIT") || strings.HasPrefix(uq, "XA ROLLBACK"):
		return sc.endAt(end)
	case sc.standalone || !sc.inBegin:
		return sc.endAt(end) // DDL and other single-statement groups
	}
	return nil
}

// begin starts a group at off, ending the open one there first (a group
// whose end this scan does not know).
func (sc *txScan) begin(off uint64, h replication.Header) error {
	if sc.cur != nil {
		if err := sc.endAt(off); err != nil {
			return err
		}
	}
	sc.cur = &Transaction{File: sc.file, Start: off, Time: time.Unix(int64(h.Timestamp), 0).UTC()}
	sc.standalone, sc.inBegin = false, false
	return nil
}

// endAt ends the open group at end and reports it.
func (sc *txScan) endAt(end uint64) error {
	t := sc.cur
	t.End, sc.cur = end, nil
	more, err := sc.fn(t)
	if err == nil && !more {
		err = errStopScan
	}
	return err
}

// scanFile scans a rebuilt binlog file from offset from. The checksum
// setting comes from the file's own format description, at offset 4,
// whatever offset the scan starts at. open is as scanTransactions says.
func scanFile(file string, f io.ReadSeeker, from uint64, fn func(*Transaction) (bool, error)) (open uint64, err error) {
	checksums := false
	err = replication.ReadEvents(f, 0, func(_ uint64, h replication.Header, raw []byte) error {
		if h.Type != gomysql.FORMAT_DESCRIPTION_EVENT {
			return fmt.Errorf("first event is %s, not a format description", h.Type)
		}
		checksums = replication.HasChecksum(raw)
		return errStopScan
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return 0, fmt.Errorf("binlog=%s: %w", file, err)
	}
	if _, err := f.Seek(int64(max(from, replication.MagicLen)), io.SeekStart); err != nil {
		return 0, err
	}
	if from < replication.MagicLen {
		from = replication.MagicLen
	}
	return scanTransactions(file, f, from, checksums, fn)
}

// Transactions streams an archived file and calls fn with each committed
// transaction in it, in order, until fn returns false.
func Transactions(ctx context.Context, c Catalog, fs *FileState, fn func(*Transaction) bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	rebuilt := make(chan error, 1)
	go func() {
		_, err := c.Rebuild(ctx, fs, pw)
		pw.CloseWithError(err)
		rebuilt <- err
	}()
	_, err := scanTransactions(fs.File, pr, 0, false, func(t *Transaction) (bool, error) { return fn(t), nil })
	pr.CloseWithError(errStopScan) // unblock the rebuild if we stopped early
	cancel()
	// A rebuild that failed (an encrypted file without its key, a corrupt
	// segment) is why the scan failed: say that, not what the scanner saw.
	if rerr := <-rebuilt; err != nil && rerr != nil && !errors.Is(rerr, errStopScan) && !errors.Is(rerr, context.Canceled) {
		return rerr
	}
	return err
}
