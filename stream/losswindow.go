package stream

import (
	"time"

	"github.com/binarc/binarc/replication"
)

// LossWindow is what a hard crash of the primary would lose now: the age
// of the oldest byte received from the primary that is not yet durable in
// the store, measured from when it arrived. It is 0 when everything the
// primary reported (its last event, or a heartbeat when idle) is durable,
// so an idle primary reads 0 and a primary that writes faster than the
// store takes reads a window that grows. Bytes the primary wrote that
// binarc has not received yet (a catch-up, or reading paused while the
// store is down) are not dated here: time() minus the durable event time
// shows how far behind the archive is.
func (a *Archiver) LossWindow(now time.Time) time.Duration {
	a.mu.Lock()
	up, seg := a.up, a.seg
	a.mu.Unlock()
	if up == nil {
		return 0
	}
	// The segmenter first: a segment it is handing on is counted by
	// OldestUnsent until the uploader holds it, so reading the uploader
	// second cannot miss it.
	oldest, pending := seg.OldestUnsent()
	if t, ok := up.OldestUnstored(); ok {
		oldest, pending = t, true
	}
	return lossWindow(now, a.primary.Load(), up.Durable(), oldest, pending)
}

// lossWindow is LossWindow's rule. primary is the newest position the
// primary reported (nil: none yet this process); oldest is when the oldest
// byte not yet durable arrived, if pending.
func lossWindow(now time.Time, primary *replication.Position, durable Durable, oldest time.Time, pending bool) time.Duration {
	if primary != nil && !positionAfter(*primary, durable.Position) {
		return 0
	}
	if !pending {
		return 0
	}
	return max(now.Sub(oldest), 0)
}

// positionAfter tells whether p is past q in the binlog.
func positionAfter(p, q replication.Position) bool {
	if p.File == q.File {
		return p.Offset > q.Offset
	}
	return replication.CompareBinlogNames(p.File, q.File) > 0
}
