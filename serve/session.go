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
	// EmptyHandler satisfies go-mysql's handler for the handshake; the
	// commands are read and answered here, never through it.
	server.EmptyHandler
	srv  *Server
	conn *server.Conn
	out  *bufferedConn // under conn: Flush before waiting
	log  zerolog.Logger
	// vars are the user variables the replica set (@master_heartbeat_period,
	// @master_binlog_checksum, @slave_connect_state, …), read by the dump.
	vars     map[string]any
	serverID uint32 // the replica's, from COM_REGISTER_SLAVE or the dump
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
		return s.conn.WriteValue(mysql.NewError(mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG,
			"binarc serve speaks MariaDB's replication: MySQL's GTID dump (COM_BINLOG_DUMP_GTID) is not supported; replicate by file and position"))
	default:
		return s.conn.WriteValue(mysql.NewError(mysql.ER_UNKNOWN_COM_ERROR, fmt.Sprintf("binarc serve: command %d is not supported", cmd)))
	}
}

var (
	setVar    = regexp.MustCompile(`(?is)^\s*SET\s+(?:SESSION\s+)?@(\w+)\s*:?=\s*(.+?)\s*;?\s*$`)
	selectRe  = regexp.MustCompile(`(?is)^\s*SELECT\s+(.+?)\s*;?\s*$`)
	showVarRe = regexp.MustCompile(`(?is)^\s*SHOW\s+(?:GLOBAL\s+|SESSION\s+)?VARIABLES\s+LIKE\s+'([^']*)'\s*;?\s*$`)
)

// query answers the statements a connecting replica sends (MariaDB
// slave.cc: get_master_version_and_clock, and the dump preparation), and
// a few a person at a client might. Anything else is refused with an
// error naming it.
func (s *session) query(ctx context.Context, q string) (*mysql.Result, error) {
	if m := setVar.FindStringSubmatch(q); m != nil {
		return nil, s.set(ctx, m[1], m[2])
	}
	if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(q)), "SET ") {
		return nil, nil // SET NAMES, SET SESSION sql_mode and the like: nothing to do here
	}
	if m := showVarRe.FindStringSubmatch(q); m != nil {
		v, ok := s.global(ctx, m[1])
		if !ok {
			return resultset([]string{"Variable_name", "Value"}, nil)
		}
		return resultset([]string{"Variable_name", "Value"}, [][]any{{strings.ToLower(m[1]), v}})
	}
	if m := selectRe.FindStringSubmatch(q); m != nil {
		var names []string
		var row []any
		for _, e := range splitList(m[1]) {
			v, err := s.expr(ctx, e)
			if err != nil {
				return nil, err
			}
			names = append(names, e)
			row = append(row, v)
		}
		return resultset(names, [][]any{row})
	}
	return nil, mysql.NewError(mysql.ER_NOT_SUPPORTED_YET, fmt.Sprintf("binarc serve answers only what a replica asks; not: %.200s", q))
}

// set stores a user variable; the value is a literal or a global.
func (s *session) set(ctx context.Context, name, value string) error {
	v, err := s.expr(ctx, value)
	if err != nil {
		return err
	}
	s.vars[strings.ToLower(name)] = v
	return nil
}

// expr evaluates one select-list item or SET value: a literal, a user
// variable, a global, or UNIX_TIMESTAMP().
func (s *session) expr(ctx context.Context, e string) (any, error) {
	e = strings.TrimSpace(e)
	le := strings.ToLower(e)
	switch {
	case len(e) >= 2 && (e[0] == '\'' || e[0] == '"') && e[len(e)-1] == e[0]:
		return unquote(e[1 : len(e)-1]), nil
	case le == "null":
		return nil, nil
	case le == "unix_timestamp()":
		return time.Now().Unix(), nil
	case le == "version()":
		return strings.TrimPrefix(Version, "5.5.5-"), nil
	case strings.HasPrefix(le, "@@"):
		name := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(le, "@@"), "global."), "session.")
		if v, ok := s.global(ctx, name); ok {
			return v, nil
		}
		return nil, mysql.NewError(mysql.ER_UNKNOWN_SYSTEM_VARIABLE, fmt.Sprintf("Unknown system variable '%s' (binarc serve)", name))
	case strings.HasPrefix(le, "@"):
		return s.vars[strings.TrimPrefix(le, "@")], nil
	}
	if n, err := strconv.ParseInt(e, 10, 64); err == nil {
		return n, nil
	}
	return nil, mysql.NewError(mysql.ER_NOT_SUPPORTED_YET, fmt.Sprintf("binarc serve cannot evaluate %.100s", e))
}

// global is the value of a server variable a replica asks about.
func (s *session) global(ctx context.Context, name string) (any, bool) {
	cfg := s.srv.cfg
	switch strings.ToLower(name) {
	case "server_id":
		return int64(cfg.ServerID), true
	case "binlog_checksum":
		if s.srv.checksums(ctx) {
			return "CRC32", true
		}
		return "NONE", true
	case "gtid_domain_id":
		return int64(s.srv.domain(ctx)), true
	case "version":
		return strings.TrimPrefix(Version, "5.5.5-"), true
	case "version_comment":
		return "binarc serve: archived binlog over the replication protocol", true
	case "time_zone", "system_time_zone":
		return "UTC", true
	case "collation_server":
		return "utf8mb4_general_ci", true
	case "character_set_server":
		return "utf8mb4", true
	case "gtid_strict_mode", "rpl_semi_sync_master_enabled", "read_only":
		return int64(0), true
	case "log_bin":
		return int64(1), true
	}
	return nil, false
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
		rs.Fields[i] = &mysql.Field{Name: []byte(n), Type: mysql.MYSQL_TYPE_VAR_STRING, Charset: 33}
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
