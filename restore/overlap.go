package restore

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/snapshot"
)

// restoreOverlapped is a physical restore whose binlog is fetched and
// checked while the snapshot is downloaded, extracted and prepared, instead
// of before: the restore takes the longer of the two, then the replay. It
// starts with the snapshot choose would try first (the newest complete one
// at or before the target); nothing is replayed before the whole plan is
// fetched and checked, and a failed plan fails the restore and empties the
// directory, as any failure after the extraction does. When the archive
// does not reach the target from that snapshot (ErrOutsideWindow), done is
// false and the usual choice goes on with the older ones.
func restoreOverlapped(ctx context.Context, cat archive.Catalog, req *RestoreRequest, binlogDir string) (plan *RestorePlan, err error, done bool) {
	entries, err := snapshot.List(ctx, req.Store, req.Layout, req.Trust)
	if err != nil {
		return nil, nil, false // the usual path says why
	}
	var m *snapshot.Manifest
	for i := len(entries) - 1; i >= 0 && m == nil; i-- {
		if ok, _ := req.candidate(entries[i]); ok {
			m = entries[i].Manifest
		}
	}
	if m == nil || m.Method == snapshot.Logical {
		return nil, nil, false
	}
	tools, err := FindReplayTools()
	if err != nil {
		return nil, err, true
	}
	tools.Sandbox = req.sandbox
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var bp *Plan
	var perr error
	planned := make(chan struct{})
	pr := snapshotPlanRequest(m)
	pr.Target, pr.Skip, pr.WorkDir = req.Target, req.Skip, binlogDir
	go func() {
		defer close(planned)
		defer req.timed(PhaseBinlogFetch, time.Now())
		if bp, perr = PlanBinlog(pctx, cat, pr); perr != nil {
			cancel() // the snapshot's download and prepare stop too
		}
	}()
	wait := sync.OnceValues(func() (*Plan, error) {
		<-planned
		if perr == nil && req.PlanOut != nil {
			req.PlanOut(&RestorePlan{Snapshot: m, Binlog: bp})
		}
		return bp, perr
	})
	req.Log.Info().Str("snapshot", m.ID).Msg("fetching and checking the archived binlog while the snapshot is restored")
	err = restorePhysical(pctx, *req, m, wait, tools)
	// A plan that fails says so before a local failure would, as when the
	// plan came first: the archive's refusal is the one to fix first.
	wait()
	if perr != nil && (err == nil || !errors.Is(perr, context.Canceled)) {
		if errors.Is(perr, ErrOutsideWindow) && ctx.Err() == nil {
			if req.passedOver == nil {
				req.passedOver = map[string]string{}
			}
			req.passedOver[m.ID] = passedOver(m, perr)
			return nil, nil, false
		}
		return &RestorePlan{Snapshot: m}, perr, true
	}
	return &RestorePlan{Snapshot: m, Binlog: bp}, err, true
}
