package stream

import (
	"context"
	"time"
)

// DefaultSemiSyncInflight is --semi-sync-inflight's default: commit
// groups sealed and uploading at once. A commit that arrives while every
// slot is taken waits for the next upload to land before its own PUT
// starts: with 4, a quarter of a PUT on average, which kept the
// AFTER_COMMIT p50 above one PUT + 1 ms at 10 and 50 ms of store
// latency; with 16 it was within it, for two to four times the PUTs at
// 64 writers (docs/BENCHMARKS.md, issue 22). The request bill has its
// own bound, --semi-sync-max-puts.
const DefaultSemiSyncInflight = 16

// sealPolicy decides when the sealer may cut the next commit group: while
// fewer than inflight of its groups are uploading (the acknowledgements
// still go out in binlog order, as each prefix becomes durable), and no
// sooner than minGap after the previous cut (--semi-sync-max-puts: a
// bound on the request bill; commits arriving meanwhile join the group).
//
// Why a commit used to wait about two PUTs although groups already
// pipelined: with rpl_semi_sync_master_wait_point=AFTER_SYNC, MariaDB's
// group commit leader waits for the acknowledgement holding
// LOCK_after_binlog_sync, and the next group's leader, once its binlog
// write is synced, waits for that lock still holding LOCK_log
// (MYSQL_BIN_LOG::trx_group_commit_leader, sql/log.cc, 10.11: "We cannot
// unlock LOCK_log until we have locked LOCK_after_binlog_sync"). So the
// primary hands binarc at most two groups at a time: a commit that
// arrives while a group waits is written only after that group's
// acknowledgement, and then waits for its own. No replica can pipeline
// past that; AFTER_COMMIT waits outside those locks.
type sealPolicy struct {
	inflight int           // groups sealed and not yet durable; 0: no bound (the spool's fsync is the wait)
	minGap   time.Duration // between two cuts; 0: none
	last     time.Time     // the previous cut
}

// newSealPolicy makes the policy of maxPuts cuts per second at most
// (0: unbounded) and inflight uploads.
func newSealPolicy(inflight int, maxPuts float64) *sealPolicy {
	p := &sealPolicy{inflight: inflight}
	if maxPuts > 0 {
		p.minGap = time.Duration(float64(time.Second) / maxPuts)
	}
	return p
}

// ready tells whether a group may be cut at now with pending uploads in
// flight; if not because of the rate bound, wait is how long until it may.
func (p *sealPolicy) ready(now time.Time, pending int) (ok bool, wait time.Duration) {
	if p.inflight > 0 && pending >= p.inflight {
		return false, 0 // a landing upload pokes the sealer
	}
	if p.minGap > 0 && !p.last.IsZero() {
		if next := p.last.Add(p.minGap); now.Before(next) {
			return false, next.Sub(now)
		}
	}
	return true, 0
}

// cut records a cut at now.
func (p *sealPolicy) cut(now time.Time) { p.last = now }

// sealer cuts commit groups under a sealPolicy. It runs in its own
// goroutine, not inline when the primary asks for an acknowledgement:
// cutting at the first request of a burst makes groups of one
// transaction (with the spool, one fsync each), measured far slower.
type sealer struct {
	t   *ackTracker
	seg *Segmenter
	up  *Uploader
	p   *sealPolicy
}

// try cuts a group if a transaction the primary waits on is not sealed
// and the policy lets it; wait is how long until the rate bound lets it.
func (z *sealer) try() (wait time.Duration, err error) {
	if !z.t.needSeal() {
		return 0, nil
	}
	now := time.Now()
	ok, wait := z.p.ready(now, z.up.Pending())
	if !ok {
		return wait, nil
	}
	if err := z.seg.Flush(); err != nil {
		return 0, err
	}
	z.p.cut(now)
	return 0, nil
}

// seal is group commit: a segment is sealed as soon as a transaction the
// primary waits on is in it and the policy lets it go (an upload slot is
// free, or, with the spool, at once: the fsync is the wait; and the rate
// bound is kept). What arrives meanwhile waits for the next segment, so
// requests follow the store's latency, not the commit rate. A landing
// upload (sealc) or the rate bound's timer wakes it; the tick is a
// safety net.
func (s *semiSync) seal(ctx context.Context, seg *Segmenter, up *Uploader) error {
	inflight := s.a.cfg.SemiSync.Inflight
	if s.spool != nil {
		inflight = 0
	}
	z := &sealer{t: s.t, seg: seg, up: up, p: newSealPolicy(inflight, s.a.cfg.SemiSync.MaxPuts)}
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var retryC <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.t.sealc:
		case <-tick.C:
		case <-retryC:
			retryC = nil
		}
		wait, err := z.try()
		if err != nil {
			return err
		}
		if wait > 0 && retryC == nil {
			retryC = time.After(wait)
		}
	}
}
