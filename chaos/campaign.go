package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// clusterName is the archive's cluster in the campaign's bucket.
const clusterName = "main"

// Config is one campaign.
type Config struct {
	Seed     uint64
	Duration time.Duration
	// Dir holds the servers, the logs and the report; it must exist.
	Dir string
	// Binarc is the binarc binary to test.
	Binarc string
	// Restores is how many restore points the checker restores (K).
	Restores int
	// Writers is the number of concurrent writers (default 3).
	Writers int
	// SemiSync runs binarc stream --semi-sync with the writable master a
	// semi-synchronous primary that waits for binarc: then no
	// acknowledged transaction may be missing from the archive, not even
	// one a hard failover lost from the winning history, unless the
	// primary had fallen back to asynchronous when it acknowledged it
	// (sampled from the server: Report.SemiSyncFallbacks).
	SemiSync bool
	// BinlogFormat is the servers' binlog_format: "" for ROW, or MIXED
	// (MariaDB's default: the workload's statements are then logged as
	// statements, which MariaDB writes without a BEGIN after the GTID)
	// or STATEMENT.
	BinlogFormat string
	// Schedule, when set, is run instead of the seed's: a scripted
	// sequence of faults a test needs in that order.
	Schedule []Step
	Log      zerolog.Logger
	// afterCheck, set by tests, runs once the checks have run, with the
	// servers and the store still up and binarc stopped: the checker's
	// self-test forges the archive there and checks again.
	afterCheck func(ctx context.Context, cp *campaign)
}

// campaign is one run's state.
type campaign struct {
	cfg         Config
	c           *cluster
	r           *runner
	w           *workload
	stream      *binarcRun
	runs        []*binarcRun
	faults      []FaultRecord
	checkpoints []Checkpoint
	snapshots   int
	hardFlips   []time.Time // when each hard failover (hard flip, R promoted) killed the writable master
	// rebuildFailed: the lost side could not be rebuilt; it stays lost.
	rebuildFailed bool
	start         time.Time
	// tls is the archive as check read it.
	tls []Timeline
	// fallbacks samples the writable master's semi-sync status (SemiSync).
	fallbacks *fallbackSampler
	// selfExits are binarc stream runs that ended without being stopped.
	selfExits []string
}

// Run runs the campaign and its checks and returns the report. An error
// means the campaign could not run (a server would not start); a campaign
// that ran returns its report, whose Failures say whether it passed.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Restores == 0 {
		cfg.Restores = 3
	}
	if cfg.Writers == 0 {
		cfg.Writers = 3
	}
	c, err := startCluster(ctx, cfg.Dir, cfg.Seed, cfg.SemiSync, cfg.BinlogFormat)
	if c != nil {
		defer c.close()
	}
	if err != nil {
		return nil, fmt.Errorf("start the topology: %w", err)
	}
	cp := &campaign{cfg: cfg, c: c, w: &workload{c: c},
		r: &runner{binarc: cfg.Binarc, dir: cfg.Dir, c: c, store: c.s3.StoreURL("archive")}}
	c.restoreLatest = func(ctx context.Context, datadir string) error {
		// The archive's latest must be the writable master's history:
		// right after a hard flip binarc may still be on the dead
		// master's timeline, whose last transactions the writable one
		// never had.
		if err := cp.waitArchiving(ctx, time.Minute); err != nil {
			return err
		}
		out, err := cp.r.run(ctx, 5*time.Minute, false, "restore", "--store", cp.r.store, "--cluster", clusterName, "--to", "latest", "--datadir", datadir)
		if err != nil {
			return fmt.Errorf("binarc restore --to latest: %w: %s", err, lastLines(out, 4))
		}
		return nil
	}
	if _, err := cp.restartStream(); err != nil {
		return nil, err
	}
	if cfg.SemiSync {
		cp.fallbacks = startFallbackSampler(c, 100*time.Millisecond)
	}
	cp.w.start(cfg.Seed, cfg.Writers)
	cp.start = time.Now()
	steps := cfg.Schedule
	if steps == nil {
		steps = NewSchedule(cfg.Seed, cfg.Duration)
	}
	if hung := cp.runSchedule(ctx, steps); hung != "" {
		return cp.abandon(ctx, hung), nil
	}
	rep := cp.finish(ctx)
	return rep, nil
}

// stepTimeout bounds one step of the schedule (check 6: nothing hangs).
// It is above every bound a step sets itself: a snapshot gets 3 minutes
// (under a slow store it grows with the data: 35 s at 2 minutes of the
// 60-minute run, 175 s at 40, over 3 minutes at 51, where the old 3-minute
// watchdog fired first and abandoned the run unchecked); a rebuild from
// the archive up to a minute's wait, 5 minutes of restore and two
// catch-ups of 90 s.
const stepTimeout = 10 * time.Minute

// runSchedule applies each step at its time. It returns, instead of
// waiting for ever, a description of a step that did not finish within
// stepTimeout.
func (cp *campaign) runSchedule(ctx context.Context, steps []Step) (hung string) {
	for _, s := range steps {
		if ctx.Err() != nil {
			return ""
		}
		sleepFor(time.Until(cp.start.Add(s.At)))
		cp.checkStreamRuns()
		rec := FaultRecord{Step: s, Start: time.Now()}
		var d string
		var err error
		done := make(chan struct{})
		go func() {
			defer close(done)
			d, err = cp.apply(ctx, s)
		}()
		select {
		case <-done:
		case <-time.After(stepTimeout):
			rec.End, rec.Error = time.Now(), "did not finish"
			cp.faults = append(cp.faults, rec)
			return fmt.Sprintf("step %s did not finish within %s", s, stepTimeout)
		}
		rec.End, rec.Detail = time.Now(), d
		if err != nil {
			rec.Error = err.Error()
		}
		cp.cfg.Log.Info().Str("step", s.String()).Str("detail", d).AnErr("err", err).Msg("chaos step")
		cp.faults = append(cp.faults, rec)
	}
	return ""
}

// checkStreamRuns records a binarc stream that exited by itself (check 6)
// and starts it again, so the rest of the schedule still tests binarc.
func (cp *campaign) checkStreamRuns() {
	if d := cp.stream.exitedByItself(); d != "" {
		cp.selfExits = append(cp.selfExits, d)
		cp.cfg.Log.Error().Str("run", d).Msg("binarc stream exited by itself; starting it again")
		if _, err := cp.restartStream(); err != nil {
			cp.selfExits = append(cp.selfExits, "restarting it: "+err.Error())
		}
	}
}

// newReport is the report's header: what ran.
func (cp *campaign) newReport() *Report {
	return &Report{Seed: cp.cfg.Seed, Duration: cp.cfg.Duration.String(), Dir: cp.cfg.Dir, SemiSync: cp.cfg.SemiSync, BinlogFormat: cp.cfg.BinlogFormat}
}

// abandon ends a campaign whose step hung: the report says which, with
// what the writable master was doing (its processlist), and the checks
// are not run (they would wait on the same thing). Run's caller kills
// the servers, which ends the hung step.
func (cp *campaign) abandon(ctx context.Context, hung string) *Report {
	rep := cp.newReport()
	rep.Faults = cp.faults
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	w := cp.c.Writable()
	rows, err := w.db.Query(qctx, "SELECT id, user, command, time, state, LEFT(info, 120) FROM information_schema.processlist WHERE command <> 'Sleep' ORDER BY id")
	var pl strings.Builder
	for _, r := range rows {
		pl.WriteString("\n    " + strings.Join(r, " | "))
	}
	if err != nil {
		pl.WriteString("\n    (processlist unreadable: " + err.Error() + ")")
	}
	rep.fail("check 6 (nothing hangs): %s; the writable master %s's processlist:%s", hung, w.name, pl.String())
	cp.stream.kill()
	close(cp.w.stop) // the writers stop; one may wait on the hung step, so not for them
	if cp.fallbacks != nil {
		rep.SemiSyncFallbacks = cp.fallbacks.finish()
	}
	return rep
}

// finish ends the faults, lets binarc catch up, stops everything and runs
// the checker.
func (cp *campaign) finish(ctx context.Context) *Report {
	c := cp.c
	c.store.SetDown(false)
	c.store.SetLatency(0, 0)
	c.store.SetDropRate(0)
	rep := cp.newReport()
	// A last checkpoint and a few rows after it, so the newest timeline
	// has transactions of its own past every join (joins are then final).
	if _, err := cp.checkpoint(ctx); err != nil {
		rep.fail("final checkpoint: %v", err)
	}
	time.Sleep(2 * time.Second)
	cp.w.halt()
	if cp.fallbacks != nil {
		rep.SemiSyncFallbacks = cp.fallbacks.finish()
	}
	if err := c.Writable().db.Exec(ctx, "FLUSH BINARY LOGS"); err != nil {
		rep.fail("flush binary logs on the writable master: %v", err)
	}
	if err := cp.waitArchived(ctx, 2*time.Minute); err != nil {
		rep.fail("binarc did not catch up with the writable master: %v", err)
	}
	// binarc records a join once it can no longer change, which may be
	// after the bytes are in: stopping it sooner would leave the join to
	// the next binarc (readers work it out meanwhile), and check 2 reads
	// the recorded joins.
	cp.waitJoins(ctx, time.Minute)
	cp.checkStreamRuns()
	for _, d := range cp.selfExits {
		rep.fail("check 6 (binarc stream runs until stopped): %s", d)
	}
	took, err := cp.stream.terminate()
	if err != nil {
		rep.fail("check 6 (exits within its stop timeout): %v", err)
	}
	rep.LastStop = took.String()
	for i := range cp.faults {
		f := &cp.faults[i]
		for _, run := range cp.runs {
			f.Logged = append(f.Logged, notableLines(run.logPath, run.n, f.Start, f.End.Add(5*time.Second))...)
		}
	}
	rep.Faults, rep.Checkpoints, rep.Snapshots = cp.faults, cp.checkpoints, cp.snapshots
	for _, run := range cp.runs {
		rep.PeakRSSKiB = max(rep.PeakRSSKiB, run.peakKB)
	}
	if rep.PeakRSSKiB >= 100<<10 {
		rep.fail("check 5 (peak RSS < 100 MiB): binarc stream reached %d KiB", rep.PeakRSSKiB)
	}
	cp.check(ctx, rep)
	if cp.cfg.afterCheck != nil {
		cp.cfg.afterCheck(ctx, cp)
	}
	return rep
}

// waitArchived waits until binarc ls says the newest timeline is level
// with the writable master.
func (cp *campaign) waitArchived(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	src := "mysql://" + binarcUser + "@" + cp.c.Writable().db.Addr()
	var last string
	for time.Now().Before(deadline) && ctx.Err() == nil {
		out, err := cp.r.run(ctx, time.Minute, false, "ls", "--store", cp.r.store, "--cluster", clusterName, "--source", src, "--json")
		if err == nil {
			behind, summary := lagOf(out)
			if behind == 0 && summary != "" && !containsAny(summary, "cannot tell") {
				return nil
			}
			last = summary
		} else {
			last = err.Error() + ": " + lastLines(out, 3)
		}
		cp.cfg.Log.Debug().Str("lag", last).Msg("waiting for binarc to catch up")
		time.Sleep(time.Second)
	}
	return fmt.Errorf("binarc ls: %s", last)
}

// waitArchiving waits until the archive's newest timeline is the writable
// master's.
func (cp *campaign) waitArchiving(ctx context.Context, timeout time.Duration) error {
	w := cp.c.Writable()
	for deadline := time.Now().Add(timeout); ; time.Sleep(200 * time.Millisecond) {
		if tls, err := cp.timelineDirs(); err == nil && len(tls) > 0 {
			if m, err := cp.readTimelineMeta(tls[len(tls)-1]); err == nil && m.ServerID == w.db.ServerID {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("binarc is not archiving %s after %s", w.name, timeout)
		}
	}
}

// archiveDir is where versitygw keeps the cluster's timelines on disk.
func (cp *campaign) archiveDir() string {
	return filepath.Join(cp.c.s3.DataDir(), cp.c.s3.Bucket, "archive", clusterName, "binlog")
}

// waitJoins waits until every timeline after the first has its join.json.
func (cp *campaign) waitJoins(ctx context.Context, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		names, err := cp.timelineDirs()
		missing := err != nil
		for i, name := range names {
			if i == 0 {
				continue
			}
			if _, err := os.Stat(filepath.Join(cp.archiveDir(), name, "join.json")); err != nil {
				missing = true
			}
		}
		if !missing {
			return
		}
		time.Sleep(time.Second)
	}
}
