package drill

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/crypt"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/archive/sign"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/restore"
	"github.com/binarc/binarc/snapshot"
	"github.com/rs/zerolog"
)

// Request is one drill.
type Request struct {
	Store  objstore.Store
	Layout archive.Layout
	Target restore.Target
	// Replica, when set, is the replica of the cluster the restore is
	// compared with; nil checks the restore alone (CHECK TABLE, row
	// counts, the GTID position).
	Replica *replication.Config
	// MaxReplicaPause bounds how long the replica's SQL thread is held.
	MaxReplicaPause time.Duration
	// ChunkTime is the time one checksum chunk should take (default 250 ms).
	ChunkTime time.Duration
	// ScratchDir is where the scratch data directory is made (default the
	// system's temporary directory).
	ScratchDir string
	// KeepDatadir keeps the restored data directory (its path is logged).
	KeepDatadir bool
	Opener      *crypt.Opener
	// Trust, when set (--trust-key), refuses every object read that is
	// not signed by one of its keys, as binarc restore does.
	Trust *sign.Trust
	// NoJail runs the restore's programs without the jail (--no-jail): in
	// a container, where the pod is the sandbox and binarc is not root.
	NoJail        bool
	ReplayThreads int
	Log           zerolog.Logger
}

// ErrDifferent means the drill found a table that differs.
var ErrDifferent = errors.New("the restore differs from the live cluster")

// Run runs one drill and returns its report; the report is also returned
// with an error when the drill failed after it started (Error is set).
// It does not store the report (Store does).
func Run(ctx context.Context, req Request) (*Report, error) {
	rep := &Report{Version: RecordVersion, Cluster: req.Layout.Cluster, Started: time.Now().UTC(), Target: req.Target.String(), Mode: "check"}
	if req.Replica != nil {
		rep.Mode, rep.Replica = "replica", req.Replica.String()
	}
	err := run(ctx, req, rep)
	rep.Finished = time.Now().UTC()
	if err != nil && !errors.Is(err, ErrDifferent) {
		rep.Error = err.Error()
	}
	return rep, err
}

// run is Run: the checks, the scratch directory, the restore, the
// comparison.
func run(ctx context.Context, req Request, rep *Report) error {
	if req.ChunkTime <= 0 {
		req.ChunkTime = 250 * time.Millisecond
	}
	parent := req.ScratchDir
	if parent == "" {
		parent = os.TempDir()
	}
	if err := preflightReplica(ctx, req); err != nil {
		return err
	}
	m, err := checkSpace(ctx, req.Store, req.Layout, req.Trust, parent)
	if err != nil {
		return err
	}
	scratch, err := os.MkdirTemp(parent, "binarc-drill-")
	if err != nil {
		return fmt.Errorf("scratch directory: %w", err)
	}
	// The sandbox user runs the temporary server in scratch/data.
	if err := os.Chmod(scratch, 0o711); err != nil {
		return err
	}
	datadir := filepath.Join(scratch, "data")
	if req.KeepDatadir {
		defer req.Log.Info().Str("datadir", datadir).Msg("--keep-datadir: the restored data directory is kept")
	} else {
		defer os.RemoveAll(scratch)
	}
	restoreOnto := restorePhysical
	if m.Method == snapshot.Logical {
		restoreOnto = restoreLogical
	}
	// The fetched binlog, which the confined mariadb-binlog reads for a
	// logical snapshot: made first, reachable by the sandbox user.
	work := filepath.Join(scratch, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	srv, plan, err := restoreOnto(ctx, req, rep, datadir, work)
	if err != nil {
		return err
	}
	defer srv.stop()
	compareStarted := time.Now()
	err = compare(ctx, req, rep, srv, plan)
	rep.Phases = append(rep.Phases, Phase{Name: "compare", Seconds: time.Since(compareStarted).Seconds()})
	if err != nil {
		return err
	}
	if n := rep.Count(Different); n > 0 {
		return fmt.Errorf("%w: %d of %d tables differ at GTID %s", ErrDifferent, n, len(rep.Tables), rep.GTID)
	}
	return nil
}

// restorePhysical runs the restore binarc restore --datadir runs, then
// starts the temporary server on the result.
func restorePhysical(ctx context.Context, req Request, rep *Report, datadir, work string) (*server, *restore.RestorePlan, error) {
	rreq := restoreRequest(req, rep, work)
	rreq.Datadir = datadir
	req.Log.Info().Str("target", req.Target.String()).Str("datadir", datadir).Msg("drill: restoring as binarc restore --datadir does")
	plan, err := restoreInto(ctx, rreq, rep)
	if err != nil {
		return nil, nil, err
	}
	srv, err := startServer(ctx, datadir, req.NoJail)
	return srv, plan, err
}

// restoreLogical starts the temporary server on an empty data directory
// and restores a logical snapshot into it, as binarc restore --target
// does.
func restoreLogical(ctx context.Context, req Request, rep *Report, datadir, work string) (*server, *restore.RestorePlan, error) {
	srv, err := startEmptyServer(ctx, datadir, req.NoJail)
	if err != nil {
		return nil, nil, err
	}
	rreq := restoreRequest(req, rep, work)
	rreq.Server = srv.client()
	req.Log.Info().Str("target", req.Target.String()).Str("datadir", datadir).Msg("drill: loading the logical snapshot into an empty temporary server, as binarc restore --target does")
	plan, err := restoreInto(ctx, rreq, rep)
	if err != nil {
		srv.stop()
		return nil, nil, err
	}
	return srv, plan, nil
}

// restoreRequest is the restore a drill runs, its phases timed into rep.
func restoreRequest(req Request, rep *Report, work string) restore.RestoreRequest {
	var mu sync.Mutex
	return restore.RestoreRequest{Store: req.Store, Layout: req.Layout, Target: req.Target, WorkDir: work,
		Log: req.Log, Opener: req.Opener, Trust: req.Trust, NoJail: req.NoJail, Replay: restore.ReplayViaServe, ReplayThreads: req.ReplayThreads,
		Timing: func(phase string, took time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			rep.Phases = append(rep.Phases, Phase{Name: phase, Seconds: took.Seconds()})
		},
		Progress: func(p restore.ProgressInfo) {
			mu.Lock()
			defer mu.Unlock()
			rep.Transactions = p.Transactions
		},
	}
}

// restoreInto runs the restore and notes what it did in rep.
func restoreInto(ctx context.Context, rreq restore.RestoreRequest, rep *Report) (*restore.RestorePlan, error) {
	plan, err := restore.Restore(ctx, rreq)
	rep.RestoreSeconds = time.Since(rep.Started).Seconds()
	if plan != nil && plan.Snapshot != nil {
		rep.Snapshot = plan.Snapshot.ID
		rep.Tools = toolVersions(ctx, plan.Snapshot)
	}
	if err != nil {
		return nil, fmt.Errorf("the restore failed: %w", err)
	}
	if plan.Binlog != nil {
		rep.StoppedAt = plan.Binlog.Timeline + "/" + plan.Binlog.Stop.String()
		rep.ReplayedBytes, rep.FetchedBytes = plan.Binlog.ReplayBytes, plan.Binlog.StoredBytes
	}
	return plan, nil
}

// compare compares the restored server: with the replica, or by itself.
func compare(ctx context.Context, req Request, rep *Report, srv *server, plan *restore.RestorePlan) error {
	conn, err := srv.connect()
	if err != nil {
		return err
	}
	defer conn.Close()
	g, err := restoredGTID(conn, plan)
	if g != nil {
		rep.GTID = g.Pos()
	}
	if err != nil {
		return err
	}
	if req.Replica == nil {
		return checkTables(rep, conn)
	}
	req.Log.Info().Str("gtid", rep.GTID).Msg("drill: summing the restored tables by primary key chunks")
	restored, err := sumRestored(conn, req.ChunkTime)
	if err != nil {
		return err
	}
	rconn, err := req.Replica.Connect(ctx)
	if err != nil {
		return fmt.Errorf("--replica %s: %w", req.Replica, err)
	}
	defer rconn.Close()
	req.Log.Info().Str("replica", req.Replica.String()).Str("gtid", rep.GTID).Msg("drill: pausing the replica at the restore's point and comparing")
	return compareReplica(ctx, rep, rconn, compareOptions{Addr: req.Replica.String(), Budget: req.MaxReplicaPause, GTID: g, Restored: restored,
		CatchUp: func(ctx context.Context, at *replication.GTIDState, deadline time.Time) ([]restoredTable, error) {
			return catchUp(ctx, req, srv, plan, g, at, deadline)
		}})
}

// preflightReplica refuses a --replica that is not one (or cannot be
// reached) before the restore, not after it.
func preflightReplica(ctx context.Context, req Request) error {
	if req.Replica == nil {
		return nil
	}
	conn, err := req.Replica.Connect(ctx)
	if err != nil {
		return fmt.Errorf("--replica %s: %w", req.Replica, err)
	}
	defer conn.Close()
	_, err = checkReplica(conn, req.Replica.String())
	return err
}
