package chaos

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// FaultRecord is one executed step of the schedule, for the report.
type FaultRecord struct {
	Step
	Start  time.Time  `json:"start"`
	End    time.Time  `json:"end"`
	Detail string     `json:"detail,omitempty"`
	Error  string     `json:"error,omitempty"` // the fault could not be applied
	Logged []logEvent `json:"binarc_logged,omitempty"`
}

// apply runs one step and returns what it did.
func (cp *campaign) apply(ctx context.Context, s Step) (string, error) {
	c := cp.c
	switch s.Kind {
	case KillBinarc:
		cp.stream.kill()
		sleepFor(s.For / 2)
		return cp.restartStream()
	case KillMaster, StopMaster:
		return cp.restartMaster(ctx, s)
	case FlipClean, FlipHard, PromoteR:
		if lost := c.lost(); lost != nil {
			if cp.rebuildFailed {
				return "", errors.New("the pair has one side for good (its rebuild failed)")
			}
			how, err := c.rebuild(ctx, lost, &cp.w.pause)
			if err != nil {
				// Trying again at each flip would only stall the
				// schedule.
				cp.rebuildFailed = true
				return "", err
			}
			return "rebuilt " + lost.name + " (lost at a hard flip) instead, from " + how, nil
		}
		var d string
		var err error
		w := c.Writable()
		switch s.Kind {
		case FlipClean:
			return c.flipClean(ctx)
		case FlipHard:
			d, err = c.flipHard(ctx, s.For/4, &cp.w.pause)
		default:
			d, err = c.promoteReplica(ctx, s.For/4, &cp.w.pause)
		}
		if err == nil {
			// When it killed the master, not when the step ended (a
			// replica that cannot follow, a rebuild, take their time).
			cp.hardFlips = append(cp.hardFlips, w.killedAt)
		}
		return d, err
	case StoreDown:
		c.store.SetDown(true)
		sleepFor(s.For)
		c.store.SetDown(false)
		return "store unreachable", nil
	case StoreSlow:
		return cp.slowStore(s.For, func() {}), nil
	case LinkCut:
		w := c.Writable()
		w.proxy.Cut()
		return "cut binarc ↔ " + w.name, nil
	case LinkFreeze:
		w := c.Writable()
		w.proxy.Freeze()
		sleepFor(s.For)
		return "froze binarc ↔ " + w.name, nil
	case Purge:
		return cp.purge(ctx)
	case SnapshotFault:
		var d string
		var err error
		cp.slowStore(s.For, func() { d, err = cp.snapshot(ctx) })
		return "store slow; " + d, err
	case Snapshot:
		return cp.snapshot(ctx)
	case Pause:
		return cp.checkpoint(ctx)
	}
	return "", fmt.Errorf("unknown step %q", s.Kind)
}

// slowStore adds latency and drops to the store's proxy while during runs
// and for at least d.
func (cp *campaign) slowStore(d time.Duration, during func()) string {
	cp.c.store.SetLatency(300*time.Millisecond, 500*time.Millisecond)
	cp.c.store.SetDropRate(0.3)
	start := time.Now()
	during()
	sleepFor(d - time.Since(start))
	cp.c.store.SetLatency(0, 0)
	cp.c.store.SetDropRate(0)
	return "store slow (300–800 ms, 30% of connections dropped)"
}

func (cp *campaign) restartStream() (string, error) {
	run, err := cp.r.startStream()
	if err != nil {
		return "", err
	}
	cp.runs = append(cp.runs, run)
	cp.stream = run
	return fmt.Sprintf("binarc restarted (run %d)", run.n), nil
}

// restartMaster kills or stops the writable master and starts it again.
func (cp *campaign) restartMaster(ctx context.Context, s Step) (string, error) {
	w := cp.c.Writable()
	var err error
	if s.Kind == KillMaster {
		err = w.db.Kill()
	} else {
		err = w.db.Stop()
	}
	if err != nil {
		return "", err
	}
	w.up = false
	sleepFor(s.For)
	if err := cp.c.restart(ctx, w); err != nil {
		return "", fmt.Errorf("restart %s: %w", w.name, err)
	}
	return string(s.Kind) + " " + w.name + " and restart", nil
}

// purge runs PURGE BINARY LOGS on the writable master up to the newest
// file that is both complete in the archive (its index stored) and read by
// every replica of it: it exercises binarc beside a purge without purging
// what nobody has yet (that would be an operator's loss, not binarc's).
func (cp *campaign) purge(ctx context.Context) (string, error) {
	w := cp.c.Writable()
	tls, err := cp.timelineDirs()
	if err != nil || len(tls) == 0 {
		return "", fmt.Errorf("no timeline to purge against: %v", err)
	}
	newest := filepath.Join(cp.archiveDir(), tls[len(tls)-1])
	m, err := cp.readTimelineMeta(tls[len(tls)-1])
	if err != nil {
		return "", err
	}
	if m.ServerID != w.db.ServerID {
		return "", errors.New("the newest timeline is not the writable master's yet")
	}
	complete, _ := filepath.Glob(filepath.Join(newest, "*.index.json"))
	if len(complete) == 0 {
		return "", errors.New("no complete file archived yet")
	}
	sort.Strings(complete)
	upTo := nextBinlog(strings.TrimSuffix(filepath.Base(complete[len(complete)-1]), ".index.json"))
	for _, n := range []*node{cp.c.a, cp.c.b, cp.c.r} {
		if n.from != w || !n.up {
			continue
		}
		st, err := n.db.SlaveStatus(ctx)
		if err != nil {
			return "", err
		}
		if f := st["Master_Log_File"]; f != "" && f < upTo {
			upTo = f
		}
	}
	if err := w.db.Exec(ctx, "PURGE BINARY LOGS TO '"+upTo+"'"); err != nil {
		return "", err
	}
	w.partial = true
	return "purged " + w.name + "'s binlogs before " + upTo, nil
}

// nextBinlog is the file after name (mysql-bin.000007 → mysql-bin.000008).
func nextBinlog(name string) string {
	dot := strings.LastIndexByte(name, '.')
	var n int
	fmt.Sscanf(name[dot+1:], "%d", &n)
	return fmt.Sprintf("%s.%0*d", name[:dot], len(name)-dot-1, n+1)
}

// snapshot takes one binarc snapshot --keep of the passive master (or of R
// once the pair has lost a side), through the store's proxy.
func (cp *campaign) snapshot(ctx context.Context) (string, error) {
	src := cp.c.passive()
	if src == nil || !src.up {
		src = cp.c.r
	}
	out, err := cp.r.run(ctx, 3*time.Minute, true, "snapshot", "--source", "mysql://"+snapUser+"@"+src.db.Addr(),
		"--source-tls", "disable", "--store", cp.r.store, "--cluster", clusterName, "--keep", "2h")
	if err != nil {
		return "snapshot of " + src.name + " failed", fmt.Errorf("%w: %s", err, lastLines(out, 3))
	}
	cp.snapshots++
	return "snapshot of " + src.name, nil
}

// Checkpoint is a restore point: the writers paused across a second
// boundary (Time), the writable server's GTID and position there.
type Checkpoint struct {
	Time   time.Time `json:"time"`
	GTID   string    `json:"gtid"`
	File   string    `json:"file"`
	Pos    string    `json:"pos"`
	Server string    `json:"server"`
	ID     uint32    `json:"server_id"`
	// Acked is how many records the writers had then.
	Records int `json:"records"`
	// Rows are the row ids the server had then (nil: not read).
	Rows idRanges `json:"-"`
}

// idRanges is a set of row ids as sorted, disjoint [lo, hi] ranges: a
// writer's ids are consecutive, so a server's rows are a few ranges.
type idRanges [][2]int64

// idRangesOf reads the ids of a "SELECT id ... ORDER BY id".
func idRangesOf(rows [][]string) idRanges {
	r := idRanges{}
	for _, row := range rows {
		id, err := strconv.ParseInt(row[0], 10, 64)
		if err != nil {
			continue
		}
		if n := len(r); n > 0 && r[n-1][1]+1 == id {
			r[n-1][1] = id
			continue
		}
		r = append(r, [2]int64{id, id})
	}
	return r
}

// Has tells whether id is in the set.
func (r idRanges) Has(id int64) bool {
	i := sort.Search(len(r), func(i int) bool { return r[i][1] >= id })
	return i < len(r) && r[i][0] <= id
}

func (cp *campaign) checkpoint(ctx context.Context) (string, error) {
	w := cp.c.Writable()
	cp.w.pause.Lock()
	defer cp.w.pause.Unlock()
	g, err := w.db.Query(ctx, "SELECT @@GLOBAL.gtid_binlog_pos")
	if err != nil {
		return "", err
	}
	st, err := w.db.Query(ctx, "SHOW MASTER STATUS")
	if err != nil || len(st) == 0 {
		return "", fmt.Errorf("show master status: %v", err)
	}
	// The rows the server has, with the writers paused: what a restore
	// to this point must have (the final master is no model of it when
	// the cluster later goes on from an older branch).
	ids, err := w.db.Query(ctx, "SELECT id FROM app.rows ORDER BY id")
	if err != nil {
		return "", fmt.Errorf("read the rows at the checkpoint: %v", err)
	}
	now := time.Now()
	k := Checkpoint{GTID: g[0][0], File: st[0][0], Pos: st[0][1], Server: w.name, ID: w.db.ServerID,
		Time: now.Truncate(time.Second).Add(time.Second), Records: len(cp.w.records()), Rows: idRangesOf(ids)}
	time.Sleep(time.Until(k.Time) + 50*time.Millisecond)
	cp.checkpoints = append(cp.checkpoints, k)
	return "checkpoint at " + k.GTID, nil
}

func sleepFor(d time.Duration) {
	if d > 0 {
		time.Sleep(d)
	}
}

// errorLines is the lines of s that report an error (binarc's
// "binarc: error:" and the log's ERR lines, the first three) followed by
// its last n lines, each line once.
func errorLines(s string, n int) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if len(out) < 3 && (strings.Contains(l, "binarc: error:") || strings.Contains(l, " ERR ") || strings.Contains(l, `"level":"error"`)) {
			out = append(out, l)
		}
	}
	for _, l := range strings.Split(lastLines(s, n), "\n") {
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
