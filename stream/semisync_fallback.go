package stream

import (
	"context"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
)

// fallbackRecorder records in the archive every range the primary did not
// wait for binarc (archive.Unprotected): it opens one when a poll finds
// the primary not waiting (rpl_semi_sync_master_enabled OFF, or
// Rpl_semi_sync_master_status OFF after rpl_semi_sync_master_timeout) and
// closes it when a poll finds it waiting again. Records the store cannot
// take now (an outage is the usual cause of a fallback) are kept, in
// order, and retried at each poll.
//
// The range is conservative: it starts at the last position binarc
// acknowledged (a commit after it may already have been let go when the
// primary's wait timed out) and ends at the newest position binarc had
// received when the primary was seen waiting again (at most a poll
// interval late). A primary that waits for another semi-sync replica is
// counted as waiting: its status cannot say which replica answered.
type fallbackRecorder struct {
	a       *Archiver
	open    *archive.Unprotected
	pending []*archive.Unprotected
	failing bool // the last store attempt failed (logged once)
}

// observe takes one poll's result at now. A failed poll changes nothing:
// a primary that cannot be asked is not committing through binarc either.
func (r *fallbackRecorder) observe(ctx context.Context, st replication.SemiSyncState, pollErr error, now time.Time) {
	if pollErr == nil {
		r.transition(st, now)
	}
	r.flush(ctx)
}

func (r *fallbackRecorder) transition(st replication.SemiSyncState, now time.Time) {
	a := r.a
	waiting := st.Enabled && st.Active
	switch {
	case !waiting && r.open == nil:
		d := a.Status().Durable
		from := a.semi.lastAcked()
		if from.File == "" {
			from = d.Position
		}
		if d.Timeline == "" || from.File == "" {
			return // no session yet: nothing archived to mark
		}
		reason := "the primary fell back to asynchronous (Rpl_semi_sync_master_status OFF: no acknowledgement within rpl_semi_sync_master_timeout, or binarc not connected)"
		if !st.Enabled {
			reason = "semi-sync is off on the primary (rpl_semi_sync_master_enabled=OFF)"
		}
		r.open = &archive.Unprotected{Timeline: d.Timeline, FromFile: from.File, FromOffset: from.Offset, FromTime: now.UTC(), Reason: reason}
		r.pending = append(r.pending, r.open)
		a.semi.unprotected.Store(true)
		a.semi.fallbacks.Add(1)
		a.log.Warn().Str("timeline", d.Timeline).Stringer("after", from).Str("reason", reason).Msg("semi-sync: commits from here on are not zero-loss protected; the range is recorded in the archive (binarc ls shows it)")
	case waiting && r.open != nil:
		closed := *r.open
		to := from(a.Status().Primary, replication.Position{File: closed.FromFile, Offset: closed.FromOffset})
		closed.ToFile, closed.ToOffset, closed.ToTime = to.File, to.Offset, now.UTC()
		r.pending = append(r.pending, &closed)
		r.open = nil
		a.semi.unprotected.Store(false)
		a.log.Info().Str("timeline", closed.Timeline).Stringer("from", to).Msg("semi-sync: the primary waits for binarc again; commits are zero-loss protected")
	}
}

// from is p, or def when p is unknown.
func from(p *replication.Position, def replication.Position) replication.Position {
	if p == nil || p.File == "" {
		return def
	}
	return *p
}

// flush stores the pending records in order, stopping at the first
// failure (retried at the next poll).
func (r *fallbackRecorder) flush(ctx context.Context) {
	for len(r.pending) > 0 {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := archive.PutUnprotected(sctx, r.a.store, r.a.layout, r.pending[0])
		cancel()
		if err != nil {
			if !r.failing && ctx.Err() == nil {
				r.a.log.Warn().Err(err).Msg("semi-sync: cannot record the unprotected range yet; retrying at each poll")
			}
			r.failing = true
			return
		}
		r.failing = false
		r.pending = r.pending[1:]
	}
}
