package snapshot

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/binarc/binarc/lease"
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
	// lease is the snapshot lease: it records that binarc stopped the
	// thread, so that the successor of a binarc that died starts it.
	lease *lease.Lease
	// tempWait bounds stopClear.
	tempWait time.Duration

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
	case before.SQLRunning != "Yes" && s.stoppedByDeadBinarc():
		// An earlier snapshot stopped it and died before it could start
		// it again; its lease says so. binarc finishes its job.
		s.log.Warn().Msg("the replica's SQL thread was already stopped by an earlier binarc snapshot that died (its lease says so); binarc starts it after this snapshot")
		if err := s.record(ctx); err != nil {
			return err
		}
		s.status = *before
	case before.SQLRunning != "Yes":
		// Stopped without an error and not by binarc: by the operator, on
		// purpose (to keep a bad statement from being applied, say). It
		// stays stopped.
		s.log.Warn().Msg("the replica's SQL thread was stopped before this snapshot, not by binarc: binarc takes the snapshot and leaves it stopped; run START SLAVE SQL_THREAD when you mean to")
		s.status = *before
	default:
		// Recorded in the lease before the STOP: a binarc that dies from
		// here on leaves its successor the note to start it.
		if err := s.record(ctx); err != nil {
			return err
		}
		st, err := s.stopClear(ctx)
		if err != nil {
			return err
		}
		s.status = *st
	}
	if s.status.IORunning != "Yes" {
		s.log.Warn().Str("io_running", s.status.IORunning).Str("last_io_error", s.status.LastIOError).
			Msg("the replica's IO thread is not running: the primary must keep its binlogs until it catches up")
	}
	return nil
}

// stopClear stops the SQL thread where it holds no temporary table of a
// replicated statement, as mariabackup --safe-slave-backup does. With
// statement-based replication (binlog_format STATEMENT, or MIXED for a
// statement it logs as one) a CREATE TEMPORARY TABLE lives in the SQL
// thread until the primary's session ends; a snapshot taken meanwhile
// has no such table, and every restore from it fails at the next
// statement that uses it. While Slave_open_temp_tables is not 0 the
// thread runs on for a moment and is stopped again, for up to tempWait;
// then the snapshot is refused (the thread is started again).
func (s *sqlThread) stopClear(ctx context.Context) (*ReplicaStatus, error) {
	deadline := time.Now().Add(s.tempWait)
	for spell := 250 * time.Millisecond; ; spell = min(2*spell, 4*time.Second) {
		st, err := s.conn.stopSQLThread(ctx)
		if err != nil {
			return nil, fmt.Errorf("stop the replica's SQL thread: %w", err)
		}
		open, err := s.conn.openTempTables()
		if err != nil || open == 0 {
			return st, err
		}
		if !time.Now().Before(deadline) {
			return nil, &ConfigError{
				Problem: fmt.Sprintf("the replica %s's SQL thread still holds %d temporary table(s) of replicated statements (Slave_open_temp_tables) after %v: a snapshot now would not restore past their next use", s.cfg.Addr(), open, s.tempWait),
				Hint:    "take the snapshot when the primary's sessions that create temporary tables have ended, give it longer with --temp-tables-wait, or replicate with binlog_format=ROW (no temporary table is replicated then)",
			}
		}
		s.log.Info().Int("open_temp_tables", open).Dur("run_for", spell).
			Msg("the replica's SQL thread holds temporary tables of replicated statements: letting it run a moment before stopping it again")
		if err := s.conn.startSQLThread(); err != nil {
			return nil, fmt.Errorf("start the replica's SQL thread again to close its temporary tables: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(spell):
		}
	}
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
	if s.lease != nil {
		ctx, cancel := context.WithTimeout(context.Background(), restartTimeout)
		defer cancel()
		if err := s.lease.SetStopped(ctx, nil); err != nil {
			s.log.Warn().Err(err).Msg("could not clear the note in the snapshot lease; the next snapshot may start an SQL thread stopped by hand")
		}
	}
	return nil
}

// threadNote is what the lease records for this replica's SQL thread.
func (s *sqlThread) threadNote() string { return "sql_thread " + s.cfg.Addr() }

// stoppedByDeadBinarc tells whether the lease this run took over says its
// holder stopped this replica's SQL thread and did not start it again.
func (s *sqlThread) stoppedByDeadBinarc() bool {
	if s.lease == nil || s.lease.Previous() == nil {
		return false
	}
	return slices.Contains(s.lease.Previous().Stopped, s.threadNote())
}

// record notes in the lease that binarc stopped (or took over) the SQL
// thread and must start it; from then on, even a failed STOP gets a START.
func (s *sqlThread) record(ctx context.Context) error {
	if s.lease != nil {
		if err := s.lease.SetStopped(ctx, []string{s.threadNote()}); err != nil {
			return fmt.Errorf("record in the snapshot lease that binarc stops the SQL thread: %w", err)
		}
	}
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	return nil
}
