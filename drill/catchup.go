package drill

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/restore"
)

// catchUp replays the archive into the running temporary server from
// where the restore stopped up to at, the position of a replica that ran
// ahead of the archive's end while the restore ran (what it always does
// beside a primary taking writes), waiting for the archive to hold it
// until deadline; then it sums the restored tables again. The replay is
// the restore's own (restore.Restore from those coordinates, through the
// server's applier), so the comparison still tests the archive.
func catchUp(ctx context.Context, req Request, srv *server, plan *restore.RestorePlan, g, at *replication.GTIDState, deadline time.Time) ([]restoredTable, error) {
	target, err := oneDomainTarget(g, at)
	if err != nil {
		return nil, err
	}
	from := plan.Binlog.Stop
	work := filepath.Join(srv.runDir, "catchup")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	rreq := restore.RestoreRequest{Store: req.Store, Layout: req.Layout, Target: target, From: &from, FromTimeline: plan.Binlog.Timeline,
		Server: srv.client(), ForceTarget: true, Replay: restore.ReplayViaServe,
		WorkDir: work, Log: req.Log.With().Str("phase", "catch-up").Logger(), Opener: req.Opener, Trust: req.Trust, NoJail: req.NoJail}
	// The replica waits meanwhile: the catch-up is part of its pause.
	rctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	for {
		_, err = restore.Restore(rctx, rreq)
		if !errors.Is(err, restore.ErrOutsideWindow) || rctx.Err() != nil {
			break
		}
		time.Sleep(time.Second) // the archiver stores what it receives within its --flush-interval
	}
	if ctx.Err() == nil && rctx.Err() != nil {
		return nil, notCompared("the replica is at %s, and the restore could not be brought on to it within --max-replica-pause", at.Pos())
	}
	if errors.Is(err, restore.ErrOutsideWindow) {
		return nil, notCompared("the replica is at %s, and the archive did not hold that position within --max-replica-pause: %v", at.Pos(), firstLine(err.Error()))
	}
	if err != nil {
		return nil, fmt.Errorf("bring the restore on to the replica's position %s: %w", at.Pos(), err)
	}
	conn, err := srv.connect()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if got, err := gtidSlavePos(conn, "restored server"); err != nil || !got.SamePosition(at) {
		return nil, fmt.Errorf("the restore brought on to %s stands at %v (%v)", at.Pos(), got, err)
	}
	return sumRestored(conn, req.ChunkTime)
}

// oneDomainTarget is the restore target that brings a server at g to at:
// the last GTID of the one replication domain in which they differ. Two
// domains would need a stop in each, which a restore target cannot say.
func oneDomainTarget(g, at *replication.GTIDState) (restore.Target, error) {
	have := map[string]bool{}
	for _, p := range strings.Split(g.Pos(), ",") {
		have[p] = true
	}
	var differ []string
	for _, p := range strings.Split(at.Pos(), ",") {
		if !have[p] {
			differ = append(differ, p)
		}
	}
	if len(differ) != 1 {
		return restore.Target{}, notCompared("the replica at %s is past the restore's point %s in %d replication domains: a drill brings a restore on in one only; drill when the replica lags the archive (or with --to a point it has not reached)", at.Pos(), g.Pos(), len(differ))
	}
	return restore.ParseTarget(differ[0])
}
