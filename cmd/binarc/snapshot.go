package main

import (
	"context"
	"fmt"
	"time"

	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/snapshot"
	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"
)

type snapshotCmd struct {
	Source             string `env:"BINARC_SOURCE" placeholder:"URL" help:"The replica to back up: mysql://USER@HOST:PORT (put the password in BINARC_SOURCE_PASSWORD or --source-password-file, not here)."`
	SourcePasswordFile string `env:"BINARC_SOURCE_PASSWORD_FILE" type:"path" placeholder:"FILE" help:"File holding the password (first line)."`
	sourceTLSFlags
	storeFlags
	metricsFlags
	Method           string        `env:"BINARC_SNAPSHOT_METHOD" default:"physical" enum:"physical,logical" help:"physical (mariabackup/xtrabackup: the datadir, fast; runs on the server's host) or logical (mariadb-dump/mysqldump: SQL, any version)."`
	TempTablesWait   time.Duration `env:"BINARC_TEMP_TABLES_WAIT" default:"1m" placeholder:"DUR" help:"With statement-based replication, let the replica's SQL thread run on (in short spells) until it holds no temporary table of a replicated statement, for up to this long, before refusing the snapshot (mariabackup --safe-slave-backup does the same): a snapshot taken while it holds one would not restore past the table's next use."`
	Schedule         string        `env:"BINARC_SNAPSHOT_SCHEDULE" placeholder:"CRON" help:"Stay up and take a snapshot at these times: @weekly, @daily, \"@every 168h\" or a cron expression such as \"15 3 * * 0\" (UTC). Without it, take one snapshot and exit."`
	AllowPrimary     bool          `env:"BINARC_ALLOW_PRIMARY" help:"Back up a server that is not a replica (the coordinates then come from the backup tool)."`
	DatadirHostCheck bool          `env:"BINARC_DATADIR_HOST_CHECK" help:"Physical: also refuse unless the server's @@hostname is this host's name (off by default: a container sharing the server's volume has its own hostname)."`
	encryptFlags
	signFlags
	storeWriteFlags
	snapshotRetention
}

// Help is shown under binarc snapshot --help.
func (c *snapshotCmd) Help() string {
	return `Takes a full backup of a replica: stops its SQL thread (the IO thread keeps
running), records the primary's coordinates the replica has executed, streams
mariabackup (or mariadb-dump) output through zstd into the store, starts the
SQL thread again whatever happened, and writes the manifest last.

The user needs, on MariaDB 10.5+ (binarc checks and prints the GRANT):
  physical: RELOAD, PROCESS, BINLOG MONITOR (if the replica has a binlog)
  logical:  SELECT, SHOW VIEW, TRIGGER, EVENT (+ RELOAD, BINLOG MONITOR with --allow-primary)
  both: SLAVE MONITOR (to tell a replica); on a replica REPLICATION SLAVE ADMIN

Exit status: 0 when the snapshot is complete (or, with --schedule, after a
clean stop on SIGTERM), 2 for a bad command line, 1 otherwise.`
}

func (c *snapshotCmd) Run(ctx context.Context, log zerolog.Logger) error {
	method, err := snapshot.ParseMethod(c.Method)
	if err != nil {
		return usageError{fmt.Errorf("--method: %w", err)}
	}
	if c.TempTablesWait < 0 {
		return usageError{fmt.Errorf("--temp-tables-wait %v is negative: give how long to wait, such as 1m", c.TempTablesWait)}
	}
	var sched cron.Schedule
	if c.Schedule != "" {
		if sched, err = snapshot.ParseSchedule(c.Schedule); err != nil {
			return usageError{fmt.Errorf("--schedule: %w", err)}
		}
	}
	sf := sourceFlags{Source: c.Source, SourcePasswordFile: c.SourcePasswordFile, ServerID: replication.DefaultServerID, sourceTLSFlags: c.sourceTLSFlags}
	src, err := sf.config(log)
	if err != nil {
		return err
	}
	sealer, signer, err := writingKeys(c.encryptFlags, c.signFlags, log)
	if err != nil {
		return err
	}
	store, layout, err := c.storeFlags.open(ctx)
	if err != nil {
		return err
	}
	if err := c.storeWriteFlags.apply(ctx, store, layout); err != nil {
		return err
	}
	stopMetrics, take, err := c.metricsFlags.serveSnapshot(ctx, log, c.Cluster, store, layout)
	if err != nil {
		return err
	}
	defer stopMetrics()
	cfg := snapshot.Config{
		Source:           src,
		Method:           method,
		AllowPrimary:     c.AllowPrimary,
		DataDirHostCheck: c.DatadirHostCheck,
		Store:            store,
		Layout:           layout,
		Log:              log.With().Str("cluster", c.Cluster).Logger(),
		AfterStop:        testSnapshotHold(log),
		Encrypt:          sealer,
		Sign:             signer,
		TempTablesWait:   c.TempTablesWait,
	}
	log.Info().Str("source", src.String()).Str("store", store.String()).Str("cluster", c.Cluster).
		Str("method", string(method)).Msg("binarc snapshot starting")
	if sched == nil {
		m, err := take(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Printf("snapshot %s complete: %s, %d bytes stored (%d raw), at %s\n",
			m.ID, m.DataKey, m.StoredSize, m.RawSize, m.Coordinates)
		c.snapshotRetention.prune(ctx, log, store, layout)
		return nil
	}
	log.Info().Str("schedule", c.Schedule).Msg("running on a schedule; SIGTERM stops it")
	snapshot.RunScheduled(ctx, sched, cfg.Log, func(ctx context.Context) error {
		_, err := take(ctx, cfg)
		if err == nil {
			c.snapshotRetention.prune(ctx, log, store, layout)
		}
		return err
	})
	log.Info().Msg("binarc snapshot stopped")
	return nil
}
