package drill

import (
	"context"
	"fmt"
	"time"

	"github.com/binarc/binarc/replication"
	"github.com/go-mysql-org/go-mysql/client"
)

// threads is which replication threads of the replica were running.
type threads struct{ io, sql bool }

// replicaStatus reads SHOW SLAVE STATUS as column → value; nil when the
// server replicates from nothing.
func replicaStatus(conn *client.Conn) (map[string]string, error) {
	r, err := conn.Execute("SHOW SLAVE STATUS")
	if err != nil {
		return nil, fmt.Errorf("replica: SHOW SLAVE STATUS: %w", err)
	}
	if r.RowNumber() == 0 {
		return nil, nil
	}
	row := map[string]string{}
	for name, i := range r.FieldNames {
		row[name], _ = r.GetString(0, i)
	}
	return row, nil
}

// checkReplica refuses a server that may be the primary: read_only off
// and no replication configured. It returns the threads' state.
func checkReplica(conn *client.Conn, addr string) (threads, error) {
	st, err := replicaStatus(conn)
	if err != nil {
		return threads{}, err
	}
	r, err := conn.Execute("SELECT @@read_only")
	if err != nil {
		return threads{}, fmt.Errorf("replica: %w", err)
	}
	ro, _ := r.GetInt(0, 0)
	if st == nil {
		if ro == 0 {
			return threads{}, fmt.Errorf("--replica %s has read_only off and no replication configured: it looks like the primary, and a drill pauses the server it compares with; give a replica of the cluster", addr)
		}
		return threads{}, fmt.Errorf("--replica %s replicates from nothing (SHOW SLAVE STATUS is empty): give a replica of the cluster", addr)
	}
	return threads{io: st["Slave_IO_Running"] != "No", sql: st["Slave_SQL_Running"] == "Yes"}, nil
}

// pause holds the replica's SQL thread at GTID position g: STOP SLAVE,
// then START SLAVE UNTIL master_gtid_pos=g when it is behind, waiting at
// most budget. It refuses to move a SQL thread the operator stopped, and
// cannot go back: a replica already past g is reported so.
func pause(ctx context.Context, conn *client.Conn, was threads, g *replication.GTIDState, budget time.Duration) error {
	if _, err := conn.Execute("STOP SLAVE"); err != nil {
		return fmt.Errorf("replica: STOP SLAVE: %w", err)
	}
	at, err := slavePos(conn)
	if err != nil {
		return err
	}
	switch {
	case at.SamePosition(g):
		return nil
	case !g.CoversState(at):
		return &aheadError{at: at, g: g}
	case !was.sql:
		return notCompared("the replica's SQL thread was stopped by its operator at %s, before the restore's point %s: the drill does not move it", at.Pos(), g.Pos())
	}
	if _, err := conn.Execute("START SLAVE UNTIL master_gtid_pos = '" + g.Pos() + "'"); err != nil {
		return fmt.Errorf("replica: START SLAVE UNTIL master_gtid_pos = '%s': %w", g.Pos(), err)
	}
	deadline := time.Now().Add(budget)
	for {
		st, err := replicaStatus(conn)
		if err != nil {
			return err
		}
		if st["Slave_SQL_Running"] == "No" {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return notCompared("the replica did not reach %s within --max-replica-pause %s", g.Pos(), budget)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if at, err = slavePos(conn); err != nil {
		return err
	}
	if !at.SamePosition(g) {
		return fmt.Errorf("the replica stopped at %s, not at the restore's point %s (its SQL error, if any, is in SHOW SLAVE STATUS)", at.Pos(), g.Pos())
	}
	return nil
}

// notComparedError is a replica that cannot be compared this time, for a
// reason that is no fault of the archive or the drill: the tables are
// reported skipped, with the reason in the notes.
type notComparedError struct{ msg string }

func (e *notComparedError) Error() string { return e.msg }

func notCompared(format string, args ...any) error {
	return &notComparedError{msg: fmt.Sprintf(format, args...)}
}

// aheadError is a replica that has applied more than the restore: it
// cannot go back, so the restore is brought on to it (catchUp).
type aheadError struct{ at, g *replication.GTIDState }

func (e *aheadError) Error() string {
	return fmt.Sprintf("the replica has applied %s, past the restore's point %s", e.at.Pos(), e.g.Pos())
}

func slavePos(conn *client.Conn) (*replication.GTIDState, error) {
	return gtidSlavePos(conn, "replica")
}

// gtidSlavePos reads a server's @@gtid_slave_pos; its errors start with
// who.
func gtidSlavePos(conn *client.Conn, who string) (*replication.GTIDState, error) {
	r, err := conn.Execute("SELECT @@gtid_slave_pos")
	if err != nil {
		return nil, fmt.Errorf("%s: @@gtid_slave_pos: %w", who, err)
	}
	s, _ := r.GetString(0, 0)
	st, err := replication.ParseGTIDState(s)
	if err != nil {
		return nil, fmt.Errorf("%s: @@gtid_slave_pos %q: %w", who, s, err)
	}
	return st, nil
}

// resume leaves the replica's threads as they were found: each running
// thread started again, each stopped one stopped (START SLAVE UNTIL may
// have started the IO thread).
func resume(conn *client.Conn, was threads) error {
	var stmts []string
	switch {
	case was.io && was.sql:
		stmts = []string{"START SLAVE"}
	case was.io:
		stmts = []string{"START SLAVE IO_THREAD"}
	case was.sql:
		stmts = []string{"STOP SLAVE IO_THREAD", "START SLAVE SQL_THREAD"}
	default:
		stmts = []string{"STOP SLAVE"}
	}
	for _, q := range stmts {
		if _, err := conn.Execute(q); err != nil {
			return fmt.Errorf("replica: %s (to leave its threads as they were): %w", q, err)
		}
	}
	return nil
}
