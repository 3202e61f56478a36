package restore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/snapshot"
	"github.com/klauspost/compress/zstd"
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
	// From skips the snapshot: the server's data already stands there.
	From *replication.Position
	// SnapshotID picks a snapshot instead of the newest that fits.
	SnapshotID string
	DryRun     bool
	WorkDir    string
	Log        zerolog.Logger
	// Progress hears replay progress.
	Progress func(ProgressInfo)
	// Replay is how the binlog is applied: ReplayViaServe or
	// ReplayViaClient; empty means serve for a --datadir restore, the client
	// for a --target one.
	Replay string
	// ReplayThreads is slave_parallel_threads for ReplayViaServe.
	ReplayThreads int
	// PlanOut receives the printed plan.
	PlanOut func(*RestorePlan)
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
// Everything is fetched and checked before anything is written; a refused
// restore writes nothing to the data directory.
func Restore(ctx context.Context, req RestoreRequest) (*RestorePlan, error) {
	cat := archive.Catalog{Store: req.Store, Layout: req.Layout}
	if req.Datadir != "" {
		if err := checkEmptyDir(req.Datadir); err != nil {
			return nil, err
		}
	}
	work := req.WorkDir
	plan, err := choose(ctx, cat, req, filepath.Join(work, "binlog"))
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
	switch {
	case plan.Snapshot == nil:
		return plan, replayIntoTarget(ctx, req, cat, plan.Binlog, tools)
	case plan.Snapshot.Method == snapshot.Logical:
		if req.Server == nil {
			return plan, fmt.Errorf("snapshot %s is logical (a SQL dump): restore it into a running server with --target mysql://USER@HOST:PORT", plan.Snapshot.ID)
		}
		if err := loadDump(ctx, req, plan.Snapshot, tools); err != nil {
			return plan, err
		}
		return plan, replayIntoTarget(ctx, req, cat, plan.Binlog, tools)
	default:
		if req.Datadir == "" {
			return plan, fmt.Errorf("snapshot %s is physical: give --datadir DIR (empty) to restore it into", plan.Snapshot.ID)
		}
		return plan, restorePhysical(ctx, req, plan, tools)
	}
}

// choose picks the snapshot and plans the binlog from its coordinates.
// Snapshots are tried newest first; one that is after the target, or whose
// coordinates the archive does not reach the target from, is passed over.
func choose(ctx context.Context, cat archive.Catalog, req RestoreRequest, binlogDir string) (*RestorePlan, error) {
	if err := os.MkdirAll(binlogDir, 0o700); err != nil {
		return nil, err
	}
	planFrom := func(from replication.Position) (*Plan, error) {
		return PlanBinlog(ctx, cat, PlanRequest{From: from, Target: req.Target, Skip: req.Skip, WorkDir: binlogDir})
	}
	if req.From != nil {
		bp, err := planFrom(*req.From)
		return &RestorePlan{Binlog: bp}, err
	}
	entries, err := snapshot.List(ctx, req.Store, req.Layout)
	if err != nil {
		return nil, err
	}
	var tried []string
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if !e.Complete || (req.SnapshotID != "" && e.ID != req.SnapshotID) {
			continue
		}
		m := e.Manifest
		if !before(m, req.Target) {
			tried = append(tried, fmt.Sprintf("%s (taken %s: after the target)", m.ID, m.Started.Format(time.RFC3339)))
			continue
		}
		from := replication.Position{File: m.Coordinates.File, Offset: m.Coordinates.Pos}
		bp, err := planFrom(from)
		if errors.Is(err, ErrOutsideWindow) {
			tried = append(tried, fmt.Sprintf("%s (at %s: %v)", m.ID, from, firstLine(err)))
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

// before tells whether a snapshot can start a restore to target: its data
// stands at or before the target.
func before(m *snapshot.Manifest, t Target) bool {
	switch t.Kind {
	case TargetTime:
		return !m.Started.After(t.Time)
	case TargetPosition:
		c := replication.CompareBinlogNames(m.Coordinates.File, t.Position.File)
		return c < 0 || (c == 0 && m.Coordinates.Pos <= t.Position.Offset)
	case TargetGTID:
		return !gtidIn(t.GTID, m.Coordinates.GTIDSet)
	}
	return true
}

// gtidIn tells whether a MariaDB GTID (d-s-n) is within a gtid_slave_pos
// list (d-s-n, …: per domain, everything up to n). MySQL sets are not
// compared here; the plan finds out.
func gtidIn(g, set string) bool {
	gp := strings.Split(g, "-")
	if len(gp) != 3 {
		return false
	}
	gn, _ := strconv.ParseUint(gp[2], 10, 64)
	for _, s := range strings.Split(set, ",") {
		sp := strings.Split(strings.TrimSpace(s), "-")
		if len(sp) == 3 && sp[0] == gp[0] {
			sn, _ := strconv.ParseUint(sp[2], 10, 64)
			return gn <= sn
		}
	}
	return false
}

func listIDs(entries []snapshot.Entry) string {
	var ids []string
	for _, e := range entries {
		s := e.ID
		if !e.Complete {
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

// openSnapshotData streams a snapshot's data object, decompressed, and
// checks its SHA-256 and size against the manifest at the end of the read.
func openSnapshotData(ctx context.Context, store objstore.Store, m *snapshot.Manifest) (io.ReadCloser, error) {
	rc, _, err := store.Get(ctx, m.DataKey)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: read %s: %w", m.ID, m.DataKey, err)
	}
	h := sha256.New()
	counted := &countingReader{r: io.TeeReader(rc, h)}
	dec, err := zstd.NewReader(counted)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return &checkedReader{dec: dec, body: rc, check: func() error {
		if got := hex.EncodeToString(h.Sum(nil)); counted.n != m.StoredSize || got != m.SHA256 {
			return fmt.Errorf("snapshot %s: %s is %d bytes with SHA-256 %s; the manifest says %d bytes, %s: the object is damaged (binarc verify --snapshot %s)",
				m.ID, m.DataKey, counted.n, got, m.StoredSize, m.SHA256, m.ID)
		}
		return nil
	}}, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// checkedReader runs check when the decompressed stream ends.
type checkedReader struct {
	dec   *zstd.Decoder
	body  io.Closer
	check func() error
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.dec.Read(p)
	if err == io.EOF {
		if cerr := c.check(); cerr != nil {
			return n, cerr
		}
	}
	return n, err
}

func (c *checkedReader) Close() error {
	c.dec.Close()
	return c.body.Close()
}

// findBinary finds a server program on PATH or in /usr/sbin, /usr/bin.
func findBinary(pkg string, names ...string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
		for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
			if p := filepath.Join(dir, n); isExecutable(p) {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%s not found: install the Debian package %s", strings.Join(names, " or "), pkg)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
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

// stopServer asks mariadbd to shut down and waits for it.
func stopServer(cmd *exec.Cmd, done <-chan error, timeout time.Duration) error {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("the temporary server did not shut down within %s; killed it (InnoDB recovers at the next start)", timeout)
	}
}
