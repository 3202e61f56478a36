package replication

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
)

// Flavor is the server family, which decides the dump protocol details.
type Flavor string

// The flavours binarc knows.
const (
	FlavorMariaDB Flavor = mysql.MariaDBFlavor
	FlavorMySQL   Flavor = mysql.MySQLFlavor
)

// ServerInfo is what binarc learns about the primary before streaming.
type ServerInfo struct {
	Version        string
	Flavor         Flavor
	ServerID       uint32
	BinlogFormat   string
	BinlogChecksum string
	// ReadOnly is @@read_only: a replica or a demoted master; with several
	// sources binarc archives the one that is not.
	ReadOnly bool
	// ServerUUID is @@server_uuid (MySQL only).
	ServerUUID string
}

// BinlogFile is one row of SHOW BINARY LOGS.
type BinlogFile struct {
	Name string
	Size uint64
}

// ConfigError is a problem an operator must fix (credentials, grants,
// server settings): retrying will not help. Hint says what to do.
type ConfigError struct {
	Problem string
	Hint    string
}

func (e *ConfigError) Error() string { return e.Problem + ": " + e.Hint }

// IsConfigError tells whether err is, or wraps, a ConfigError.
func IsConfigError(err error) bool {
	var ce *ConfigError
	return errors.As(err, &ce)
}

// MySQL/MariaDB error codes binarc branches on.
const (
	erAccessDenied         = 1045 // ER_ACCESS_DENIED_ERROR: wrong user or password
	erSpecificAccessDenied = 1227 // ER_SPECIFIC_ACCESS_DENIED_ERROR: missing privilege
	erMasterFatalReading   = 1236 // ER_MASTER_FATAL_ERROR_READING_BINLOG
	erDBAccessDenied       = 1044
)

// dial opens a client connection to the primary, with TLS as configured.
//
// Its reads and writes time out after ReadTimeout, as the dump's do: a
// link that goes silent mid-query (frozen, partitioned) must not hold
// binarc, which at that moment may be choosing where to stream from.
// The fault campaign froze binarc's link to a new primary during its
// SHOW BINARY LOGS and binarc waited over a minute, its loss window with it.
func (c Config) dial(ctx context.Context) (*client.Conn, error) {
	conn, err := c.connect(ctx, c.ReadTimeout)
	if err != nil {
		return nil, c.classify(err)
	}
	return conn, nil
}

// text reads a column as a string of its own: go-mysql's GetString
// returns a view of the row buffer, which the driver reuses once the
// result is closed (v1.16.0 utils.ByteSliceToString).
func text(r *mysql.Result, row, col int) string {
	s, _ := r.GetString(row, col)
	return strings.Clone(s)
}

// quit ends a session with COM_QUIT: a bare close makes the primary log
// "Aborted connection ... Got an error reading communication packets".
func quit(conn *client.Conn) {
	if conn.Quit() != nil {
		conn.Close()
	}
}

// classify turns a driver error into a ConfigError when it is the operator's
// to fix, and otherwise prefixes it with the source address.
func (c Config) classify(err error) error {
	return c.Classify(err, "primary", grantHint(c.User))
}

// Classify turns a driver error from a session with the server c names (a
// "primary", a "server") into a ConfigError when it is the operator's to
// fix: a refused login, or a missing privilege, with grant as the hint.
// Other errors are prefixed with the server's role and address.
func (c Config) Classify(err error, role, grant string) error {
	if IsConfigError(err) {
		return err
	}
	var me *mysql.MyError
	if errors.As(err, &me) {
		switch me.Code {
		case erAccessDenied:
			return &ConfigError{
				Problem: fmt.Sprintf("%s %s refused user %q: access denied (wrong password or no such user@host)", role, c.Addr(), c.User),
				Hint:    "check the password (BINARC_SOURCE_PASSWORD or --source-password-file) and that the user exists for this client host",
			}
		case erSpecificAccessDenied, erDBAccessDenied:
			return &ConfigError{
				Problem: fmt.Sprintf("%s %s: user %q lacks a privilege: %s", role, c.Addr(), c.User, me.Message),
				Hint:    grant,
			}
		}
	}
	return fmt.Errorf("%s %s: %w", role, c.Addr(), err)
}

func grantHint(user string) string {
	return fmt.Sprintf("run on the primary: GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '%s'@'%%' (MariaDB 10.5+), or GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '%s'@'%%' (MySQL)", user, user)
}

// Preflight connects to the primary and checks that it can be archived:
// binary logging on, a usable checksum setting, and the grants binarc
// needs. Problems the operator must fix come back as *ConfigError; a
// primary that cannot be reached comes back as a plain error.
func (c Config) Preflight(ctx context.Context) (ServerInfo, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return ServerInfo{}, err
	}
	defer quit(conn)

	var info ServerInfo
	r, err := conn.Execute("SELECT @@version, @@server_id, @@log_bin, @@binlog_format, @@binlog_checksum")
	if err != nil {
		return info, c.classify(err)
	}
	info.Version = text(r, 0, 0)
	sid, _ := r.GetUint(0, 1)
	info.ServerID = uint32(sid)
	logBin := text(r, 0, 2)
	if logBin == "" {
		v, _ := r.GetInt(0, 2)
		logBin = strconv.FormatInt(v, 10)
	}
	info.BinlogFormat = text(r, 0, 3)
	info.BinlogChecksum = text(r, 0, 4)
	info.Flavor = FlavorMySQL
	if strings.Contains(strings.ToLower(info.Version), "mariadb") {
		info.Flavor = FlavorMariaDB
	}

	if r, err := conn.Execute("SELECT @@read_only"); err == nil {
		ro, _ := r.GetInt(0, 0)
		info.ReadOnly = ro != 0 || strings.EqualFold(text(r, 0, 0), "ON")
	}
	if info.Flavor == FlavorMySQL {
		if r, err := conn.Execute("SELECT @@server_uuid"); err == nil {
			info.ServerUUID = text(r, 0, 0)
		}
	}
	if logBin != "1" && !strings.EqualFold(logBin, "ON") {
		if logBin == "0" {
			logBin = "OFF"
		}
		return info, &ConfigError{
			Problem: fmt.Sprintf("primary %s has binary logging off (log_bin=%s): there is nothing to archive", c.Addr(), logBin),
			Hint:    "start the server with --log-bin=mysql-bin and a --server-id, then restart it",
		}
	}
	if info.ServerID == c.ServerID {
		return info, &ConfigError{
			Problem: fmt.Sprintf("primary %s has server_id %d, the same as binarc's --server-id", c.Addr(), info.ServerID),
			Hint:    "give binarc a server id no server in the cluster uses (--server-id / BINARC_SERVER_ID)",
		}
	}
	switch strings.ToUpper(info.BinlogChecksum) {
	case "CRC32", "NONE":
	default:
		return info, &ConfigError{
			Problem: fmt.Sprintf("primary %s uses binlog_checksum=%s, which binarc does not know", c.Addr(), info.BinlogChecksum),
			Hint:    "set binlog_checksum=CRC32 on the primary",
		}
	}
	if err := c.checkGrants(conn, info.Flavor); err != nil {
		return info, err
	}
	return info, nil
}

// checkGrants makes sure the user may read the binlog list and dump it.
// The dump needs REPLICATION SLAVE, which only SHOW GRANTS reveals before
// the dump itself fails. SHOW BINARY LOGS needs BINLOG MONITOR (MariaDB
// 10.5+) or REPLICATION CLIENT; it is tried only when SHOW GRANTS does not
// name either, because it waits for the binlog's lock, which a commit
// waiting for a semi-synchronous acknowledgement holds: a binarc that
// restarts while the primary waits for it must reach its dump without it
// (the fault campaign's --semi-sync run found binarc and the primary
// waiting for each other until the primary's semi-sync timeout).
func (c Config) checkGrants(conn *client.Conn, flavor Flavor) error {
	r, err := conn.Execute("SHOW GRANTS FOR CURRENT_USER()")
	if err != nil {
		return c.classify(err)
	}
	var dump, list bool
	for i := 0; i < r.RowNumber(); i++ {
		g := strings.ToUpper(text(r, i, 0))
		if !strings.Contains(g, " ON *.* ") {
			continue
		}
		all := strings.Contains(g, "ALL PRIVILEGES")
		dump = dump || all || strings.Contains(g, "REPLICATION SLAVE") || strings.Contains(g, "REPLICATION REPLICA")
		list = list || all || strings.Contains(g, "BINLOG MONITOR") || strings.Contains(g, "REPLICATION CLIENT") || strings.Contains(g, "SUPER")
	}
	if !dump {
		return &ConfigError{
			Problem: fmt.Sprintf("primary %s: user %q lacks the REPLICATION SLAVE privilege needed to read the binlog as a replica", c.Addr(), c.User),
			Hint:    grantHint(c.User),
		}
	}
	if list {
		return nil
	}
	// A grant through a role, or one SHOW GRANTS spells otherwise: ask.
	if _, err := conn.Execute("SHOW BINARY LOGS"); err != nil {
		return c.classify(err)
	}
	return nil
}

// BinaryLogs lists the binlog files the primary still has, oldest first.
func (c Config) BinaryLogs(ctx context.Context) ([]BinlogFile, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer quit(conn)
	r, err := conn.Execute("SHOW BINARY LOGS")
	if err != nil {
		return nil, c.classify(err)
	}
	files := make([]BinlogFile, 0, r.RowNumber())
	for i := 0; i < r.RowNumber(); i++ {
		name := text(r, i, 0)
		size, _ := r.GetUint(i, 1)
		files = append(files, BinlogFile{Name: name, Size: size})
	}
	return files, nil
}
