package snapshot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/crypt"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/archive/sign"
	"github.com/binarc/binarc/lease"
	"github.com/binarc/binarc/replication"
	"github.com/rs/zerolog"
)

// Config is what a snapshot needs.
type Config struct {
	// Source is the server to back up: a replica, or a primary with
	// AllowPrimary.
	Source replication.Config
	Method Method
	// AllowPrimary permits a snapshot of a server that is not a replica;
	// its coordinates then come from the backup tool.
	AllowPrimary bool
	// DataDirHostCheck makes a physical snapshot refuse unless the
	// server's @@hostname is this host's name (see Take).
	DataDirHostCheck bool
	Store            objstore.Store
	Layout           archive.Layout
	Log              zerolog.Logger
	// AfterStop, when set, runs once the replica's SQL thread is stopped
	// and before the backup starts. Only test builds set it (to look at
	// the replica in that state); binarc itself never does.
	AfterStop func(ctx context.Context)
	// Encrypt, if set, encrypts the data object to its recipients
	// (--encrypt-to). Without it, Take refuses an archive that holds
	// encrypted binlog.
	Encrypt *crypt.Sealer
	// Sign, if set, signs the manifest (--sign-key); the manifest's
	// sha256 covers the data object.
	Sign *sign.Signer
	// TempTablesWait is how long the replica's SQL thread may run on, in
	// short spells, until it holds no temporary table of a replicated
	// statement (Slave_open_temp_tables 0) before the snapshot is
	// refused; 0: DefaultTempTablesWait.
	TempTablesWait time.Duration
}

// DefaultTempTablesWait is Config.TempTablesWait's default.
const DefaultTempTablesWait = time.Minute

// LeaseTTL is how long the snapshot lease lasts without renewal.
const LeaseTTL = 30 * time.Second

// restartTimeout bounds START SLAVE SQL_THREAD, which runs on a fresh
// context: the snapshot's may be cancelled (SIGTERM) by then.
const restartTimeout = 60 * time.Second

// Take takes one snapshot and returns its manifest.
//
// The procedure, on a replica: check everything that can be checked first
// (tool installed, privileges, datadir on this host), take the snapshot
// lease, stop the SQL thread (the IO thread keeps fetching, so the primary
// need not keep binlogs for us), record the primary's coordinates the
// replica has executed, run the tool into the store, start the SQL thread
// again as soon as the tool exits (and on every error path, signal
// included), then write the manifest. A failed snapshot leaves no manifest,
// no data object and no multipart upload.
func Take(ctx context.Context, cfg Config) (*Manifest, error) {
	log := cfg.Log
	sp := cfg.Store
	if err := checkEncryption(ctx, cfg); err != nil {
		return nil, err
	}
	c, t, st, err := preflight(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer c.close()
	replica := st != nil
	ctx, lease, release, err := holdLease(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer release()

	m := newManifest(cfg, c, t, time.Now().UTC())
	id := m.ID
	log = log.With().Str("snapshot", id).Logger()

	r := &sqlThread{cfg: cfg.Source, conn: c, log: log, lease: lease, tempWait: cmp.Or(cfg.TempTablesWait, DefaultTempTablesWait)}
	defer func() {
		if err := r.restart(); err != nil {
			log.Error().Err(err).Msg("REPLICA SQL THREAD STILL STOPPED")
		}
	}()
	if replica {
		if err := r.stopAndRecord(ctx, st, m); err != nil {
			return nil, err
		}
	}
	if cfg.AfterStop != nil {
		cfg.AfterStop(ctx)
	}

	w, err := newWorkDir(cfg.Source)
	if err != nil {
		return nil, err
	}
	defer w.cleanup()
	p := &pipeline{
		sealer: cfg.Encrypt,
		cmd:    backupCommand(ctx, cfg.Method, t, w, c.info, !replica),
		onExit: func() {
			log.Info().Msg("backup tool exited; the rest of its output is uploading")
			if err := r.restart(); err != nil {
				log.Error().Err(err).Msg("REPLICA SQL THREAD STILL STOPPED")
			}
		},
	}
	var fromTool coordinateScanner
	if !replica {
		fromTool = newCoordinateScanner(cfg.Method)
		p.sniff = fromTool
	}
	log.Info().Str("tool", t.Path).Str("key", m.DataKey).Msg("backup running")
	res, err := p.run(ctx, sp, m.DataKey)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	// From here on a failure must not leave the data object behind
	// without a manifest: it would only be an incomplete snapshot, but it
	// is also bytes nobody can use.
	done := false
	defer func() {
		if !done {
			dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer dcancel()
			if err := cfg.Store.Delete(dctx, m.DataKey); err != nil {
				log.Warn().Err(err).Str("key", m.DataKey).Msg("could not delete the data of the failed snapshot; ls shows it as incomplete")
			}
		}
	}()
	if fromTool != nil {
		if m.Coordinates, err = fromTool.coordinates(); err != nil {
			return nil, fmt.Errorf("snapshot %s of %s: %w", id, cfg.Source.Addr(), err)
		}
	}
	if err := r.restart(); err != nil {
		return nil, err
	}
	m.Finished = time.Now().UTC()
	m.RawSize, m.StoredSize, m.SHA256 = res.RawSize, res.StoredSize, res.SHA256
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("snapshot %s interrupted before its manifest was written: %w", id, context.Cause(ctx))
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("snapshot %s: its manifest would be refused by every reader, so it is not written: %w", id, err)
	}
	if _, err := cfg.Store.Put(ctx, cfg.Layout.SnapshotManifestKey(id), cfg.Sign.Sign(cfg.Layout.SnapshotManifestKey(id), MarshalManifest(m)), objstore.PutOptions{IfAbsent: true}); err != nil {
		return nil, fmt.Errorf("snapshot %s: write manifest: %w", id, err)
	}
	done = true
	log.Info().Str("coordinates", m.Coordinates.String()).Int64("raw_bytes", m.RawSize).Int64("stored_bytes", m.StoredSize).
		Dur("took", m.Finished.Sub(m.Started).Round(time.Millisecond)).Msg("snapshot complete")
	return m, nil
}

// newManifest starts the manifest of a snapshot begun at started.
func newManifest(cfg Config, c *conn, t tool, started time.Time) *Manifest {
	id := archive.FormatSnapshotID(started, string(cfg.Method))
	m := &Manifest{
		Version:        manifestVersionPlain,
		ID:             id,
		Method:         cfg.Method,
		Flavor:         string(c.info.Flavor),
		ServerVersion:  c.info.Version,
		SourceAddr:     cfg.Source.Addr(),
		SourceServerID: c.info.ServerID,
		Started:        started,
		DataKey:        cfg.Layout.SnapshotDataKey(id, dataName(cfg.Method)),
		Tool:           t.Name,
		ToolVersion:    t.Version,
		Encryption:     archive.EncryptionOf(cfg.Encrypt),
	}
	if cfg.Encrypt != nil {
		m.Version = ManifestVersion
	}
	return m
}

// stopAndRecord stops the replica's SQL thread and records in m where it
// stopped: the primary's coordinates, its GTID position and the replica's.
func (r *sqlThread) stopAndRecord(ctx context.Context, st *ReplicaStatus, m *Manifest) error {
	if err := r.stop(ctx, st); err != nil {
		return err
	}
	if err := executedCoordinates(r.cfg.Addr(), r.status); err != nil {
		return err
	}
	var err error
	m.MasterServerID, m.MasterServerUUID = r.status.MasterServerID, r.status.MasterUUID
	m.Coordinates = Coordinates{File: r.status.MasterFile, Pos: r.status.ExecPos, From: "replica"}
	if m.Coordinates.GTIDSet, err = r.conn.gtidPosition(); err != nil {
		return err
	}
	if m.ServerGTID, err = r.conn.serverGTID(); err != nil {
		return err
	}
	r.log.Info().Str("coordinates", m.Coordinates.String()).Msg("replica SQL thread stopped; coordinates recorded")
	return nil
}

// executedCoordinates refuses a replica that has executed nothing from a
// primary (Relay_Master_Log_File empty: replication never started, was
// reset, or its IO thread failed before anything was applied): its data
// has no binlog coordinates a restore could start from.
func executedCoordinates(addr string, st ReplicaStatus) error {
	if st.MasterFile == "" || st.ExecPos < replication.MagicLen {
		return fmt.Errorf("replica %s has no executed coordinates of its primary (Relay_Master_Log_File %q, Exec_Master_Log_Pos %d): replication never ran there, was reset, or stopped before applying anything; check SHOW SLAVE STATUS (Last_IO_Error), or snapshot another replica", addr, st.MasterFile, st.ExecPos)
	}
	return nil
}

// preflight checks everything that can be checked before the replica is
// touched: the connection, the tool, the privileges, that the server is a
// replica (or --allow-primary), the datadir. It returns the session, the
// tool and the replica status (nil for a primary).
func preflight(ctx context.Context, cfg Config) (*conn, tool, *ReplicaStatus, error) {
	c, err := dial(ctx, cfg.Source)
	if err != nil {
		return nil, tool{}, nil, err
	}
	st, t, err := func() (*ReplicaStatus, tool, error) {
		if err := c.detect(); err != nil {
			return nil, tool{}, err
		}
		t, err := findTool(ctx, c.info.Flavor, cfg.Method)
		if err != nil {
			return nil, tool{}, err
		}
		if err := c.checkPrivileges(cfg.Method, false, true); err != nil {
			return nil, tool{}, err
		}
		st, err := c.replicaStatus()
		if err != nil {
			return nil, tool{}, err
		}
		if st == nil && !cfg.AllowPrimary {
			return nil, tool{}, &ConfigError{
				Problem: fmt.Sprintf("server %s is not a replica (SHOW %s STATUS is empty): a snapshot is taken from a replica, whose SQL thread binarc stops, so the primary is not slowed", cfg.Source.Addr(), c.replicaWord()),
				Hint:    "point --source at a replica, or pass --allow-primary to back up this server anyway (the coordinates then come from the backup tool)",
			}
		}
		if err := c.checkPrivileges(cfg.Method, st != nil, false); err != nil {
			return nil, tool{}, err
		}
		if cfg.Method == Physical {
			if err := checkDataDir(c.info, cfg.DataDirHostCheck); err != nil {
				return nil, tool{}, err
			}
		}
		return st, t, nil
	}()
	if err != nil {
		c.close()
		return nil, tool{}, nil, err
	}
	return c, t, st, nil
}

// holdLease takes the cluster's snapshot lease and keeps it renewed; the
// returned context ends if the lease is lost. It also sweeps the uploads
// that snapshots which died left behind: holding the lease, any upload
// under the snapshot folder is such a leftover. release gives the lease
// back.
func holdLease(ctx context.Context, cfg Config) (context.Context, *lease.Lease, func(), error) {
	lease, err := lease.AcquireAt(ctx, cfg.Store, cfg.Layout.SnapshotLeaseKey(), cfg.Layout.Cluster, "binarc snapshot", LeaseTTL)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, giveBack := lease.Hold(ctx)
	release := func() {
		if err := giveBack(); err != nil {
			cfg.Log.Warn().Err(err).Msg("could not release the snapshot lease; it expires by itself")
		}
	}
	n, err := cfg.Store.SweepUploads(ctx, cfg.Layout.SnapshotsPrefix())
	if err != nil {
		release()
		return nil, nil, nil, fmt.Errorf("clean up unfinished uploads of earlier snapshots: %w", err)
	}
	if n > 0 {
		cfg.Log.Warn().Int("uploads", n).Msg("removed unfinished uploads left by an earlier snapshot that died")
	}
	return ctx, lease, release, nil
}

// checkDataDir makes sure the server's datadir is on this host: mariabackup
// copies its files, so it runs where the server runs (or where its volume
// is mounted). With hostCheck, the server's @@hostname must also be this
// host's name, which tells apart two hosts that both have /var/lib/mysql;
// it is off by default because a container sharing the server's volume has
// a hostname of its own.
func checkDataDir(info ServerInfo, hostCheck bool) error {
	fi, err := os.Stat(info.DataDir)
	if err != nil || !fi.IsDir() {
		return &ConfigError{
			Problem: fmt.Sprintf("the server's datadir %s is not on this host (%v): mariabackup copies the datadir's files", info.DataDir, errOr(err, errors.New("not a directory"))),
			Hint:    "run binarc snapshot on the server's host (or mount its datadir at the same path), or use --method logical",
		}
	}
	if hostCheck {
		host, _ := os.Hostname()
		if host != info.Hostname {
			return &ConfigError{
				Problem: fmt.Sprintf("the server runs on host %q but binarc on %q (--datadir-host-check)", info.Hostname, host),
				Hint:    "run binarc snapshot on the server's host, or drop --datadir-host-check if the datadir is shared with this host",
			}
		}
	}
	return nil
}
