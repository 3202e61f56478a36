package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/lease"
	"github.com/binarc/binarc/replication"
	"golang.org/x/sync/errgroup"
)

// resume finds where to continue: the newest timeline's durable position,
// or a new timeline when there is none or the primary is another server.
func (a *Archiver) resume(ctx context.Context, info replication.ServerInfo) (*ResumePoint, error) {
	tls, err := a.cat.Timelines(ctx)
	if err != nil {
		return nil, err
	}
	if len(tls) == 0 {
		return a.startTimeline(ctx, info, "new archive", nil)
	}
	if a.cfg.StartAt != "oldest" {
		a.log.Warn().Str("start_at", a.cfg.StartAt).Msg("--start-at only applies to a new archive; resuming from the durable position")
	}
	tl := tls[len(tls)-1]
	rp, err := findResume(ctx, a.cat, tl, a.log)
	if err != nil {
		return nil, err
	}
	if ok, err := archive.CheckTimelineEncryption(rp.Info, a.cfg.Encrypt); err != nil {
		return nil, err
	} else if !ok {
		reason := archive.EncryptionChange(rp.Info.Encryption, a.cfg.Encrypt)
		a.log.Warn().Str("timeline", tl).Msg(reason + ": starting a new timeline, joined where this one ends")
		end := archive.TimelineEnd{Timeline: tl, File: rp.Durable.Position.File, Offset: rp.Durable.Position.Offset}
		return a.startTimelineFrom(ctx, info, reason, &end, end.File)
	}
	if rp.Info.SourceServerID != info.ServerID {
		reason := fmt.Sprintf("the primary is another server (server_id %d, was %d): a failover or a new primary", info.ServerID, rp.Info.SourceServerID)
		a.log.Error().Str("timeline", tl).Msg("ARCHIVE BREAK: " + reason + "; starting a new timeline")
		return a.startTimeline(ctx, info, reason, &archive.TimelineEnd{Timeline: tl, File: rp.Durable.Position.File, Offset: rp.Durable.Position.Offset})
	}
	a.log.Info().Str("timeline", tl).Stringer("resume_at", rp.Position).Msg("resuming the archive from its durable position")
	return rp, nil
}

// slowBinlogList is how long SHOW BINARY LOGS may take at the start of a
// timeline before binarc says why it may be waiting.
const slowBinlogList = 3 * time.Second

// startTimeline writes the manifest of a new timeline and returns where it
// starts. A new archive starts where --start-at says; a timeline after
// another starts where the archived GTID state says (startByGTID).
func (a *Archiver) startTimeline(ctx context.Context, info replication.ServerInfo, reason string, prev *archive.TimelineEnd) (*ResumePoint, error) {
	return a.startTimelineFrom(ctx, info, reason, prev, "")
}

// startTimelineFrom is startTimeline starting at binlog file from when the
// primary still has it: the file the previous timeline ended in, when the
// same server continues under new encryption keys.
func (a *Archiver) startTimelineFrom(ctx context.Context, info replication.ServerInfo, reason string, prev *archive.TimelineEnd, from string) (*ResumePoint, error) {
	if prev != nil && from == "" && info.Flavor == replication.FlavorMariaDB {
		if start, state, ok := a.startByDump(ctx, prev); ok {
			return a.writeTimeline(ctx, info, reason, prev, start, state)
		}
	}
	slow := time.AfterFunc(slowBinlogList, func() {
		a.log.Warn().Str("source", a.src.String()).Dur("waited", slowBinlogList).
			Msg("SHOW BINARY LOGS has not answered yet: if this server has semi-sync on, MariaDB holds it while a commit waits for an acknowledgement, which binarc can give only once it knows where this server's binlog starts; those commits then wait out rpl_semi_sync_master_timeout and are acknowledged without binarc (recorded as an unprotected range)")
	})
	logs, err := a.src.BinaryLogs(ctx)
	slow.Stop()
	if err != nil {
		return nil, err
	}
	if len(logs) == 0 {
		return nil, &replication.ConfigError{Problem: "the primary lists no binary logs", Hint: "check log_bin on the primary"}
	}
	start := logs[0].Name
	if prev != nil {
		start = a.startByGTID(ctx, prev, logs)
	}
	if prev == nil {
		switch a.cfg.StartAt {
		case "oldest":
		case "current":
			start = logs[len(logs)-1].Name
		default:
			found := false
			for _, l := range logs {
				found = found || l.Name == a.cfg.StartAt
			}
			if !found {
				return nil, &replication.ConfigError{
					Problem: fmt.Sprintf("--start-at %s: the primary has no such binlog file (it has %s … %s)", a.cfg.StartAt, logs[0].Name, logs[len(logs)-1].Name),
					Hint:    "use oldest, current, or a file name from SHOW BINARY LOGS",
				}
			}
			start = a.cfg.StartAt
		}
	}
	for _, l := range logs {
		if from != "" && l.Name == from {
			start = from
		}
	}
	return a.writeTimeline(ctx, info, reason, prev, start, a.fileStartState(ctx, start))
}

// writeTimeline writes the manifest of a new timeline starting at binlog
// file start (whose starting GTID state is startState, nil if unknown).
func (a *Archiver) writeTimeline(ctx context.Context, info replication.ServerInfo, reason string, prev *archive.TimelineEnd, start string, startState *string) (*ResumePoint, error) {
	seq := 1
	tls, err := a.cat.Timelines(ctx)
	if err != nil {
		return nil, err
	}
	if len(tls) > 0 {
		last, _, _ := archive.ParseTimeline(tls[len(tls)-1])
		seq = last + 1
	}
	tl := archive.FormatTimeline(seq, time.Now())
	version := archive.LayoutVersionPlain
	if a.cfg.Encrypt != nil {
		version = archive.LayoutVersionEncrypted
	}
	ti := &archive.TimelineInfo{
		Version: version, Timeline: tl, Created: time.Now().UTC(), Reason: reason, StartFile: start,
		SourceAddr: a.src.Addr(), SourceServerID: info.ServerID, SourceServerUUID: info.ServerUUID, SourceVersion: info.Version, SourceFlavor: string(info.Flavor),
		Previous: prev, StartGTIDState: startState, Encryption: archive.EncryptionOf(a.cfg.Encrypt),
	}
	if err := a.lease.Ensure(ctx); err != nil {
		return nil, err
	}
	if err := a.cat.PutOnce(ctx, a.layout.TimelineKey(tl), archive.MarshalJSON(ti)); err != nil {
		return nil, fmt.Errorf("create timeline %s: %w", tl, err)
	}
	a.log.Info().Str("timeline", tl).Str("start_file", start).Str("reason", reason).Msg("started timeline")
	return &ResumePoint{Timeline: tl, Info: ti, Position: replication.Position{File: start}}, nil
}

// session streams one timeline from rp until ctx ends, the stream breaks,
// or something fails. On return, everything received has been flushed and
// stored, unless the store kept failing for ShutdownTimeout.
func (a *Archiver) session(ctx context.Context, info replication.ServerInfo, held *lease.Lease, rp *ResumePoint) error {
	durable := rp.Durable
	if durable.Timeline == "" {
		durable = Durable{Timeline: rp.Timeline, Position: rp.Position}
	}
	compactQ := make(chan archive.FileRef, 4096)
	upCfg := a.cfg.Uploader
	if a.cfg.Compact {
		upCfg.FileIndexed = func(tl, file string) {
			select {
			case compactQ <- archive.FileRef{Name: file}:
			default: // compacted at the next start
			}
		}
		for _, f := range rp.Uncompacted {
			select {
			case compactQ <- archive.FileRef{Name: f}:
			default: // the rest at a later start
			}
		}
	}
	upCfg.BeforeWrite = held.Ensure
	semi, err := a.newSemiSync(durable) // nil without --semi-sync
	if err != nil {
		return err
	}
	upCfg.Sealer = a.cfg.Encrypt
	upCfg.Signer = a.cfg.Sign
	if semi != nil && upCfg.Concurrency < a.cfg.SemiSync.Inflight {
		// Each group in flight is one upload: they must run at once.
		upCfg.Concurrency = a.cfg.SemiSync.Inflight
	}
	up, err := NewUploader(upCfg, a.store, a.layout, durable, a.log, semi.observer(a.cfg.Observer))
	if err != nil {
		return err
	}
	seg := NewSegmenter(a.cfg.Segmenter, rp.Timeline, rp.Position, semi.sink(up))
	a.mu.Lock()
	a.up, a.seg = up, seg
	a.mu.Unlock()

	// The session's goroutines run in one errgroup: the first error ends
	// them all (it cancels gctx) and is the session's result.
	g, gctx := errgroup.WithContext(ctx)
	streamDone := make(chan struct{})
	g.Go(func() error {
		defer close(streamDone)
		s := &replication.Streamer{Config: a.src, Flavor: info.Flavor, Log: a.log, MaxBackoff: a.cfg.MaxBackoff, OnConnect: a.setConnected, ExpectServerID: info.ServerID, SemiSync: semi.replica(),
			OnDump: a.noteDump(held, a.src.Addr())}
		return s.Stream(gctx, rp.Position, rp.ExpectFDE, (*handler)(a))
	})
	g.Go(func() error { return tickSegments(gctx, seg, a.cfg.Segmenter.FlushInterval) })
	semi.start(gctx, g, seg, up)
	if a.cfg.Compact {
		g.Go(func() error {
			a.compactor(gctx, rp.Timeline, compactQ, held)
			return nil
		})
	}
	if len(a.cfg.Sources) > 1 {
		g.Go(func() error { return a.watchPrimary(gctx) })
	}
	g.Go(func() error {
		select {
		case <-up.Done():
			return up.stoppedErr()
		case <-gctx.Done():
			return nil
		}
	})

	<-gctx.Done()
	// The first goroutine's error, unless the caller stopped the
	// session first (then it ends cleanly).
	var result error
	if cause := context.Cause(gctx); ctx.Err() == nil || cause != context.Cause(ctx) {
		result = cause
	}

	a.flushSession(up, seg, streamDone, result)
	_ = g.Wait() // the errors after the first are the shutdown's
	if err := up.Close(); err != nil && result == nil && ctx.Err() == nil {
		result = err
	}
	d := up.Durable()
	a.log.Info().Str("timeline", d.Timeline).Stringer("durable", d.Position).Msg("archive session ended")
	return result
}

// flushSession stores what a session received once its stream stopped
// (streamDone): it is contiguous and checked. If the store stays down past
// ShutdownTimeout, it stops anyway; the next start resumes from the
// durable position. Nothing is flushed after the uploader failed or the
// lease was lost (result).
func (a *Archiver) flushSession(up *Uploader, seg *Segmenter, streamDone <-chan struct{}, result error) {
	sdctx, sdcancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer sdcancel()
	go func() {
		select {
		case <-sdctx.Done():
			up.Close() // unblocks a stream stuck on a full buffer
		case <-streamDone:
		}
	}()
	<-streamDone
	a.connected.Store(false)
	if up.Err() == nil && !errors.Is(result, lease.ErrLost) {
		if err := seg.Flush(); err == nil {
			if err := up.Drain(sdctx); err != nil {
				a.log.Error().Err(err).Msg("stopping with segments not yet stored; they will be archived again on the next start")
			}
		}
	}
}

// tickSegments lets the segmenter cut a segment on time (a tenth of the
// flush interval apart) until ctx ends or a cut fails.
func tickSegments(ctx context.Context, seg *Segmenter, flushInterval time.Duration) error {
	return onTicks(ctx, max(flushInterval/10, time.Millisecond), seg.Tick)
}

// onTicks calls f every d (the first call after d) until ctx ends, when it
// returns nil, or f returns an error, which it returns.
func onTicks(ctx context.Context, d time.Duration, f func() error) error {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := f(); err != nil {
				return err
			}
		}
	}
}

// setConnected is the Streamer's OnConnect: false once per outage.
func (a *Archiver) setConnected(connected bool) {
	a.connected.Store(connected)
	if !connected {
		a.disconnects.Add(1)
	}
}

// handler adapts the Archiver to replication.Handler.
type handler Archiver

func (h *handler) Event(ev replication.Event) error {
	a := (*Archiver)(h)
	a.received.Add(uint64(len(ev.Raw)))
	a.events.Add(1)
	a.lastEvt.Store(int64(ev.Timestamp))
	p := replication.Position{File: ev.File, Offset: ev.End}
	if cur := a.primary.Load(); cur == nil || replication.CompareBinlogNames(cur.File, p.File) < 0 || (cur.File == p.File && cur.Offset < p.Offset) {
		a.primary.Store(&p)
	}
	return a.seg.Add(ev)
}

func (h *handler) FileDone(file, next string) error {
	return (*Archiver)(h).seg.FileDone(file, next)
}

func (h *handler) Heartbeat(pos replication.Position) {
	(*Archiver)(h).primary.Store(&pos)
}

// compactor compacts complete files of timeline tl one at a time, and only
// while the archive is caught up with the primary, so that a catch-up runs
// at full speed and within its memory bound. A failure is logged and left
// for the next start: the segments stay readable.
func (a *Archiver) compactor(ctx context.Context, tl string, q <-chan archive.FileRef, held *lease.Lease) {
	for {
		var f archive.FileRef
		select {
		case <-ctx.Done():
			return
		case f = <-q:
		}
		for !a.caughtUp() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
		if err := held.Ensure(ctx); err != nil {
			a.log.Warn().Err(err).Str("binlog", f.Name).Msg("compaction skipped: the lease could not be renewed")
			continue
		}
		res, err := a.cat.Compact(ctx, tl, f.Name)
		if errors.Is(err, archive.ErrNotCompactable) {
			a.log.Debug().Err(err).Str("binlog", f.Name).Msg("not compacted")
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				a.log.Warn().Err(err).Str("binlog", f.Name).Msg("compaction failed; the segments stay as they are and it is tried again at the next start")
			}
			continue
		}
		a.log.Info().Str("binlog", f.Name).Str("key", res.Key).Int64("bytes", res.Bytes).Int("segments_deleted", res.SegmentsDeleted).Msg("compacted")
	}
}

// caughtUp tells whether everything the primary reported is durable.
func (a *Archiver) caughtUp() bool {
	st := a.Status()
	p := st.Primary
	if p == nil {
		return false
	}
	d := st.Durable.Position
	return d.File == p.File && d.Offset >= p.Offset || replication.CompareBinlogNames(d.File, p.File) > 0
}
