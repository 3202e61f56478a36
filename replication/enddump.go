package replication

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// EndDump ends a dump connection an earlier binarc left on the server at
// c: the thread threadID, if it is still a Binlog Dump of c's user and the
// server has not restarted since recorded (a restart reuses thread ids).
// It reports whether it ended one.
//
// Why: MariaDB 10.11 removes a semi-sync replica's old dump from its
// acknowledgement receiver when a new dump arrives under the same
// server_id, and waits for the receiver to notice while holding the
// server's thread list; the receiver polls its replicas' sockets with no
// timeout, so with the old connection silent (a partition, a middlebox
// that dropped the flow) the primary accepts no connection until that
// socket ends (docs/RELIABILITY.md, finding 14). KILL shuts the socket
// down, which wakes the receiver. A user may KILL its own threads without
// any privilege.
func EndDump(ctx context.Context, c Config, threadID uint32, recorded time.Time) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := c.connect(ctx, 10*time.Second)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	r, err := conn.Execute("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'UPTIME'")
	if err != nil {
		return false, fmt.Errorf("read the server's uptime: %w", err)
	}
	uptime, _ := r.GetInt(0, 0)
	if boot := time.Now().Add(-time.Duration(uptime) * time.Second); boot.After(recorded.Add(5 * time.Second)) {
		return false, nil // restarted since: the id is another thread's
	}
	r, err = conn.Execute("SELECT COMMAND, USER FROM information_schema.PROCESSLIST WHERE ID = ?", threadID)
	if err != nil {
		return false, fmt.Errorf("look for thread %d: %w", threadID, err)
	}
	if r.RowNumber() == 0 {
		return false, nil
	}
	command, _ := r.GetString(0, 0)
	user, _ := r.GetString(0, 1)
	if !strings.EqualFold(command, "Binlog Dump") || user != c.User {
		return false, nil
	}
	if _, err := conn.Execute(fmt.Sprintf("KILL CONNECTION %d", threadID)); err != nil {
		return false, fmt.Errorf("KILL CONNECTION %d: %w", threadID, err)
	}
	return true, nil
}
