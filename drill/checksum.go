package drill

import (
	"fmt"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
)

// The checksum is pt-table-checksum's approach (not its code): a table is
// cut into chunks by ranges of its primary key, sized so that one chunk
// takes about the chunk time on the restored server; each chunk's
// checksum is COUNT(*) and BIT_XOR(CRC32(CONCAT_WS(columns, null map)))
// over the range, computed the same way on both sides. The chunks are
// cut and summed on the restored server first, so the replica is paused
// only for its own sums.

// table is one user table and what its checksum needs.
type table struct {
	Schema, Name string
	Cols         []string // every column, in order
	PK           []string // primary key columns, in order; empty when none
}

func (t table) String() string { return t.Schema + "." + t.Name }

// quoted is `schema`.`name`.
func (t table) quoted() string { return quoteIdent(t.Schema) + "." + quoteIdent(t.Name) }

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// systemSchemas are not compared: they hold each server's own state.
const systemSchemas = "'mysql','information_schema','performance_schema','sys'"

// listTables lists the base tables outside the system schemas, with
// their columns and primary keys.
func listTables(conn *client.Conn) ([]table, error) {
	r, err := conn.Execute("SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c " +
		"JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name " +
		"WHERE t.table_type = 'BASE TABLE' AND c.table_schema NOT IN (" + systemSchemas + ") " +
		"ORDER BY c.table_schema, c.table_name, c.ordinal_position")
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var out []table
	for i := range r.RowNumber() {
		schema, _ := r.GetString(i, 0)
		name, _ := r.GetString(i, 1)
		col, _ := r.GetString(i, 2)
		if len(out) == 0 || out[len(out)-1].Schema != schema || out[len(out)-1].Name != name {
			out = append(out, table{Schema: schema, Name: name})
		}
		t := &out[len(out)-1]
		t.Cols = append(t.Cols, col)
	}
	return out, orderPKs(conn, out)
}

// orderPKs sets each table's primary key columns, in the key's order.
func orderPKs(conn *client.Conn, ts []table) error {
	r, err := conn.Execute("SELECT table_schema, table_name, column_name FROM information_schema.key_column_usage " +
		"WHERE constraint_name = 'PRIMARY' AND table_schema NOT IN (" + systemSchemas + ") ORDER BY table_schema, table_name, ordinal_position")
	if err != nil {
		return fmt.Errorf("list primary keys: %w", err)
	}
	pks := map[string][]string{}
	for i := range r.RowNumber() {
		schema, _ := r.GetString(i, 0)
		name, _ := r.GetString(i, 1)
		col, _ := r.GetString(i, 2)
		pks[schema+"."+name] = append(pks[schema+"."+name], col)
	}
	for i := range ts {
		ts[i].PK = pks[ts[i].String()]
	}
	return nil
}

// chunk is one range of a table's primary key: after Lower (nil: from
// the start) up to and including Upper (nil: to the end).
type chunk struct {
	Lower, Upper []any
	Rows         int64
	Sum          int64 // BIT_XOR of the rows' CRC32
	// Took is how long the sum took on the restored server: what the
	// replica's sum is expected to take, against the pause budget.
	Took time.Duration
}

// rowHash is the expression whose BIT_XOR is a chunk's checksum: every
// column's value, and which of them are NULL (CONCAT_WS skips NULLs).
func (t table) rowHash() string {
	cols := make([]string, len(t.Cols))
	nulls := make([]string, len(t.Cols))
	for i, c := range t.Cols {
		cols[i] = quoteIdent(c)
		nulls[i] = "ISNULL(" + quoteIdent(c) + ")"
	}
	return "CRC32(CONCAT_WS('#', " + strings.Join(cols, ", ") + ", CONCAT(" + strings.Join(nulls, ", ") + ")))"
}

// after is the condition "primary key > values", expanded so the index
// serves it: a > ? OR (a = ? AND b > ?) …
func (t table) after(values []any) (string, []any) {
	var ors []string
	var args []any
	for i := range t.PK {
		var ands []string
		for j := range i {
			ands = append(ands, quoteIdent(t.PK[j])+" = ?")
			args = append(args, values[j])
		}
		ands = append(ands, quoteIdent(t.PK[i])+" > ?")
		args = append(args, values[i])
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	return "(" + strings.Join(ors, " OR ") + ")", args
}

// where is the condition selecting chunk c.
func (t table) where(c chunk) (string, []any) {
	conds, args := []string{"1"}, []any(nil)
	if c.Lower != nil {
		s, a := t.after(c.Lower)
		conds, args = append(conds, s), append(args, a...)
	}
	if c.Upper != nil {
		s, a := t.after(c.Upper)
		conds, args = append(conds, "NOT "+s), append(args, a...)
	}
	return strings.Join(conds, " AND "), args
}

// sum computes chunk c's row count and checksum on conn.
func (t table) sum(conn *client.Conn, c chunk) (rows, sum int64, err error) {
	where, args := t.where(c)
	q := "SELECT COUNT(*), COALESCE(BIT_XOR(" + t.rowHash() + "), 0) FROM " + t.quoted() + " WHERE " + where
	r, err := conn.Execute(q, args...)
	if err != nil {
		return 0, 0, fmt.Errorf("checksum %s: %w", t, err)
	}
	rows, _ = r.GetInt(0, 0)
	u, _ := r.GetUint(0, 1)
	return rows, int64(u), nil
}

// nextUpper is the primary key of the n-th row after lower (nil: from the
// start), or nil when fewer rows remain: the chunk then runs to the end.
func (t table) nextUpper(conn *client.Conn, lower []any, n int64) ([]any, error) {
	where, args := "1", []any(nil)
	if lower != nil {
		where, args = t.after(lower)
	}
	pk := make([]string, len(t.PK))
	for i, c := range t.PK {
		pk[i] = quoteIdent(c)
	}
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT 1 OFFSET %d", strings.Join(pk, ", "), t.quoted(), where, strings.Join(pk, ", "), n-1)
	r, err := conn.Execute(q, args...)
	if err != nil {
		return nil, fmt.Errorf("chunk %s: %w", t, err)
	}
	if r.RowNumber() == 0 {
		return nil, nil
	}
	vals := make([]any, len(t.PK))
	for i := range vals {
		vals[i] = fieldArg(r.Values[0][i])
	}
	return vals, nil
}

// fieldArg turns a value read back into a statement argument.
func fieldArg(v mysql.FieldValue) any {
	switch v.Type {
	case mysql.FieldValueTypeNull:
		return nil
	case mysql.FieldValueTypeUnsigned:
		return v.AsUint64()
	case mysql.FieldValueTypeSigned:
		return v.AsInt64()
	case mysql.FieldValueTypeFloat:
		return v.AsFloat64()
	default:
		return string(v.AsString())
	}
}

// chunker sizes chunks so each takes about target on the server that
// cuts them (pt-table-checksum's --chunk-time).
type chunker struct {
	target time.Duration
	rows   int64
}

func (c *chunker) adjust(took time.Duration, rows int64) {
	if took <= 0 || rows <= 0 {
		c.rows *= 2
	} else {
		c.rows = int64(float64(rows) * float64(c.target) / float64(took))
	}
	c.rows = min(max(c.rows, 100), 1_000_000)
}

// cut cuts table t into chunks on conn (the restored server) and sums
// each. A table without a primary key is one chunk: the whole table.
func (t table) cut(conn *client.Conn, target time.Duration) ([]chunk, error) {
	if len(t.PK) == 0 {
		started := time.Now()
		rows, sum, err := t.sum(conn, chunk{})
		return []chunk{{Rows: rows, Sum: sum, Took: time.Since(started)}}, err
	}
	ck := chunker{target: target, rows: 1000}
	var out []chunk
	var lower []any
	for {
		started := time.Now()
		upper, err := t.nextUpper(conn, lower, ck.rows)
		if err != nil {
			return nil, err
		}
		c := chunk{Lower: lower, Upper: upper}
		summed := time.Now()
		if c.Rows, c.Sum, err = t.sum(conn, c); err != nil {
			return nil, err
		}
		c.Took = time.Since(summed)
		out = append(out, c)
		if upper == nil {
			return out, nil
		}
		ck.adjust(time.Since(started), c.Rows)
		lower = upper
	}
}
