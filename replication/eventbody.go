package replication

import (
	"bytes"
	"encoding/binary"
)

// QueryText is the statement of a QUERY_EVENT body (no header, no
// checksum): post-header slave_proxy_id (4), exec_time (4), db_len (1),
// error_code (2), status_vars_len (2); then the status variables, the db
// name and a NUL, then the statement. "" when the body is too short for
// its own lengths (never a panic on bytes read from a store).
func QueryText(body []byte) string { return queryTextAfter(body, 13) }

// ExecuteLoadQueryText reads the statement of an EXECUTE_LOAD_QUERY_EVENT
// body (a statement-based LOAD DATA): a query event's post-header with
// 13 more bytes (file_id, the file name's start and end in the
// statement, the duplicate handling), then the same fields.
func ExecuteLoadQueryText(body []byte) string { return queryTextAfter(body, 26) }

// queryTextAfter reads the statement of a query event body whose
// post-header is postHeader bytes long.
func queryTextAfter(body []byte, postHeader int) string {
	if len(body) < postHeader {
		return ""
	}
	q := postHeader + int(binary.LittleEndian.Uint16(body[11:])) + int(body[8]) + 1
	if q > len(body) {
		return ""
	}
	return string(bytes.TrimRight(body[q:], "\x00"))
}

// TableMapName reads db.table from a TABLE_MAP_EVENT body: table_id (6),
// flags (2), db length (1), db, NUL, table length (1), table, NUL. ""
// when the body is too short for its own lengths.
func TableMapName(body []byte) string {
	p := 8
	if len(body) <= p {
		return ""
	}
	dl := int(body[p])
	p++
	if p+dl+2 > len(body) {
		return ""
	}
	db := string(body[p : p+dl])
	p += dl + 1
	tl := int(body[p])
	p++
	if p+tl > len(body) {
		return ""
	}
	return db + "." + string(body[p:p+tl])
}
