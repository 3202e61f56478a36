package serve

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"
	"github.com/rs/zerolog"
)

// session is one replica's connection after the handshake.
type session struct {
	srv  *Server
	conn *server.Conn
	out  *bufferedConn // under conn: Flush before waiting
	log  zerolog.Logger
	// vars are the user variables the replica set (@master_heartbeat_period,
	// @master_binlog_checksum, @slave_connect_state, …), read by the dump.
	vars     map[string]any
	serverID uint32        // the replica's, from COM_REGISTER_SLAVE or the dump
	state    *archiveState // what the last answers read from the archive
}

var errQuit = errors.New("replica quit")

// command answers one command packet.
func (s *session) command(ctx context.Context, data []byte) error {
	cmd, body := data[0], data[1:]
	switch cmd {
	case mysql.COM_QUIT:
		return errQuit
	case mysql.COM_PING, mysql.COM_INIT_DB:
		return s.conn.WriteValue(nil)
	case mysql.COM_QUERY:
		q := string(body)
		res, err := s.query(ctx, q)
		if err != nil {
			s.log.Info().Str("query", q).Err(err).Msg("query refused")
			return s.conn.WriteValue(err)
		}
		s.log.Debug().Str("query", q).Msg("query")
		if res == nil {
			return s.conn.WriteValue(nil)
		}
		return s.conn.WriteValue(res)
	case mysql.COM_REGISTER_SLAVE:
		// server_id (4), then host, user, password, port, rank, master id:
		// nothing binarc needs beyond the id, for the log.
		if len(body) >= 4 {
			s.serverID = binary.LittleEndian.Uint32(body)
		}
		s.log.Info().Uint32("replica_server_id", s.serverID).Msg("replica registered")
		return s.conn.WriteValue(nil)
	case mysql.COM_BINLOG_DUMP:
		return s.dump(ctx, body)
	case mysql.COM_BINLOG_DUMP_GTID:
		return s.dumpGTID(ctx, body)
	default:
		return s.conn.WriteValue(mysql.NewError(mysql.ER_UNKNOWN_COM_ERROR, fmt.Sprintf("binarc serve: command %d is not supported", cmd)))
	}
}

var (
	setVar    = regexp.MustCompile(`(?is)^(?:SESSION\s+)?@(\w+)\s*:?=\s*(.+?)$`)
	selectRe  = regexp.MustCompile(`(?is)^SELECT\s+(.+?)(?:\s+LIMIT\s+\d+)?$`)
	showVarRe = regexp.MustCompile(`(?is)^SHOW\s+(?:GLOBAL\s+|SESSION\s+)?VARIABLES\s+LIKE\s+'([^']*)'$`)
	showStRe  = regexp.MustCompile(`(?is)^SHOW\s+(?:GLOBAL\s+|SESSION\s+)?STATUS\s+LIKE\s+'([^']*)'$`)
	binLogsRe = regexp.MustCompile(`(?is)^SHOW\s+(?:BINARY|MASTER)\s+LOGS$`)
	statusRe  = regexp.MustCompile(`(?is)^SHOW\s+(?:MASTER|BINLOG)\s+STATUS$`)
	schemaRe  = regexp.MustCompile(`(?is)information_schema|performance_schema|^SHOW\s+(?:FULL\s+)?(?:DATABASES|SCHEMAS|TABLES|COLUMNS|FIELDS|INDEX|INDEXES|KEYS|TABLE\s+STATUS|CREATE)\b|^(?:DESCRIBE|DESC|EXPLAIN)\s`)
	commentRe = regexp.MustCompile(`(?s)/\*.*?\*/`)
)

// errSchema refuses a client's schema queries, naming the way out.
var errSchema = mysql.NewError(mysql.ER_NOT_SUPPORTED_YET,
	"binarc serve holds the archive's binlog, not its tables: there is no schema (information_schema, SHOW TABLES, SHOW CREATE TABLE) to read here. "+
		"Give the CDC tool's schema connection a server restored from the archive (binarc restore --to <time>) and its binlog connection binarc serve: README, \"Change data capture from the archive\"")

// query answers the statements a connecting replica sends (MariaDB
// slave.cc: get_master_version_and_clock, and the dump preparation) and
// the ones CDC clients send before dumping, from the archive. Anything
// else is refused with an error naming it, never answered with a silent
// empty result.
func (s *session) query(ctx context.Context, q string) (*mysql.Result, error) {
	q = strings.TrimSpace(commentRe.ReplaceAllString(q, " "))
	q = strings.TrimSpace(strings.TrimRight(q, "; \t\r\n"))
	upper := strings.ToUpper(q)
	switch m := []string(nil); {
	case schemaRe.MatchString(q):
		return nil, errSchema
	case strings.HasPrefix(upper, "SET "):
		return nil, s.setList(ctx, q[4:])
	case showVarRe.MatchString(q):
		m = showVarRe.FindStringSubmatch(q)
		return s.showVariables(ctx, m[1])
	case showStRe.MatchString(q):
		m = showStRe.FindStringSubmatch(q)
		return s.showStatus(ctx, m[1])
	case binLogsRe.MatchString(q):
		return s.showBinaryLogs(ctx)
	case statusRe.MatchString(q):
		return s.showMasterStatus(ctx)
	case selectRe.MatchString(q):
		m = selectRe.FindStringSubmatch(q)
		var names []string
		var row []any
		for _, e := range splitList(m[1]) {
			v, err := s.expr(ctx, e)
			if err != nil {
				return nil, err
			}
			names = append(names, e)
			row = append(row, selectValue(v))
		}
		return resultset(names, [][]any{row})
	}
	return nil, mysql.NewError(mysql.ER_NOT_SUPPORTED_YET, fmt.Sprintf("binarc serve answers only what replicas and CDC clients ask before a dump (SET, SELECT of variables, SHOW VARIABLES/STATUS LIKE, SHOW BINARY LOGS, SHOW MASTER STATUS); not: %.200s", q))
}

// setList runs a SET statement's assignments: user variables are kept
// for the dump (@master_binlog_checksum, @mariadb_slave_capability, …);
// SET NAMES, session settings and the like change nothing here.
func (s *session) setList(ctx context.Context, list string) error {
	for _, a := range splitList(list) {
		if m := setVar.FindStringSubmatch(strings.TrimSpace(a)); m != nil {
			if err := s.set(ctx, m[1], m[2]); err != nil {
				return err
			}
		}
	}
	return nil
}

// set stores a user variable; the value is a literal or a global.
func (s *session) set(ctx context.Context, name, value string) error {
	v, err := s.expr(ctx, value)
	if err != nil {
		return err
	}
	if str, ok := v.(string); ok {
		v = userString(str)
	}
	name = strings.ToLower(name)
	s.vars[name] = v
	if old, ok := sourceAliases[name]; ok {
		s.vars[old] = v
	}
	return nil
}

// sourceAliases are the names MySQL 8.0.26+ replicas set beside (or
// instead of) the ones the dump reads.
var sourceAliases = map[string]string{
	"source_binlog_checksum":  "master_binlog_checksum",
	"source_heartbeat_period": "master_heartbeat_period",
}

// userString is a string held in a user variable: a server types it as
// LONGBLOB in a result set.
type userString string

// expr evaluates one select-list item or SET value: a literal, a user
// variable, a global, or UNIX_TIMESTAMP().
func (s *session) expr(ctx context.Context, e string) (any, error) {
	e = strings.TrimSpace(e)
	le := strings.ToLower(e)
	switch {
	case len(e) >= 2 && (e[0] == '\'' || e[0] == '"') && e[len(e)-1] == e[0]:
		return unquote(e[1 : len(e)-1]), nil
	case le == "null", le == "database()":
		return nil, nil
	case le == "unix_timestamp()":
		return time.Now().Unix(), nil
	case le == "version()":
		return s.variable(ctx, "version")
	case strings.HasPrefix(le, "@@"):
		name := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(le, "@@"), "global."), "session.")
		v, err := s.variable(ctx, name)
		if errors.Is(err, errUnknownVar) {
			return nil, mysql.NewError(mysql.ER_UNKNOWN_SYSTEM_VARIABLE, fmt.Sprintf("Unknown system variable '%s'", name))
		}
		return v, err
	case strings.HasPrefix(le, "@"):
		return s.vars[strings.TrimPrefix(le, "@")], nil
	}
	if n, err := strconv.ParseInt(e, 10, 64); err == nil {
		return n, nil
	}
	return nil, mysql.NewError(mysql.ER_NOT_SUPPORTED_YET, fmt.Sprintf("binarc serve cannot evaluate %.100s: it answers literals, @user variables, @@server variables, VERSION() and UNIX_TIMESTAMP()", e))
}

// splitList splits a select list at top-level commas.
func splitList(s string) []string {
	var out []string
	depth, start := 0, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

func unquote(s string) string {
	return strings.NewReplacer(`\'`, `'`, `\"`, `"`, `\\`, `\`, `''`, `'`).Replace(s)
}

// resultset builds a text result set of strings (and NULLs). It does not
// use go-mysql's BuildSimpleTextResultset: that takes a Resultset from a
// pool shared with go-mysql's client in the same process (binarc restore
// runs both), keeps the pooled Field pointers, and fails with "row types
// aren't consistent" when an earlier query left a field of another type.
func resultset(names []string, rows [][]any) (*mysql.Result, error) {
	rs := &mysql.Resultset{Fields: make([]*mysql.Field, len(names)), FieldNames: map[string]int{}}
	for i, n := range names {
		// Numbers as a server types them (BIGINT), the rest as strings.
		typ := byte(mysql.MYSQL_TYPE_VAR_STRING)
		for _, row := range rows {
			switch row[i].(type) {
			case int64, uint64:
				typ = mysql.MYSQL_TYPE_LONGLONG
			case userString:
				typ = mysql.MYSQL_TYPE_LONG_BLOB
			}
		}
		rs.Fields[i] = &mysql.Field{Name: []byte(n), Type: typ, Charset: 33}
		if typ == mysql.MYSQL_TYPE_LONGLONG {
			rs.Fields[i].Charset = 63 // binary, as a server sends numbers
		}
		rs.FieldNames[n] = i
	}
	for _, row := range rows {
		var b []byte
		for _, v := range row {
			if v == nil {
				b = append(b, 0xfb) // NULL
				continue
			}
			b = append(b, mysql.PutLengthEncodedString([]byte(fmt.Sprint(v)))...)
		}
		rs.RowDatas = append(rs.RowDatas, b)
	}
	return &mysql.Result{Resultset: rs}, nil
}
