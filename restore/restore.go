package restore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/crypt"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/archive/sign"
	"github.com/binarc/binarc/internal/progs"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/snapshot"
	"github.com/rs/zerolog"
)

// RestoreRequest is one binarc restore.
type RestoreRequest struct {
	Store  objstore.Store
	Layout archive.Layout
	Target Target
	Skip   []string
	// Datadir receives a physical snapshot, prepared and brought to the
	// target; it must be missing or empty.
	Datadir string
	// Server, when set, is a running server to load a logical snapshot
	// into (or, with NoSnapshot, one already at From) and replay into.
	Server *ReplayClient
	// From skips the snapshot: the server's data already stands there,
	// on timeline FromTimeline (empty: the only one holding the file).
	From         *replication.Position
	FromTimeline string
	// SnapshotID picks a snapshot instead of the newest that fits.
	SnapshotID string
	// ForceTarget writes into a Server the archive was taken from, or
	// loads a dump into one holding user data (--force-target).
	ForceTarget bool
	// TargetLogBin replays into Server with its binary log on
	// (--target-log-bin): its replicas then apply the restore too.
	TargetLogBin bool
	DryRun       bool
	WorkDir      string
	Log          zerolog.Logger
	// Progress hears replay progress.
	Progress func(ProgressInfo)
	// Replay is how the binlog is applied: ReplayViaServe or
	// ReplayViaClient; empty means serve for a --datadir restore, the client
	// for a --target one.
	Replay string
	// ReplayThreads is slave_parallel_threads for ReplayViaServe.
	ReplayThreads int
	// AfterServerUp, if set, runs once the temporary server of a
	// physical restore accepts connections (a test hook).
	AfterServerUp func(context.Context)
	// PlanOut receives the printed plan.
	PlanOut func(*RestorePlan)
	// Opener decrypts an encrypted archive (--identity); nil for none.
	Opener *crypt.Opener
	// NoJail runs the programs that read bucket content without the jail
	// (--no-jail), as the sandbox user still.
	NoJail bool

	// sandbox runs those programs (set by Restore).
	sandbox *Sandbox

	// Timing, if set, hears how long each phase took (the Phase*
	// names), for binarc drill's report; phases may overlap.
	Timing func(phase string, took time.Duration)

	// Trust, when set (--trust-key), refuses every object read that is
	// not signed by one of its keys.
	Trust *sign.Trust

	// passedOver are snapshots already tried (restoreOverlapped), with
	// why they cannot start the restore.
	passedOver map[string]string
}

// The phases Timing reports. PhaseDownload is the snapshot's download and
// extraction, which are one stream; PhaseBinlogFetch runs beside the
// first two in a --datadir restore (overlap.go).
const (
	PhaseDownload    = "download"
	PhasePrepare     = "prepare"
	PhaseBinlogFetch = "binlog fetch"
	PhaseReplay      = "replay"
	PhaseLoad        = "load" // a logical snapshot's dump, downloaded and loaded
)

// timed reports phase, begun at start, to Timing.
func (req RestoreRequest) timed(phase string, start time.Time) {
	if req.Timing != nil {
		req.Timing(phase, time.Since(start))
	}
}

// RestorePlan is what a restore will do.
type RestorePlan struct {
	Snapshot *snapshot.Manifest // nil when restoring from given coordinates
	Binlog   *Plan
}

// ErrNoSnapshot means no complete snapshot can start the restore.
var ErrNoSnapshot = errors.New("no snapshot to restore from")

// Restore plans and runs a restore: the newest complete snapshot from
// which the archived binlog reaches the target, then the binlog up to it.
// Everything is fetched and checked before anything is replayed; a
// refused restore leaves nothing in the data directory (a --datadir
// restore prepares the snapshot while the binlog is fetched: overlap.go).
func Restore(ctx context.Context, req RestoreRequest) (*RestorePlan, error) {
	cat := archive.Catalog{Store: req.Store, Layout: req.Layout, Opener: req.Opener, Trust: req.Trust}
	if req.Datadir != "" {
		if err := checkEmptyDir(req.Datadir); err != nil {
			return nil, err
		}
	}
	if !req.DryRun {
		// Before anything is fetched: the jail, and the directories the
		// confined programs must reach.
		sb, err := prepareSandbox(req)
		if err != nil {
			return nil, err
		}
		req.sandbox = sb
	}
	binlogDir := filepath.Join(req.WorkDir, "binlog")
	if err := os.MkdirAll(binlogDir, 0o700); err != nil {
		return nil, err
	}
	if req.Datadir != "" && req.From == nil && req.Server == nil && !req.DryRun {
		if plan, err, done := restoreOverlapped(ctx, cat, &req, binlogDir); done {
			return plan, err
		}
	}
	plan, err := choose(ctx, cat, req, binlogDir)
	if err != nil {
		return nil, err
	}
	if req.PlanOut != nil {
		req.PlanOut(plan)
	}
	if req.DryRun {
		return plan, nil
	}
	tools, err := FindReplayTools()
	if err != nil {
		return plan, err
	}
	tools.Sandbox = req.sandbox
	if req.Server != nil {
		loadsDump := plan.Snapshot != nil && plan.Snapshot.Method == snapshot.Logical
		if err := guardTarget(ctx, cat, plan, *req.Server, loadsDump, req.ForceTarget); err != nil {
			return plan, err
		}
		server := *req.Server
		if !req.TargetLogBin {
			// The restore stays on the target: not in its binary log,
			// not on its replicas.
			server.Preamble = strings.TrimSpace("SET SESSION sql_log_bin=0; " + server.Preamble)
		}
		req.Server = &server
	}
	switch {
	case plan.Snapshot == nil:
		return plan, replayIntoTarget(ctx, req, cat, plan.Binlog, tools)
	case plan.Snapshot.Method == snapshot.Logical:
		if req.Server == nil {
			return plan, fmt.Errorf("snapshot %s is logical (a SQL dump): restore it into a running server with --target mysql://USER@HOST:PORT", plan.Snapshot.ID)
		}
		loadStarted := time.Now()
		if err := loadDump(ctx, req, plan.Snapshot, tools); err != nil {
			return plan, err
		}
		req.timed(PhaseLoad, loadStarted)
		defer req.timed(PhaseReplay, time.Now())
		return plan, replayIntoTarget(ctx, req, cat, plan.Binlog, tools)
	default:
		if req.Datadir == "" {
			return plan, fmt.Errorf("snapshot %s is physical: give --datadir DIR (empty) to restore it into", plan.Snapshot.ID)
		}
		return plan, restorePhysical(ctx, req, plan.Snapshot, func() (*Plan, error) { return plan.Binlog, nil }, tools)
	}
}

// choose picks the snapshot and plans the binlog from its coordinates.
// Snapshots are tried newest first; one that is after the target, or whose
// coordinates the archive does not reach the target from, is passed over.
func choose(ctx context.Context, cat archive.Catalog, req RestoreRequest, binlogDir string) (*RestorePlan, error) {
	planFrom := func(pr PlanRequest) (*Plan, error) {
		pr.Target, pr.Skip, pr.WorkDir = req.Target, req.Skip, binlogDir
		defer req.timed(PhaseBinlogFetch, time.Now())
		return PlanBinlog(ctx, cat, pr)
	}
	if req.From != nil {
		bp, err := planFrom(PlanRequest{From: *req.From, Timeline: req.FromTimeline})
		return &RestorePlan{Binlog: bp}, err
	}
	entries, err := snapshot.List(ctx, req.Store, req.Layout, req.Trust)
	if err != nil {
		return nil, err
	}
	var tried []string
	for i := len(entries) - 1; i >= 0; i-- {
		ok, why := req.candidate(entries[i])
		if !ok {
			if why != "" {
				tried = append(tried, why)
			}
			continue
		}
		m := entries[i].Manifest
		bp, err := planFrom(snapshotPlanRequest(m))
		if errors.Is(err, ErrOutsideWindow) {
			tried = append(tried, passedOver(m, err))
			continue
		}
		if err != nil {
			return nil, err
		}
		return &RestorePlan{Snapshot: m, Binlog: bp}, nil
	}
	msg := "no complete snapshot"
	if req.SnapshotID != "" {
		msg = "no complete snapshot " + req.SnapshotID
	}
	if len(tried) > 0 {
		msg = "no snapshot from which the archive reaches the target; tried: " + strings.Join(tried, "; ")
	}
	window := ""
	if tls, err := cat.Describe(ctx); err == nil {
		for _, tl := range tls {
			window += "\n" + DescribeWindow(tl)
		}
	}
	return nil, fmt.Errorf("%w for %s: %s%s\nsnapshots: %s", ErrNoSnapshot, req.Target, msg, window, listIDs(entries))
}

// candidate tells whether snapshot entry e may start the restore, before
// its binlog is planned, and if not why (empty when it is not one to
// mention: incomplete, or not the --snapshot asked for).
func (req RestoreRequest) candidate(e snapshot.Entry) (bool, string) {
	if !e.Complete || (req.SnapshotID != "" && e.ID != req.SnapshotID) {
		return false, ""
	}
	m := e.Manifest
	if why, ok := req.passedOver[e.ID]; ok {
		return false, why
	}
	ok, err := before(m, req.Target)
	if err != nil {
		return false, fmt.Sprintf("%s (%v)", m.ID, err)
	}
	if !ok {
		return false, fmt.Sprintf("%s (taken %s: after the target)", m.ID, m.Started.Format(time.RFC3339))
	}
	return true, ""
}

// snapshotPlanRequest is the binlog plan from snapshot m's coordinates
// (the caller adds the target, the skips and the work directory).
func snapshotPlanRequest(m *snapshot.Manifest) PlanRequest {
	return PlanRequest{From: replication.Position{File: m.Coordinates.File, Offset: m.Coordinates.Pos},
		FromServerID: m.BinlogServerID(), FromServerUUID: m.BinlogServerUUID(), FromState: m.DataGTIDState()}
}

// passedOver says why snapshot m cannot start the restore: the archive
// does not reach the target from it (err).
func passedOver(m *snapshot.Manifest, err error) string {
	return fmt.Sprintf("%s (at %s: %v)", m.ID, snapshotPlanRequest(m).From, firstLine(err))
}

// before tells whether a snapshot can start a restore to target: its data
// stands at or before the target.
// A GTID state in the manifest that does not parse is an error (the
// snapshot is passed over, and the refusal says why), never read as 0.
func before(m *snapshot.Manifest, t Target) (bool, error) {
	switch t.Kind {
	case TargetTime:
		return !m.Started.After(t.Time), nil
	case TargetGTID:
		st, err := replication.ParseGTIDState(m.DataGTIDState())
		if err != nil {
			return false, fmt.Errorf("its GTID state: %w", err)
		}
		return !st.Covers(t.GTID), nil
	}
	// A position is on some timeline: the plan finds out whether the
	// snapshot stands before it.
	return true, nil
}

func listIDs(entries []snapshot.Entry) string {
	var ids []string
	for _, e := range entries {
		s := e.ID
		switch {
		case e.Problem != "":
			s += " (refused: " + e.Problem + ")"
		case !e.Complete:
			s += " (incomplete)"
		}
		ids = append(ids, s)
	}
	if len(ids) == 0 {
		return "none (take one with binarc snapshot)"
	}
	return strings.Join(ids, ", ")
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

func checkEmptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("--datadir %s: %w", dir, err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("--datadir %s is not empty: binarc restores only into an empty or new directory, so nothing is overwritten", dir)
	}
	return nil
}

// findBinary finds a server program on $PATH or in /usr/sbin, /usr/bin.
func findBinary(pkg string, names ...string) (string, error) {
	p, err := progs.Find(names...)
	if err != nil {
		return "", fmt.Errorf("%w: install the Debian package %s", err, pkg)
	}
	return p, nil
}

// runLogged runs a command and returns its error with the tail of its
// output.
func runLogged(cmd *exec.Cmd) error {
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", filepath.Base(cmd.Path), err, lastLines(string(out), 8))
	}
	return nil
}
