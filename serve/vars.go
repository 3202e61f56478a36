package serve

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Primary describes the archived primary, for the variables a client
// asks about (@@version, @@server_uuid).
type Primary struct {
	Version    string
	Flavor     string // "mariadb" or "mysql"
	ServerUUID string // MySQL's server_uuid
}

// PrimaryDescriber is a Source that knows the primary it archived.
type PrimaryDescriber interface {
	Primary(ctx context.Context) (Primary, error)
}

// errUnknownVar: the server serve stands for has no such variable.
var errUnknownVar = errors.New("unknown system variable")

// onOff is a boolean variable: 1 or 0 in a SELECT, ON or OFF in SHOW
// VARIABLES, as a server shows them.
type onOff bool

// variables is every server variable binarc serve answers, for SHOW
// VARIABLES LIKE patterns.
var variables = []string{
	"binlog_checksum", "binlog_format", "binlog_row_image", "character_set_server", "collation_server",
	"gtid_binlog_pos", "gtid_current_pos", "gtid_domain_id", "gtid_executed", "gtid_mode", "gtid_strict_mode",
	"log_bin", "read_only", "rpl_semi_sync_master_enabled", "server_id", "server_uuid",
	"system_time_zone", "time_zone", "version", "version_comment",
}

// variable is the value of a server variable as the archived primary had
// it at the archive's newest position: what the archive records, or what
// its events show.
func (s *session) variable(ctx context.Context, name string) (any, error) {
	cfg := s.srv.cfg
	switch strings.ToLower(name) {
	case "server_id":
		return int64(cfg.ServerID), nil
	case "version_comment":
		return "binarc serve: archived binlog over the replication protocol", nil
	case "time_zone", "system_time_zone":
		return "UTC", nil
	case "collation_server":
		return "utf8mb4_general_ci", nil
	case "character_set_server":
		return "utf8mb4", nil
	case "gtid_strict_mode", "rpl_semi_sync_master_enabled", "read_only":
		return onOff(false), nil
	case "log_bin":
		return onOff(true), nil
	}
	a, err := s.archive(ctx)
	if err != nil {
		return nil, err
	}
	return a.variable(ctx, strings.ToLower(name), s.srv.domain(ctx))
}

// showVariables answers SHOW [GLOBAL|SESSION] VARIABLES LIKE pattern.
// A pattern that names no variable binarc knows is refused, not answered
// with an empty set a client would take for "the server has none"; one
// naming a variable the archived server's kind does not have (MySQL's
// gtid_mode on MariaDB) is answered with the empty set that server gives.
func (s *session) showVariables(ctx context.Context, pattern string) (*mysql.Result, error) {
	re, err := likePattern(pattern)
	if err != nil {
		return nil, err
	}
	var rows [][]any
	matched := false
	for _, name := range variables {
		if !re.MatchString(name) {
			continue
		}
		matched = true
		v, err := s.variable(ctx, name)
		if errors.Is(err, errUnknownVar) {
			continue
		}
		if err != nil {
			if !strings.ContainsAny(pattern, "%_") {
				return nil, err
			}
			continue // a wildcard lists what can be told
		}
		rows = append(rows, []any{name, showValue(v)})
	}
	if !matched {
		return nil, mysql.NewError(mysql.ER_NOT_SUPPORTED_YET, fmt.Sprintf("binarc serve does not know the variable %q: it answers %s, from the archive", pattern, strings.Join(variables, ", ")))
	}
	return resultset([]string{"Variable_name", "Value"}, rows)
}

// status is every status variable binarc serve answers.
var status = []string{"Binlog_snapshot_file", "Binlog_snapshot_position", "Rpl_semi_sync_master_status"}

// showStatus answers SHOW [GLOBAL|SESSION] STATUS LIKE pattern: the
// status a CDC client looks at before a dump, from the archive.
func (s *session) showStatus(ctx context.Context, pattern string) (*mysql.Result, error) {
	re, err := likePattern(pattern)
	if err != nil {
		return nil, err
	}
	var rows [][]any
	for _, name := range status {
		if !re.MatchString(name) {
			continue
		}
		a, err := s.archive(ctx)
		if err != nil {
			return nil, err
		}
		last := a.files[len(a.files)-1]
		switch name {
		case "Binlog_snapshot_file":
			rows = append(rows, []any{name, last.Name})
		case "Binlog_snapshot_position":
			rows = append(rows, []any{name, fmt.Sprint(last.Size)})
		case "Rpl_semi_sync_master_status":
			rows = append(rows, []any{name, "OFF"})
		}
	}
	if len(rows) == 0 {
		return nil, mysql.NewError(mysql.ER_NOT_SUPPORTED_YET, fmt.Sprintf("binarc serve has no status %q: it answers %s, from the archive", pattern, strings.Join(status, ", ")))
	}
	return resultset([]string{"Variable_name", "Value"}, rows)
}

// showBinaryLogs answers SHOW BINARY LOGS: the archived files.
func (s *session) showBinaryLogs(ctx context.Context) (*mysql.Result, error) {
	a, err := s.archive(ctx)
	if err != nil {
		return nil, err
	}
	rows := make([][]any, 0, len(a.files))
	for _, f := range a.files {
		rows = append(rows, []any{f.Name, int64(f.Size)})
	}
	return resultset([]string{"Log_name", "File_size"}, rows)
}

// showMasterStatus answers SHOW MASTER STATUS (SHOW BINLOG STATUS): the
// archive's newest file and how far it is archived.
func (s *session) showMasterStatus(ctx context.Context) (*mysql.Result, error) {
	a, err := s.archive(ctx)
	if err != nil {
		return nil, err
	}
	last := a.files[len(a.files)-1]
	names := []string{"File", "Position", "Binlog_Do_DB", "Binlog_Ignore_DB"}
	row := []any{last.Name, int64(last.Size), "", ""}
	if a.primary.Flavor == "mysql" {
		names, row = append(names, "Executed_Gtid_Set"), append(row, a.mysqlExecuted())
	}
	return resultset(names, [][]any{row})
}

// showValue is a value as SHOW VARIABLES prints it.
func showValue(v any) string {
	if b, ok := v.(onOff); ok {
		if b {
			return "ON"
		}
		return "OFF"
	}
	return fmt.Sprint(v)
}

// selectValue is a value as a SELECT returns it.
func selectValue(v any) any {
	if b, ok := v.(onOff); ok {
		if b {
			return int64(1)
		}
		return int64(0)
	}
	return v
}

// likePattern compiles an SQL LIKE pattern (case-insensitive, as for
// variable names): % any run, _ one character, \ escapes.
func likePattern(p string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("(?is)^")
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\' && i+1 < len(p):
			i++
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
		case c == '%':
			b.WriteString(".*")
		case c == '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// archiveState is what the session's answers read from the archive,
// kept for a second (a client sends its questions in a burst).
type archiveState struct {
	at      time.Time
	files   []File
	head    *fileHead // the newest file's
	primary Primary
	facts   *binlogFacts // what the events show, read once asked
	src     Source
}

// archive reads the archive's state, or the one read less than a second
// ago.
func (s *session) archive(ctx context.Context) (*archiveState, error) {
	if s.state != nil && time.Since(s.state.at) < time.Second {
		return s.state, nil
	}
	src := s.srv.cfg.Source
	files, err := src.Files(ctx)
	if err != nil {
		return nil, fmt.Errorf("binarc serve: reading the archive: %w", err)
	}
	if len(files) == 0 {
		return nil, mysql.NewError(mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG, "binarc serve: the archive holds no binlog yet")
	}
	head, err := readHead(ctx, src, files[len(files)-1])
	if err != nil {
		return nil, fmt.Errorf("binarc serve: %w", err)
	}
	a := &archiveState{at: time.Now(), files: files, head: head, src: src}
	if d, ok := src.(PrimaryDescriber); ok {
		if a.primary, err = d.Primary(ctx); err != nil {
			return nil, fmt.Errorf("binarc serve: %w", err)
		}
	}
	if a.primary.Version == "" {
		a.primary.Version = fdeVersion(head.FDE)
	}
	if a.primary.Flavor == "" {
		a.primary.Flavor = fdeFlavor(head.FDE)
	}
	if s.state != nil && s.state.facts != nil && s.state.files[len(s.state.files)-1].Name == files[len(files)-1].Name {
		a.facts = s.state.facts
	}
	s.state = a
	return a, nil
}

// variable answers the variables read from the archive.
func (a *archiveState) variable(ctx context.Context, name string, domain uint32) (any, error) {
	mysqlOnly := a.primary.Flavor == "mysql"
	switch name {
	case "version":
		return a.primary.Version, nil
	case "binlog_checksum":
		if fileChecksum(a.head.FDE) {
			return "CRC32", nil
		}
		return "NONE", nil
	case "gtid_domain_id":
		if mysqlOnly {
			return nil, errUnknownVar
		}
		return int64(domain), nil
	case "gtid_binlog_pos", "gtid_current_pos":
		if mysqlOnly {
			return nil, errUnknownVar
		}
		return a.gtidPos(), nil
	case "server_uuid", "gtid_executed", "gtid_mode":
		if !mysqlOnly {
			return nil, errUnknownVar // MariaDB has none of these
		}
		switch name {
		case "server_uuid":
			return a.primary.ServerUUID, nil
		case "gtid_mode":
			return "ON", nil
		}
		return a.mysqlExecuted(), nil
	case "binlog_format", "binlog_row_image":
		f, err := a.binlogFacts(ctx)
		if err != nil {
			return nil, err
		}
		if name == "binlog_format" {
			return f.Format, nil
		}
		return f.RowImage, nil
	}
	return nil, errUnknownVar
}

// gtidPos is MariaDB's gtid_binlog_pos at the archive's end: per domain,
// the newest GTID, from the newest file's Gtid_list and the last
// transaction archived in it.
func (a *archiveState) gtidPos() string {
	pos := map[uint32]gtidEntry{}
	for _, e := range a.head.List {
		if cur, ok := pos[e.Domain]; !ok || e.Seq > cur.Seq {
			pos[e.Domain] = e
		}
	}
	if g, err := parseGTID(a.files[len(a.files)-1].LastGTID); err == nil {
		pos[g.Domain] = g
	}
	list := make([]gtidEntry, 0, len(pos))
	for _, e := range pos {
		list = append(list, e)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Domain < list[j].Domain })
	s := make([]string, len(list))
	for i, e := range list {
		s[i] = e.String()
	}
	return strings.Join(s, ",")
}

// fdeVersion is the server version a format description carries
// (server_version, 50 bytes after binlog_version).
func fdeVersion(fde []byte) string {
	const at = 19 + 2
	if len(fde) < at+50 {
		return ""
	}
	v := fde[at : at+50]
	if i := strings.IndexByte(string(v), 0); i >= 0 {
		v = v[:i]
	}
	return string(v)
}

// fdeFlavor tells MySQL's binlog from MariaDB's by the server version its
// format description carries (MariaDB's says so; an unknown one is taken
// for MariaDB, the dialect serve speaks first).
func fdeFlavor(fde []byte) string {
	v := fdeVersion(fde)
	if v == "" || strings.Contains(strings.ToLower(v), "mariadb") {
		return "mariadb"
	}
	return "mysql"
}
