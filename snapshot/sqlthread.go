package snapshot

import (
	"context"
	"fmt"
	"sync"

	"github.com/binarc/binarc/replication"
	"github.com/rs/zerolog"
)

// sqlThread stops a replica's SQL thread and makes sure it runs again: the
// first restart call starts it, whatever stopped the snapshot, on a fresh
// context and, if the snapshot's session broke, a new one.
type sqlThread struct {
	cfg    replication.Config
	conn   *conn
	log    zerolog.Logger
	status ReplicaStatus // with the SQL thread stopped

	mu        sync.Mutex
	stopped   bool // binarc stopped it, so binarc must start it
	restarted bool
	err       error
}

func (s *sqlThread) stop(ctx context.Context, before *ReplicaStatus) error {
	switch {
	case before.SQLRunning != "Yes" && before.LastSQLErrno != 0:
		// Stopped by a replication error: the data is still, so the
		// snapshot is consistent, but starting the thread would only fail
		// again. The operator must look at it.
		s.log.Warn().Int("last_sql_errno", before.LastSQLErrno).Str("last_sql_error", before.LastSQLError).
			Msg("the replica's SQL thread is stopped by a replication error; binarc takes the snapshot and leaves the thread stopped")
		s.status = *before
	case before.SQLRunning != "Yes":
		// Stopped without an error: by hand, or by a binarc that was
		// killed mid-snapshot and could not start it again. The procedure
		// ends with the thread running, so binarc starts it afterwards.
		s.log.Warn().Msg("the replica's SQL thread was already stopped (by hand, or by an earlier snapshot that died); binarc starts it after this snapshot")
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
		s.status = *before
	default:
		s.mu.Lock()
		s.stopped = true // from here on, even a failed STOP gets a START
		s.mu.Unlock()
		st, err := s.conn.stopSQLThread(ctx)
		if err != nil {
			return fmt.Errorf("stop the replica's SQL thread: %w", err)
		}
		s.status = *st
	}
	if s.status.IORunning != "Yes" {
		s.log.Warn().Str("io_running", s.status.IORunning).Str("last_io_error", s.status.LastIOError).
			Msg("the replica's IO thread is not running: the primary must keep its binlogs until it catches up")
	}
	return nil
}

// restart starts the SQL thread again if binarc stopped it; later calls
// return the first call's result.
func (s *sqlThread) restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped || s.restarted {
		return s.err
	}
	s.restarted = true
	err := s.conn.startSQLThread()
	if err != nil {
		// The session may be what broke (a killed connection, a timeout):
		// try once more on a new one.
		ctx, cancel := context.WithTimeout(context.Background(), restartTimeout)
		defer cancel()
		var c *conn
		if c, err = dial(ctx, s.cfg); err == nil {
			c.info = s.conn.info
			err = c.startSQLThread()
			c.close()
		}
	}
	if err != nil {
		s.err = fmt.Errorf("could not start the replica's SQL thread again: run START %s SQL_THREAD on %s now, or replication stays behind: %w",
			s.conn.replicaWord(), s.cfg.Addr(), err)
		return s.err
	}
	s.log.Info().Msg("replica SQL thread started again")
	return nil
}
