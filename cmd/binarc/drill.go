package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/binarc/binarc/drill"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/restore"
	"github.com/binarc/binarc/snapshot"
	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"
)

type drillCmd struct {
	storeFlags
	Replica             string        `env:"BINARC_REPLICA" placeholder:"URL" help:"A replica of the cluster to compare with (mysql://USER@HOST:PORT; never the primary): paused at the restore's point (STOP SLAVE; START SLAVE UNTIL), checksummed, started again as it was. Password from BINARC_REPLICA_PASSWORD or --replica-password-file. Without it: CHECK TABLE, row counts and the GTID position."`
	ReplicaPasswordFile string        `env:"BINARC_REPLICA_PASSWORD_FILE" type:"path" placeholder:"FILE" help:"File holding the replica's password."`
	ReplicaTLS          string        `name:"replica-tls" env:"BINARC_REPLICA_TLS" default:"preferred" enum:"disable,preferred,required,verify-ca,verify-full" help:"TLS to the replica: disable, preferred, required, verify-ca or verify-full (checked against the system's CA roots)."`
	To                  string        `default:"latest" help:"Where the restore stops: latest, or a time, position or GTID as binarc restore --to takes."`
	Schedule            string        `env:"BINARC_DRILL_SCHEDULE" placeholder:"CRON" help:"Stay up and drill at these times (@weekly, \"15 4 * * 0\", UTC). Without it, drill once and exit."`
	MaxReplicaPause     time.Duration `default:"5m" help:"Longest the replica's SQL thread is held; a drill that would take longer compares fewer tables and says so."`
	ChunkTime           time.Duration `default:"250ms" help:"Time one checksum chunk (a primary key range) should take."`
	ScratchDir          string        `type:"path" help:"Where the scratch data directory is made (default: the system's temporary directory); it must hold the snapshot and the binlog to replay."`
	KeepDatadir         bool          `help:"Keep the restored data directory (its path is logged)."`
	ReplayThreads       int           `default:"4" placeholder:"N" help:"slave_parallel_threads of the replay, as binarc restore --replay-threads."`
	identityFlags
	trustFlags
	NoJail bool `env:"BINARC_NO_JAIL" help:"Run the restore's programs without the jail (as binarc restore --no-jail): in a container, where the pod is the sandbox and binarc is not root. binarc warns on every run."`
	metricsFlags
}

func (c *drillCmd) Help() string {
	return `Restores the newest snapshot and the archived binlog into a scratch directory,
as binarc restore --datadir does, and compares the result with the live cluster:
per-table checksums (by primary key chunks) against --replica paused at the same
GTID position, or CHECK TABLE and row counts without one. The report is printed,
stored in the bucket (binarc ls shows the last one) and exported as metrics.

Exit status: 0 when every table compared is equal (or, "incomplete", when the
replica could not be compared this time: the notes say why, and it is not
counted as a successful drill), 1 when a table differs or the drill failed,
2 on bad input. The replica's user needs REPLICATION SLAVE ADMIN (STOP/START
SLAVE), SLAVE MONITOR, and SELECT on the tables.`
}

func (c *drillCmd) Run(ctx context.Context, log zerolog.Logger) error {
	req, err := c.request(ctx, log)
	if err != nil {
		return err
	}
	var sched cron.Schedule
	if c.Schedule != "" {
		if sched, err = snapshot.ParseSchedule(c.Schedule); err != nil {
			return usageError{fmt.Errorf("--schedule: %w", err)}
		}
	}
	m := &drill.Metrics{}
	stop, err := c.serve(log, c.Cluster, func() error { return nil }, m)
	if err != nil {
		return err
	}
	defer stop()
	if sched == nil {
		return runDrill(ctx, req, m)
	}
	m.Seed(ctx, log, req.Store, req.Layout)
	log.Info().Str("schedule", c.Schedule).Msg("drilling on a schedule; SIGTERM stops it")
	drill.RunScheduled(ctx, sched, log, func(ctx context.Context) error { return runDrill(ctx, req, m) })
	return nil
}

// request turns the flags into a drill request.
func (c *drillCmd) request(ctx context.Context, log zerolog.Logger) (drill.Request, error) {
	target, err := restore.ParseTarget(c.To)
	if err != nil {
		return drill.Request{}, usageError{fmt.Errorf("--to: %w", err)}
	}
	if c.MaxReplicaPause <= 0 || c.ChunkTime <= 0 {
		return drill.Request{}, usageError{fmt.Errorf("--max-replica-pause and --chunk-time must be positive durations (e.g. 5m, 250ms)")}
	}
	req := drill.Request{Target: target, MaxReplicaPause: c.MaxReplicaPause, ChunkTime: c.ChunkTime, ScratchDir: c.ScratchDir,
		KeepDatadir: c.KeepDatadir, ReplayThreads: c.ReplayThreads, Log: log}
	if c.Replica != "" {
		env, envSet := os.LookupEnv("BINARC_REPLICA_PASSWORD")
		cfg, err := replication.Sources{URL: c.Replica, ServerID: replication.DefaultServerID, Log: log,
			Password: replication.PasswordFrom{File: c.ReplicaPasswordFile, FileFlag: "--replica-password-file", Env: env, EnvSet: envSet},
			TLS:      replication.TLSOptions{Mode: replication.TLSMode(c.ReplicaTLS), Flag: "--replica-tls"}}.ParseOne()
		if err != nil {
			return drill.Request{}, usageError{fmt.Errorf("--replica: %w", err)}
		}
		req.Replica = &cfg
	}
	req.NoJail = c.NoJail
	if req.Trust, err = c.trustFlags.trust(); err != nil {
		return req, err
	}
	if req.Opener, err = c.identityFlags.opener(log); err != nil {
		return drill.Request{}, err
	}
	if req.Store, req.Layout, err = c.storeFlags.open(ctx); err != nil {
		return drill.Request{}, err
	}
	return req, nil
}

// runDrill runs one drill, prints and stores its report, and counts it.
func runDrill(ctx context.Context, req drill.Request, m *drill.Metrics) error {
	setRestoreMemoryLimit()
	rep, err := drill.Run(ctx, req)
	if ctx.Err() != nil {
		return err // interrupted: nothing to record
	}
	printDrill(os.Stdout, rep)
	m.Record(rep)
	key, serr := drill.Store(ctx, req.Store, req.Layout, rep)
	if serr != nil {
		return errors.Join(err, serr)
	}
	req.Log.Info().Str("record", key).Str("outcome", rep.Outcome()).Msg("drill done")
	return err
}
