package snapshot

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/binarc/binarc/replication"
	"github.com/go-mysql-org/go-mysql/client"
)

// ServerInfo is what binarc learns about the server it snapshots.
type ServerInfo struct {
	Version  string
	Flavor   replication.Flavor
	ServerID uint32
	DataDir  string
	Hostname string
	LogBin   bool
	// replicaSyntax: MySQL 8.0.22+ spells it SHOW REPLICA STATUS and names
	// the columns Replica_*/Source_*; older MySQL and every MariaDB keep
	// SHOW SLAVE STATUS (MariaDB 10.5+ accepts both spellings).
	replicaSyntax bool
}

// ReplicaStatus is the part of SHOW SLAVE/REPLICA STATUS binarc uses.
type ReplicaStatus struct {
	IORunning  string // Yes, No, Connecting
	SQLRunning string // Yes, No
	// MasterFile and ExecPos are the primary's binlog coordinates of the
	// last transaction the SQL thread executed.
	MasterFile     string
	ExecPos        uint64
	MasterServerID uint32
	// MasterUUID is the primary's server_uuid (MySQL; Master_UUID or
	// Source_UUID).
	MasterUUID   string
	LastIOError  string
	LastSQLError string
	LastSQLErrno int
}

// parseReplicaStatus reads one row of SHOW SLAVE STATUS (MariaDB, MySQL
// before 8.0.22) or SHOW REPLICA STATUS (MySQL 8.0.22+), given as column
// name to value.
func parseReplicaStatus(row map[string]string) (ReplicaStatus, error) {
	col := func(names ...string) (string, bool) {
		for _, n := range names {
			if v, ok := row[n]; ok {
				return v, true
			}
		}
		return "", false
	}
	var st ReplicaStatus
	var ok [4]bool
	st.IORunning, ok[0] = col("Slave_IO_Running", "Replica_IO_Running")
	st.SQLRunning, ok[1] = col("Slave_SQL_Running", "Replica_SQL_Running")
	st.MasterFile, ok[2] = col("Relay_Master_Log_File", "Relay_Source_Log_File")
	pos, hasPos := col("Exec_Master_Log_Pos", "Exec_Source_Log_Pos")
	ok[3] = hasPos
	for i, have := range ok {
		if !have {
			return st, fmt.Errorf("replica status lacks column %d of (IO running, SQL running, relay master file, exec position); columns: %s",
				i+1, strings.Join(sortedKeys(row), ", "))
		}
	}
	var err error
	if st.ExecPos, err = strconv.ParseUint(pos, 10, 64); err != nil {
		return st, fmt.Errorf("replica status: Exec_Master_Log_Pos %q is not a number", pos)
	}
	if id, _ := col("Master_Server_Id", "Source_Server_Id"); id != "" {
		n, err := strconv.ParseUint(id, 10, 32)
		if err != nil {
			return st, fmt.Errorf("replica status: Master_Server_Id %q is not a number", id)
		}
		st.MasterServerID = uint32(n)
	}
	st.MasterUUID, _ = col("Master_UUID", "Source_UUID")
	st.LastIOError, _ = col("Last_IO_Error")
	st.LastSQLError, _ = col("Last_SQL_Error")
	if n, _ := col("Last_SQL_Errno"); n != "" {
		st.LastSQLErrno, _ = strconv.Atoi(n)
	}
	return st, nil
}

// conn is a session on the server being snapshotted.
type conn struct {
	cfg  replication.Config
	c    *client.Conn
	info ServerInfo
}

func dial(ctx context.Context, cfg replication.Config) (*conn, error) {
	c, err := cfg.Connect(ctx)
	if err != nil {
		return nil, classify(cfg, err)
	}
	return &conn{cfg: cfg, c: c}, nil
}

func (c *conn) close() {
	if c.c.Quit() != nil {
		c.c.Close()
	}
}

// query runs sql and returns its rows as column name to text value (NULL
// as "").
func (c *conn) query(sql string) ([]map[string]string, error) {
	r, err := c.c.Execute(sql)
	if err != nil {
		return nil, classify(c.cfg, fmt.Errorf("%s: %w", sql, err))
	}
	defer r.Close()
	if r.Resultset == nil {
		return nil, nil
	}
	rows := make([]map[string]string, 0, r.RowNumber())
	for i := range r.RowNumber() {
		row := make(map[string]string, len(r.Fields))
		for j, f := range r.Fields {
			v, _ := r.GetString(i, j)
			// go-mysql (v1.16) returns strings that point into the result's
			// buffer, which Close hands back to a pool for the next query
			// to overwrite: copy them out.
			row[string(f.Name)] = strings.Clone(v)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func (c *conn) exec(sql string) error {
	r, err := c.c.Execute(sql)
	if err != nil {
		return classify(c.cfg, fmt.Errorf("%s: %w", sql, err))
	}
	r.Close()
	return nil
}

// detect reads the server's version, flavour and settings.
func (c *conn) detect() error {
	rows, err := c.query("SELECT @@version AS v, @@server_id AS id, @@datadir AS d, @@hostname AS h, @@log_bin AS b")
	if err != nil {
		return err
	}
	if len(rows) != 1 {
		return fmt.Errorf("server %s: SELECT @@version returned %d rows", c.cfg.Addr(), len(rows))
	}
	r := rows[0]
	i := &c.info
	i.Version, i.DataDir, i.Hostname = r["v"], r["d"], r["h"]
	id, _ := strconv.ParseUint(r["id"], 10, 32)
	i.ServerID = uint32(id)
	i.LogBin = r["b"] == "1" || strings.EqualFold(r["b"], "ON")
	i.Flavor = replication.FlavorMySQL
	if strings.Contains(strings.ToLower(i.Version), "mariadb") {
		i.Flavor = replication.FlavorMariaDB
	} else {
		i.replicaSyntax = versionAtLeast(i.Version, 8, 0, 22)
	}
	return nil
}

// versionAtLeast compares the leading "x.y.z" of a version string.
func versionAtLeast(version string, want ...int) bool {
	num, _, _ := strings.Cut(version, "-")
	parts := strings.Split(num, ".")
	for i, w := range want {
		if i >= len(parts) {
			return false
		}
		n, err := strconv.Atoi(parts[i])
		if err != nil {
			return false
		}
		if n != w {
			return n > w
		}
	}
	return true
}

func (c *conn) replicaWord() string {
	if c.info.replicaSyntax {
		return "REPLICA"
	}
	return "SLAVE"
}

// replicaStatus returns the server's replica status, or nil when it is not
// a replica.
func (c *conn) replicaStatus() (*ReplicaStatus, error) {
	rows, err := c.query("SHOW " + c.replicaWord() + " STATUS")
	if err != nil {
		return nil, err
	}
	switch len(rows) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("server %s replicates from %d sources: binarc snapshots a replica of one primary", c.cfg.Addr(), len(rows))
	}
	st, err := parseReplicaStatus(rows[0])
	if err != nil {
		return nil, fmt.Errorf("server %s: %w", c.cfg.Addr(), err)
	}
	return &st, nil
}

// gtidPosition is the GTID position of what the server has applied:
// gtid_slave_pos on a MariaDB replica, gtid_executed on MySQL.
func (c *conn) gtidPosition() (string, error) {
	v := "@@GLOBAL.gtid_executed"
	if c.info.Flavor == replication.FlavorMariaDB {
		v = "@@GLOBAL.gtid_slave_pos"
	}
	rows, err := c.query("SELECT " + v + " AS g")
	if err != nil {
		return "", err
	}
	if len(rows) != 1 {
		return "", nil
	}
	return strings.ReplaceAll(rows[0]["g"], "\n", ""), nil
}

// serverGTID reads the server's full GTID state: gtid_current_pos and
// gtid_binlog_state on MariaDB (its own writes count, not only what it
// replicated), gtid_executed and server_uuid on MySQL.
func (c *conn) serverGTID() (*ServerGTID, error) {
	q := "SELECT @@GLOBAL.gtid_executed AS e, @@server_uuid AS u"
	if c.info.Flavor == replication.FlavorMariaDB {
		q = "SELECT @@GLOBAL.gtid_current_pos AS c, @@GLOBAL.gtid_binlog_state AS b"
	}
	rows, err := c.query(q)
	if err != nil || len(rows) != 1 {
		return nil, err
	}
	clean := func(s string) string { return strings.ReplaceAll(s, "\n", "") }
	r := rows[0]
	return &ServerGTID{CurrentPos: clean(r["c"]), BinlogState: clean(r["b"]), Executed: clean(r["e"]), ServerUUID: r["u"]}, nil
}

// stopSQLThread stops the replica's SQL thread and waits until SHOW SLAVE
// STATUS says it is stopped.
func (c *conn) stopSQLThread(ctx context.Context) (*ReplicaStatus, error) {
	if err := c.exec("STOP " + c.replicaWord() + " SQL_THREAD"); err != nil {
		return nil, err
	}
	for {
		st, err := c.replicaStatus()
		if err != nil {
			return nil, err
		}
		if st == nil {
			return nil, fmt.Errorf("server %s stopped being a replica while binarc stopped its SQL thread", c.cfg.Addr())
		}
		if st.SQLRunning == "No" {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// openTempTables is how many temporary tables the replica's SQL thread
// holds (Slave_open_temp_tables; MySQL 8.0.26+ also Replica_…).
func (c *conn) openTempTables() (int, error) {
	rows, err := c.query("SHOW GLOBAL STATUS LIKE '%\\_open\\_temp\\_tables'")
	if err != nil {
		return 0, err
	}
	most := 0
	for _, r := range rows {
		if n, err := strconv.Atoi(r["Value"]); err == nil {
			most = max(most, n)
		}
	}
	return most, nil
}

func (c *conn) startSQLThread() error {
	return c.exec("START " + c.replicaWord() + " SQL_THREAD")
}

// ConfigError is a problem the operator must fix; Hint says how.
type ConfigError = replication.ConfigError

func classify(cfg replication.Config, err error) error {
	return cfg.Classify(err, "server", "grant what the snapshot needs (binarc snapshot --help lists it) and try again")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
